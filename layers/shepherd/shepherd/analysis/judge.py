"""The canary judge: per metric PASS, FAIL or INCONCLUSIVE, from per-minute series of both variants.

- FAIL: the always-valid interval of the ratio candidate / baseline lies wholly on the worse side of
  the tolerance. The interval covers the true ratio at every look with probability ``1 - alpha``, so
  a candidate within tolerance fails at any look, ever, with probability at most ``alpha``. Rates
  (and tails) also need :data:`~shepherd.analysis.rates.MIN_MINUTES_WITH_EVENTS` minutes with events:
  one bursty minute is not evidence.
- PASS: evidence that there is no regression beyond the tolerance: the interval's bound on the worse
  side lies inside it (a rate also passes when the candidate's own rate is surely negligible), with
  at least ``min_samples``.
- INCONCLUSIVE: neither yet; the evidence says how many more minutes a decision would take.

Which minutes count is :mod:`shepherd.analysis.look`'s: ``judged`` (after the warm-up, complete
minutes) for every metric, and the warm-up for the gross-failure guard, which fails a rate only at
``gross_failure_ratio`` times the baseline's.

``alpha`` is the judge's ``false_rollback_rate`` split equally among the metrics (Bonferroni), so the
probability that a candidate as good as the live model fails on any metric stays below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from shepherd.analysis.metrics import JudgedMetric, slow_series_id
from shepherd.analysis.observations import Observations, VariantSeries
from shepherd.analysis.rates import MinuteCounts, RateComparison, compare_rates
from shepherd.analysis.sequential import LogRatioSummary, RatioInterval, paired_log_ratio_interval
from shepherd.analysis.verdict import MetricEvidence, Outcome, Verdict
from shepherd.analysis.waiting import paired_minutes_to_decide, rate_minutes_to_decide, waiting_sentence

_EMPTY = VariantSeries()
Span = tuple[datetime, datetime]  # minutes that began in [start, end)


def judge(
    metrics: Sequence[JudgedMetric],
    observations: Observations,
    false_rollback_rate: float,
    *,
    judged: Span | None = None,
    warmup: Span | None = None,
    gross_failure_ratio: float = 5.0,
    thresholds: Mapping[str, float] | None = None,
) -> Verdict:
    """Judge every metric on the minutes in ``judged`` (every minute given when None)."""
    alpha = false_rollback_rate / max(len(metrics), 1)
    context = _Context(observations, judged, warmup, gross_failure_ratio, thresholds or {}, alpha)
    evidence = tuple(context.judge_metric(metric) for metric in metrics)
    outcomes = {item.outcome for item in evidence}
    overall: Outcome = "FAIL" if "FAIL" in outcomes else "INCONCLUSIVE" if "INCONCLUSIVE" in outcomes else "PASS"
    return Verdict(
        outcome=overall,
        critical_failure=any(item.outcome == "FAIL" and item.critical for item in evidence),
        minutes=len(context.judged_minutes()),
        metrics=evidence,
        waiting=waiting_sentence(evidence, context.candidate_rps()) if overall == "INCONCLUSIVE" else None,
    )


class _Context:
    """The data of one look, cut to its spans, and the per-metric judgement on it."""

    def __init__(
        self,
        observations: Observations,
        judged: Span | None,
        warmup: Span | None,
        gross_failure_ratio: float,
        thresholds: Mapping[str, float],
        alpha: float,
    ) -> None:
        self.observations = observations
        self.judged = judged
        self.warmup = warmup
        self.gross_failure_ratio = gross_failure_ratio
        self.thresholds = thresholds
        self.alpha = alpha
        self._cut: dict[tuple[str | None, Span], VariantSeries] = {}  # each series cut to a span, once

    def series(self, series_id: str | None, span: Span | None) -> VariantSeries:
        found = self.observations.get(series_id, _EMPTY) if series_id else _EMPTY
        if span is None:
            return found
        key = (series_id, span)
        cut = self._cut.get(key)
        if cut is None:
            start, end = span
            cut = VariantSeries(
                {m: v for m, v in found.candidate.items() if start <= m < end},
                {m: v for m, v in found.baseline.items() if start <= m < end},
            )
            self._cut[key] = cut
        return cut

    def judged_minutes(self) -> set[datetime]:
        minutes: set[datetime] = set()
        for series_id in self.observations:
            judged = self.series(series_id, self.judged)
            minutes.update(judged.candidate, judged.baseline)
        return minutes

    def candidate_rps(self) -> float | None:
        """Requests per second to the candidate over the judged minutes (None without a count)."""
        for series_id in ("invocations", "model_latency_count"):
            counts = self.series(series_id, self.judged).candidate
            if counts:
                return math.fsum(counts.values()) / (60.0 * len(counts))
        return None

    def judge_metric(self, metric: JudgedMetric) -> MetricEvidence:
        if metric.kind == "paired":
            return self.paired(metric)
        if metric.kind == "tail" and metric.name not in self.thresholds:
            return _evidence(
                metric,
                self.alpha,
                "INCONCLUSIVE",
                "no latency threshold yet (set from the baseline's per-minute values once it has some)",
                samples=0,
            )
        return self.rate(metric)

    def counts(self, metric: JudgedMetric, span: Span | None) -> list[MinuteCounts]:
        events_id = slow_series_id(metric) if metric.kind == "tail" else metric.series
        events = self.series(events_id, span)
        # Not named `requests`: bandit takes `requests.get` for an HTTP call without a timeout.
        served = self.series(metric.requests_series, span)
        return [
            MinuteCounts(
                events.candidate.get(minute, 0.0),
                served.candidate.get(minute, 0.0),
                events.baseline.get(minute, 0.0),
                served.baseline.get(minute, 0.0),
            )
            for minute in sorted({*served.candidate, *served.baseline})
        ]

    def rate(self, metric: JudgedMetric) -> MetricEvidence:
        # A tail counts the candidate's requests above threshold x (1 + tolerance) against the
        # baseline's above the threshold, so "no worse than the tolerance" is a ratio of at most 1.
        limit = 1.0 if metric.kind == "tail" else 1.0 + metric.tolerance
        threshold = self.thresholds.get(metric.name)
        compared = compare_rates(self.counts(metric, self.judged), self.alpha)
        # The guard speaks until the judged minutes can decide by themselves (after the warm-up).
        if metric.kind == "rate" and self.warmup is not None and (compared is None or not compared.decidable):
            guard = self.gross_failure(metric)
            if guard is not None:
                return guard
        if compared is None:
            return _evidence(metric, self.alpha, "INCONCLUSIVE", "no requests on both variants yet", samples=0)
        shown = _shown(self.alpha, compared.interval, compared.dispersion)
        samples = int(compared.candidate_requests)
        outcome: Outcome
        if compared.decidable and compared.interval.lower > limit:
            outcome, rule = "FAIL", f"{shown} lies above {limit:g}{_tolerance(metric)}"
        elif samples < metric.min_samples:
            outcome = "INCONCLUSIVE"
            rule = f"{samples} requests to the candidate < min_samples {metric.min_samples}; {shown}"
        elif compared.decidable and compared.interval.upper < limit:
            outcome, rule = "PASS", f"no regression: {shown} lies below {limit:g}{_tolerance(metric)}"
        elif (upper := compared.candidate_rate_upper(self.alpha, metric.negligible_rate)) < metric.negligible_rate:
            outcome = "PASS"
            negligible = f"{metric.negligible_rate:.3%} (at most {upper:.4%})"
            rule = f"no regression: the candidate's rate is below {negligible}; {shown}"
        else:
            outcome, rule = "INCONCLUSIVE", f"no evidence either way yet: {shown}{_tolerance(metric)}"
        return _evidence(
            metric,
            self.alpha,
            outcome,
            rule,
            samples=samples,
            compared=compared,
            threshold=threshold,
            decision_minutes=(
                rate_minutes_to_decide(compared, limit, self.alpha) if outcome == "INCONCLUSIVE" else None
            ),
        )

    def gross_failure(self, metric: JudgedMetric) -> MetricEvidence | None:
        """The warm-up's guard: FAIL when the rate since the step began is surely gross_failure_ratio
        times the baseline's (a model that cannot serve), else nothing to say."""
        assert self.warmup is not None
        since = (self.warmup[0], self.judged[1] if self.judged else self.warmup[1])
        compared = compare_rates(self.counts(metric, since), self.alpha)
        if compared is None or not compared.decidable_by_guard or compared.interval.lower <= self.gross_failure_ratio:
            return None
        rule = (
            f"gross failure since the step began (warm-up included): "
            f"{_shown(self.alpha, compared.interval, compared.dispersion)} lies above {self.gross_failure_ratio:g}"
        )
        return _evidence(
            metric,
            self.alpha,
            "FAIL",
            rule,
            samples=int(compared.candidate_requests),
            compared=compared,
            gross_failure=True,
        )

    def paired(self, metric: JudgedMetric) -> MetricEvidence:
        series = self.series(metric.series, self.judged)
        pairs = [
            (value, series.baseline[minute])
            for minute, value in sorted(series.candidate.items())
            if minute in series.baseline and value > 0 and series.baseline[minute] > 0  # log ratios need both > 0
        ]
        summary = LogRatioSummary.of([math.log(c / b) for c, b in pairs])
        interval = paired_log_ratio_interval(summary, self.alpha) if pairs else None
        bounds = "no data" if interval is None else _bounds(interval)
        shown = f"the {_percent(1.0 - self.alpha)} always-valid interval of the ratio candidate/baseline {bounds}"
        above, below = 1.0 + metric.tolerance, 1.0 - metric.tolerance
        worse_above = metric.direction != "lower_is_worse"
        worse_below = metric.direction != "higher_is_worse"
        outcome: Outcome
        if interval is not None and worse_above and interval.lower > above:
            outcome, rule = "FAIL", f"{shown} lies above {above:g}{_tolerance(metric)}"
        elif interval is not None and worse_below and interval.upper < below:
            outcome, rule = "FAIL", f"{shown} lies below {below:g}{_tolerance(metric, sign='-')}"
        elif len(pairs) < metric.min_samples:
            outcome, rule = "INCONCLUSIVE", f"{len(pairs)} paired minutes < min_samples {metric.min_samples}; {shown}"
        elif (
            interval is not None
            and (not worse_above or interval.upper < above)
            and (not worse_below or interval.lower > below)
        ):
            outcome, rule = "PASS", f"no regression: {shown} lies within the tolerance"
        else:
            outcome, rule = "INCONCLUSIVE", f"no evidence either way yet: {shown}"
        return _evidence(
            metric,
            self.alpha,
            outcome,
            rule,
            samples=len(pairs),
            interval=interval,
            values=(_geometric_mean([c for c, _ in pairs]), _geometric_mean([b for _, b in pairs])),
            decision_minutes=(
                paired_minutes_to_decide(summary, metric.tolerance, metric.min_samples)
                if outcome == "INCONCLUSIVE"
                else None
            ),
        )


def _evidence(
    metric: JudgedMetric,
    alpha: float,
    outcome: Outcome,
    rule: str,
    *,
    samples: int,
    compared: RateComparison | None = None,
    interval: RatioInterval | None = None,
    values: tuple[float | None, float | None] = (None, None),
    threshold: float | None = None,
    decision_minutes: float | None = None,
    gross_failure: bool = False,
) -> MetricEvidence:
    """A metric's evidence: a rate's from its comparison, a paired metric's from its interval and the
    geometric means of its values (candidate, baseline)."""
    candidate, baseline = values
    if compared is not None:
        interval = compared.interval
        candidate = compared.candidate_events / compared.candidate_requests
        baseline = compared.baseline_events / compared.baseline_requests
    return MetricEvidence(
        metric=metric.name,
        kind=metric.kind,
        outcome=outcome,
        critical=metric.critical,
        direction=metric.direction,
        tolerance=metric.tolerance,
        samples=samples,
        min_samples=metric.min_samples,
        candidate=candidate,
        baseline=baseline,
        relative_effect=None if interval is None else _finite(interval.estimate - 1.0),
        interval=_relative(interval),
        confidence=1.0 - alpha,
        rule=rule,
        dispersion=None if compared is None else round(compared.dispersion, 3),
        threshold=threshold,
        decision_minutes=decision_minutes,
        gross_failure=gross_failure,
    )


def _shown(alpha: float, interval: RatioInterval, dispersion: float) -> str:
    bursts = f", bursts weighed x{dispersion:.2g}" if dispersion > 1.0 else ""
    interval_text = f"always-valid interval of the ratio candidate/baseline {_bounds(interval)}"
    return f"the {_percent(1.0 - alpha)} {interval_text}{bursts}"


def _tolerance(metric: JudgedMetric, sign: str = "+") -> str:
    if metric.kind == "tail":
        return f" (share of requests slower than the baseline's threshold x {1 + metric.tolerance:g})"
    return f" (tolerance {sign}{metric.tolerance:.0%})"


def _bounds(interval: RatioInterval) -> str:
    return f"[{_ratio(interval.lower)}, {_ratio(interval.upper)}]"


def _relative(interval: RatioInterval | None) -> tuple[float | None, float | None]:
    if interval is None:
        return (None, None)
    return (_finite(interval.lower - 1.0), _finite(interval.upper - 1.0))


def _geometric_mean(values: list[float]) -> float | None:
    return math.exp(math.fsum(math.log(v) for v in values) / len(values)) if values else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _ratio(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3g}"


def _percent(confidence: float) -> str:
    return f"{confidence * 100:.4g}%"
