"""The canary judge: per metric PASS, FAIL or INCONCLUSIVE, from per-minute series of both variants.

- FAIL: the always-valid interval of the ratio candidate / baseline lies wholly on the worse side of
  the tolerance (above ``1 + tolerance`` when higher is worse, below ``1 - tolerance`` when lower is
  worse). The interval covers the true ratio at every look with probability ``1 - alpha``, so a
  candidate within tolerance fails at any look, ever, with probability at most ``alpha``. A FAIL
  does not wait for ``min_samples``: the guarantee holds from the first look.
- INCONCLUSIVE: not failed, and fewer than ``min_samples`` samples yet.
- PASS: enough samples and no evidence of a regression beyond the tolerance.

``alpha`` is the judge's ``false_rollback_rate`` split equally among the metrics (Bonferroni), so the
probability that a candidate as good as the live model fails on any metric stays below it.
Rates are judged from pooled counts; continuous metrics from the log ratio of the two variants'
values in the same minute (load changes hit both variants in that minute and cancel out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from shepherd.analysis.metrics import JudgedMetric
from shepherd.analysis.observations import Observations, VariantSeries
from shepherd.analysis.sequential import (
    LogRatioSummary,
    RatioInterval,
    paired_log_ratio_interval,
    rate_ratio_interval,
)
from shepherd.analysis.verdict import MetricEvidence, Outcome, Verdict

_EMPTY = VariantSeries()


def judge(
    metrics: Sequence[JudgedMetric],
    observations: Observations,
    false_rollback_rate: float,
    *,
    judged: tuple[datetime, datetime] | None = None,
    warmup: tuple[datetime, datetime] | None = None,
    gross_failure_ratio: float = 5.0,
    thresholds: Mapping[str, float] | None = None,
) -> Verdict:
    """Judge every metric on the minutes in ``judged`` (all of them when None)."""
    if judged is not None:
        observations = {
            name: VariantSeries(
                {m: v for m, v in series.candidate.items() if judged[0] <= m < judged[1]},
                {m: v for m, v in series.baseline.items() if judged[0] <= m < judged[1]},
            )
            for name, series in observations.items()
        }
    alpha = false_rollback_rate / max(len(metrics), 1)
    evidence = tuple(_judge_metric(metric, observations, alpha) for metric in metrics)
    outcomes = {item.outcome for item in evidence}
    overall: Outcome = "FAIL" if "FAIL" in outcomes else "INCONCLUSIVE" if "INCONCLUSIVE" in outcomes else "PASS"
    minutes = {minute for series in observations.values() for minute in (*series.candidate, *series.baseline)}
    return Verdict(
        outcome=overall,
        critical_failure=any(item.outcome == "FAIL" and item.critical for item in evidence),
        minutes=len(minutes),
        metrics=evidence,
    )


def _judge_metric(metric: JudgedMetric, observations: Observations, alpha: float) -> MetricEvidence:
    if metric.kind in ("rate", "tail"):
        assert metric.requests_series is not None  # every rate metric names its requests series
        errors = observations.get(metric.series, _EMPTY)
        requests = observations.get(metric.requests_series, _EMPTY)
        candidate_errors, baseline_errors = _total(errors.candidate), _total(errors.baseline)
        candidate_requests, baseline_requests = _total(requests.candidate), _total(requests.baseline)
        interval = rate_ratio_interval(candidate_errors, candidate_requests, baseline_errors, baseline_requests, alpha)
        return _decide(
            metric,
            alpha,
            interval,
            samples=int(candidate_requests),
            unit="requests to the candidate",
            candidate=candidate_errors / candidate_requests if candidate_requests else None,
            baseline=baseline_errors / baseline_requests if baseline_requests else None,
        )
    series = observations.get(metric.series, _EMPTY)
    pairs = [
        (value, series.baseline[minute])
        for minute, value in sorted(series.candidate.items())
        if minute in series.baseline and value > 0 and series.baseline[minute] > 0  # log ratios need both > 0
    ]
    summary = LogRatioSummary.of([math.log(c / b) for c, b in pairs])
    return _decide(
        metric,
        alpha,
        paired_log_ratio_interval(summary, alpha) if pairs else None,
        samples=len(pairs),
        unit="minutes with data from both variants",
        candidate=_geometric_mean([c for c, _ in pairs]),
        baseline=_geometric_mean([b for _, b in pairs]),
    )


def _decide(
    metric: JudgedMetric,
    alpha: float,
    interval: RatioInterval | None,
    *,
    samples: int,
    unit: str,
    candidate: float | None,
    baseline: float | None,
) -> MetricEvidence:
    confidence = 1.0 - alpha
    bounds = "no data" if interval is None else f"[{_ratio(interval.lower)}, {_ratio(interval.upper)}]"
    shown = f"the {_percent(confidence)} always-valid interval of the ratio candidate/baseline {bounds}"
    above, below = 1.0 + metric.tolerance, 1.0 - metric.tolerance
    outcome: Outcome
    if interval is not None and metric.direction != "lower_is_worse" and interval.lower > above:
        outcome, rule = "FAIL", f"{shown} lies above {above:g} (tolerance +{metric.tolerance:.0%})"
    elif interval is not None and metric.direction != "higher_is_worse" and interval.upper < below:
        outcome, rule = "FAIL", f"{shown} lies below {below:g} (tolerance -{metric.tolerance:.0%})"
    elif samples < metric.min_samples:
        outcome, rule = "INCONCLUSIVE", f"{samples} {unit} < min_samples {metric.min_samples}; {shown}"
    else:
        outcome, rule = "PASS", f"{samples} {unit} >= min_samples {metric.min_samples} and no regression: {shown}"
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
        interval=(None, None) if interval is None else (_finite(interval.lower - 1.0), _finite(interval.upper - 1.0)),
        confidence=confidence,
        rule=rule,
    )


def _total(values: Mapping[datetime, float]) -> float:
    return math.fsum(values.values())


def _geometric_mean(values: list[float]) -> float | None:
    return math.exp(math.fsum(math.log(v) for v in values) / len(values)) if values else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _ratio(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3g}"


def _percent(confidence: float) -> str:
    return f"{confidence * 100:.4g}%"
