"""Rates on real traffic: two variants' event counts per minute, compared allowing for bursts.

Errors do not arrive as independent draws. A bad batch, a retry storm or one noisy host puts a
minute's errors far above or below the average, on one variant or on both. Counts pooled over a
step as if every error were an independent draw (Poisson) then read a burst on one variant as a
significant difference: at 2,000 requests/s a healthy canary was rolled back in 40-85% of steps.

The comparison here is conditional on each minute's total (so a burst that hits both variants in
the same minute, a *common shock*, cancels) and allows for *overdispersion*: the candidate's share of
a minute's events varies more than a binomial draw would. Its size is estimated from the minutes
themselves (quasi-likelihood: Pearson's statistic of the per-minute shares over its degrees of
freedom, McCullagh and Nelder 1989, section 4.5), and the pooled counts are deflated by it, so that
``k`` events that came in bursts weigh as ``k / dispersion`` independent ones. The interval is then
the always-valid Beta-binomial mixture of :func:`shepherd.analysis.sequential.rate_ratio_interval`.

Assumptions (docs/design.md, "Canary analysis"): the two variants' rates move together apart from
the candidate's effect and noise with a stable dispersion over the step; weights are fixed, so the
split of requests varies by sampling only; the dispersion estimate is widened by ``1 + c / df``
because an estimate from few minutes is itself noisy, and no decision is taken on fewer than
:data:`MIN_MINUTES_WITH_EVENTS` minutes with events (one bursty minute is not evidence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from msgspec import Struct

from shepherd.analysis.sequential import RatioInterval, poisson_rate_upper, rate_ratio_interval

# No decision from fewer minutes with events: a dispersion estimated from fewer is too often far
# below the truth (with 3, false rollbacks at a per-variant CV of 0.7 all came at the 3rd and 4th
# minute; README, "Canary detection").
MIN_MINUTES_WITH_EVENTS = 5
# The gross-failure guard tests a ratio far from any healthy candidate's, and acts in the warm-up.
GUARD_MIN_MINUTES_WITH_EVENTS = 3
# The dispersion estimated from df degrees of freedom is widened by 1 + DISPERSION_WIDENING / df:
# an estimate from a few minutes is itself noisy, and too low an estimate is a false rollback.
DISPERSION_WIDENING = 4.0


class MinuteCounts(Struct, frozen=True):
    """One minute of one rate: each variant's events and requests."""

    candidate_events: float
    candidate_requests: float
    baseline_events: float
    baseline_requests: float


class RateComparison(Struct, frozen=True):
    """The ratio of the candidate's rate to the baseline's, and what the evidence rests on."""

    interval: RatioInterval
    candidate_events: float
    candidate_requests: float
    baseline_events: float
    baseline_requests: float
    minutes: int  # minutes with requests on both sides
    minutes_with_events: int
    dispersion: float  # 1: as independent draws; 10: bursts make each event weigh a tenth

    def candidate_rate_upper(self, alpha: float, negligible_rate: float) -> float:
        """An always-valid upper bound of the candidate's own rate (its prior centred on negligible_rate)."""
        d = self.dispersion
        return poisson_rate_upper(self.candidate_events / d, self.candidate_requests / d, alpha, negligible_rate)

    @property
    def decidable(self) -> bool:
        return self.minutes_with_events >= MIN_MINUTES_WITH_EVENTS

    @property
    def decidable_by_guard(self) -> bool:
        return self.minutes_with_events >= GUARD_MIN_MINUTES_WITH_EVENTS


def compare_rates(minutes: Sequence[MinuteCounts], alpha: float) -> RateComparison | None:
    """The candidate's rate over the baseline's, allowing for bursts; None without requests on both."""
    used = [m for m in minutes if m.candidate_requests > 0 and m.baseline_requests > 0]
    x = math.fsum(m.candidate_events for m in used)
    c_requests = math.fsum(m.candidate_requests for m in used)
    y = math.fsum(m.baseline_events for m in used)
    b_requests = math.fsum(m.baseline_requests for m in used)
    if c_requests <= 0 or b_requests <= 0:
        return None
    with_events = [m for m in used if m.candidate_events + m.baseline_events > 0]
    dispersion = estimate_dispersion(with_events, x, c_requests, y, b_requests)
    interval = rate_ratio_interval(x / dispersion, c_requests, y / dispersion, b_requests, alpha)
    assert interval is not None  # requests on both sides
    return RateComparison(
        interval=interval,
        candidate_events=x,
        candidate_requests=c_requests,
        baseline_events=y,
        baseline_requests=b_requests,
        minutes=len(used),
        minutes_with_events=len(with_events),
        dispersion=dispersion,
    )


def estimate_dispersion(
    with_events: Sequence[MinuteCounts], x: float, c_requests: float, y: float, b_requests: float
) -> float:
    """Pearson's X^2 of the candidate's per-minute share of events over its df, widened; at least 1.

    Each minute's expected share is the one the pooled ratio predicts for that minute's split of
    requests, so a candidate that is consistently worse is not mistaken for a bursty one.
    """
    df = len(with_events) - 1
    if df < 1:
        return 1.0
    ratio = ((x + 0.5) / c_requests) / ((y + 0.5) / b_requests)
    pearson = 0.0
    for minute in with_events:
        events = minute.candidate_events + minute.baseline_events
        odds = ratio * minute.candidate_requests / minute.baseline_requests
        share = odds / (1.0 + odds)
        pearson += (minute.candidate_events - events * share) ** 2 / (events * share * (1.0 - share))
    return max(1.0, pearson / df * (1.0 + DISPERSION_WIDENING / df))
