"""What the judge compares: the CloudWatch series it needs and the metrics it judges from them.

A *series* is one CloudWatch metric and statistic, fetched per minute for both variants (the
adapter adds the ``EndpointName`` and ``VariantName`` dimensions). A *judged metric* is one of:

- ``rate``: events over requests (5xx, 4xx), from two count series;
- ``tail``: the share of requests slower than a threshold taken from the baseline (``ModelLatency``
  above the baseline's p50 or p99), from CloudWatch's trimmed count ``TC(threshold:)`` and the
  sample count of that minute: a count of requests, unbiased by how many requests each variant
  had, where a per-minute percentile of 30 requests is not one of 270;
- ``paired``: a continuous metric compared minute by minute (user KPIs).

The built-in ones are SageMaker's per-variant endpoint metrics.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

Direction = Literal["higher_is_worse", "lower_is_worse", "either"]
MetricKind = Literal["rate", "tail", "paired"]
Side = Literal["candidate", "baseline"]

SAGEMAKER_NAMESPACE = "AWS/SageMaker"


class SeriesQuery(Struct, frozen=True):
    """One per-minute CloudWatch series, fetched for the candidate and for the baseline variant."""

    id: str  # also the prefix of the GetMetricData query ids: lowercase letter first, [a-z0-9_]
    namespace: str
    metric_name: str
    statistic: str  # Sum, Average, Minimum, Maximum, SampleCount, a percentile such as p99, TC(x:)
    dimensions: tuple[tuple[str, str], ...] = ()  # besides EndpointName and VariantName
    # The candidate's statistic when it differs from the baseline's (a tail metric's threshold is
    # the baseline's times 1 + tolerance on the candidate's side).
    candidate_statistic: str | None = None

    def statistic_of(self, side: Side) -> str:
        return self.candidate_statistic or self.statistic if side == "candidate" else self.statistic


class JudgedMetric(Struct, frozen=True):
    """A metric as the judge sees it: where its numbers come from and what counts as worse."""

    name: str
    kind: MetricKind
    series: str  # paired: the compared series; rate: the event counts; tail: the slow-request counts
    direction: Direction
    tolerance: float  # acceptable relative change: 0.1 = the candidate may be 10% worse
    critical: bool
    min_samples: int  # rate, tail: requests to the candidate; paired: minutes with data from both
    requests_series: str | None = None  # rate, tail: the denominator
    # tail: the baseline's quantile that sets the threshold (0.99: the share above its p99), and the
    # per-minute percentile series the threshold is read from.
    quantile: float | None = None
    threshold_series: str | None = None
    # rate: a candidate whose error rate is surely below this (0.001 = 0.1%) passes, however few
    # errors the baseline had to compare with.
    negligible_rate: float = 0.0

    @property
    def charted_series(self) -> str:
        """The per-minute series charted for this metric: a tail's percentile, else its own series."""
        return self.threshold_series or self.series


INVOCATIONS = SeriesQuery("invocations", SAGEMAKER_NAMESPACE, "Invocations", "Sum")
LATENCY_COUNT = SeriesQuery("model_latency_count", SAGEMAKER_NAMESPACE, "ModelLatency", "SampleCount")
BUILTIN_SERIES: tuple[SeriesQuery, ...] = (
    INVOCATIONS,
    SeriesQuery("invocation_5xx_errors", SAGEMAKER_NAMESPACE, "Invocation5XXErrors", "Sum"),
    SeriesQuery("invocation_4xx_errors", SAGEMAKER_NAMESPACE, "Invocation4XXErrors", "Sum"),
    SeriesQuery("model_latency_p50", SAGEMAKER_NAMESPACE, "ModelLatency", "p50"),
    SeriesQuery("model_latency_p99", SAGEMAKER_NAMESPACE, "ModelLatency", "p99"),
    LATENCY_COUNT,
)


def slow_series_id(metric: JudgedMetric) -> str:
    """The id of a tail metric's slow-request count series (``model_latency_p99`` -> ``..._slow``)."""
    return f"{metric.threshold_series}_slow"


def tail_query(metric: JudgedMetric, threshold: float) -> SeriesQuery:
    """The requests slower than ``threshold`` (the baseline's) and than threshold x (1 + tolerance)."""
    return SeriesQuery(
        slow_series_id(metric),
        SAGEMAKER_NAMESPACE,
        "ModelLatency",
        trimmed_count_above(threshold),
        candidate_statistic=trimmed_count_above(threshold * (1.0 + metric.tolerance)),
    )


def trimmed_count_above(threshold: float) -> str:
    """CloudWatch's trimmed count of the values above ``threshold`` (the lower bound is exclusive)."""
    return f"TC({threshold:.3f}:)"
