"""How long the judge expects to need: what an INCONCLUSIVE verdict tells an operator.

An estimate, not a promise: at the traffic and dispersion seen so far, how many more minutes of data
an always-valid interval needs to decide a reference regression (errors or slow requests doubled, a
paired metric 50% worse). It uses the normal approximation of the interval's half-width,
``z * sqrt(variance per minute / minutes)`` with ``z^2 = 2 log(1/alpha) + 2``, which is close to the
mixture's at the sample sizes of a bake.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shepherd.analysis.rates import MIN_MINUTES_WITH_EVENTS, RateComparison
from shepherd.analysis.sequential import LogRatioSummary
from shepherd.analysis.verdict import MetricEvidence

RATE_REFERENCE = 2.0  # "a doubling of errors"
PAIRED_REFERENCE = 1.5  # "+50%"
_MAX_MINUTES = 100_000.0  # beyond this, "not at this traffic"


def rate_minutes_to_decide(compared: RateComparison, limit: float, alpha: float) -> float | None:
    """More minutes until events at RATE_REFERENCE times the baseline's rate would fail the limit."""
    if compared.minutes == 0 or limit >= RATE_REFERENCE:
        return None
    per_minute_c = compared.candidate_requests / compared.minutes
    per_minute_b = compared.baseline_requests / compared.minutes
    # The baseline's rate, counting one event if none was seen yet (a rate of 0 decides nothing).
    base_rate = max(compared.baseline_events, 1.0) / compared.baseline_requests
    expected_c = RATE_REFERENCE * base_rate * per_minute_c
    expected_b = base_rate * per_minute_b
    z_squared = 2.0 * math.log(1.0 / alpha) + 2.0
    margin = math.log(RATE_REFERENCE / limit)
    needed = z_squared * compared.dispersion * (1.0 / expected_c + 1.0 / expected_b) / margin**2
    # A decision also needs a few minutes with events.
    needed = max(needed, MIN_MINUTES_WITH_EVENTS / min(1.0, expected_c + expected_b))
    return _more(needed, compared.minutes)


def paired_minutes_to_decide(summary: LogRatioSummary, tolerance: float, min_samples: int) -> float | None:
    """More minutes until a paired metric PAIRED_REFERENCE times worse would fail (needs a spread)."""
    if summary.count < 2 or summary.sd <= 0 or tolerance >= PAIRED_REFERENCE - 1.0:
        return None
    margin = math.log(PAIRED_REFERENCE / (1.0 + tolerance))
    # The sequential t's half-width is about 3 standard errors wider than z's at small samples.
    needed = max(float(min_samples), (4.0 * summary.sd / margin) ** 2)
    return _more(needed, summary.count)


def waiting_sentence(evidence: Sequence[MetricEvidence], candidate_rps: float | None) -> str:
    """One sentence for operators: the slowest INCONCLUSIVE metric's expected time to a decision."""
    if candidate_rps is not None and candidate_rps <= 0:
        return "no requests have reached the candidate yet: nothing can be decided until traffic arrives"
    pending = [item for item in evidence if item.outcome == "INCONCLUSIVE"]
    timed = [item for item in pending if item.decision_minutes is not None]
    traffic = f"at {candidate_rps:.2g} req/s to the candidate" if candidate_rps is not None else "at this traffic"
    if not timed:
        names = ", ".join(item.metric for item in pending) or "no metric"
        return f"{traffic}, {names} cannot be timed yet: the judge needs a few more minutes of data"
    slowest = max(timed, key=lambda item: item.decision_minutes or 0.0)
    minutes = slowest.decision_minutes or 0.0
    if minutes >= _MAX_MINUTES:
        return f"{traffic}, {_reference(slowest)} could not be decided in any practical time"
    return f"{traffic}, {_reference(slowest)} would be decided in about {_duration(minutes)}"


def _reference(item: MetricEvidence) -> str:
    if item.kind == "rate":
        return f"a doubling of {item.metric}"
    if item.kind == "tail":
        return f"twice the baseline's share of slow requests ({item.metric})"
    return f"{item.metric} {PAIRED_REFERENCE - 1:+.0%}"


def _more(needed_minutes: float, seen_minutes: int) -> float:
    return min(_MAX_MINUTES, max(1.0, math.ceil(needed_minutes - seen_minutes)))


def _duration(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} more minute{'s' if minutes != 1 else ''}"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} more hours"
    return f"{minutes / 1440:.0f} more days"
