"""What the judge compares: the CloudWatch series it needs and the metrics it judges from them.

A *series* is one CloudWatch metric and statistic, fetched per minute for both variants (the
adapter adds the ``EndpointName`` and ``VariantName`` dimensions). A *judged metric* is either a
rate (errors over requests, from two count series) or a continuous metric compared minute by
minute (one series). The built-in ones are SageMaker's per-variant endpoint metrics.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

Direction = Literal["higher_is_worse", "lower_is_worse", "either"]
MetricKind = Literal["rate", "paired"]

SAGEMAKER_NAMESPACE = "AWS/SageMaker"


class SeriesQuery(Struct, frozen=True):
    """One per-minute CloudWatch series, fetched for the candidate and for the baseline variant."""

    id: str  # also the prefix of the GetMetricData query ids: lowercase letter first, [a-z0-9_]
    namespace: str
    metric_name: str
    statistic: str  # Sum, Average, Minimum, Maximum, SampleCount or a percentile such as p99
    dimensions: tuple[tuple[str, str], ...] = ()  # besides EndpointName and VariantName


class JudgedMetric(Struct, frozen=True):
    """A metric as the judge sees it: where its numbers come from and what counts as worse."""

    name: str
    kind: MetricKind
    series: str  # paired: the compared series; rate: the event counts (errors)
    direction: Direction
    tolerance: float  # acceptable relative change: 0.1 = the candidate may be 10% worse
    critical: bool
    min_samples: int  # rate: requests to the candidate; paired: minutes with data from both
    requests_series: str | None = None  # rate only: the denominator


INVOCATIONS = SeriesQuery("invocations", SAGEMAKER_NAMESPACE, "Invocations", "Sum")
BUILTIN_SERIES: tuple[SeriesQuery, ...] = (
    INVOCATIONS,
    SeriesQuery("invocation_5xx_errors", SAGEMAKER_NAMESPACE, "Invocation5XXErrors", "Sum"),
    SeriesQuery("invocation_4xx_errors", SAGEMAKER_NAMESPACE, "Invocation4XXErrors", "Sum"),
    SeriesQuery("model_latency_p50", SAGEMAKER_NAMESPACE, "ModelLatency", "p50"),
    SeriesQuery("model_latency_p99", SAGEMAKER_NAMESPACE, "ModelLatency", "p99"),
)
