"""``analysis.judge`` in a strategy: which metrics the canary judge compares, and how strictly.

By default (whenever the endpoint has a live variant to compare with) the judge compares four
built-in SageMaker metrics; each can be tuned or switched off under ``default_metrics``::

    "judge": {
      "false_rollback_rate": 0.01,
      "default_metrics": {"latency_p99": {"tolerance": 0.2}, "errors_4xx": {"enabled": false}},
      "metrics": [{"name": "accuracy", "namespace": "Acme/Quality", "metric_name": "Accuracy",
                   "statistic": "Average", "dimensions": {"Task": "churn"},
                   "direction": "lower_is_worse", "tolerance": 0.02, "critical": true}],
      "max_extension_seconds": 600,
      "on_inconclusive": "hold"
    }

A user metric is published per variant (dimensions ``EndpointName`` and ``VariantName``, plus its own
``dimensions``) and is compared minute by minute like the built-in latencies. Validation errors name
the field (``analysis.judge.metrics[0].tolerance: ...``): see ``shepherd.rollouts.strategy``.
"""

import re
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shepherd.analysis.metrics import (
    BUILTIN_SERIES,
    INVOCATIONS,
    LATENCY_COUNT,
    Direction,
    JudgedMetric,
    SeriesQuery,
    slow_series_id,
)
from shepherd.kernel.frozen import Frozen

RULE_ERROR = "strategy_rule"
"""Error type of rules that spell out their own path (shared with ``shepherd.rollouts.strategy``)."""
_FIELD_ERROR = "judge_field"

MAX_USER_METRICS = 20  # 2 + 20 series per variant keeps GetMetricData far below its 500 queries
_MAX_EXTRA_DIMENSIONS = 28  # CloudWatch allows 30 dimensions; EndpointName and VariantName are two
_MAX_SECONDS = 604_800
_STATISTIC = re.compile(r"^(Sum|Average|Minimum|Maximum|SampleCount|p(\d{1,2}(\.\d{1,2})?|100))$")
_RESERVED_DIMENSIONS = ("EndpointName", "VariantName")

Tolerance = Annotated[float, Strict(), Field(ge=0, le=10, allow_inf_nan=False)]
MinSamples = Annotated[StrictInt, Field(ge=1, le=10_000_000)]
MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
CloudWatchName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^:].*$")]
DimensionName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
DimensionValue = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class _Directed(Frozen):
    direction: Direction
    tolerance: Tolerance

    @field_validator("tolerance")
    @classmethod
    def _ratio_stays_positive(cls, tolerance: float, info: ValidationInfo) -> float:
        # "10% lower" is a ratio of 0.9; a tolerance of 1 or more would accept a ratio of 0 or less.
        direction = info.data.get("direction")
        if direction in ("lower_is_worse", "either") and tolerance >= 1:
            raise PydanticCustomError(
                _FIELD_ERROR,
                "must be below 1 when direction is '{direction}' (a ratio cannot drop by 100% or more)",
                {"direction": direction},
            )
        return float(tolerance)


class DefaultMetricSettings(Frozen):
    """Changes to one built-in metric; anything left out keeps the built-in value."""

    enabled: StrictBool = True
    tolerance: Tolerance | None = None
    critical: StrictBool | None = None
    min_samples: MinSamples | None = None


class DefaultMetrics(Frozen):
    """The built-in metrics, all on. Rates are judged from counts, latencies minute by minute."""

    errors_5xx: DefaultMetricSettings = Field(default_factory=DefaultMetricSettings)
    errors_4xx: DefaultMetricSettings = Field(default_factory=DefaultMetricSettings)
    latency_p50: DefaultMetricSettings = Field(default_factory=DefaultMetricSettings)
    latency_p99: DefaultMetricSettings = Field(default_factory=DefaultMetricSettings)


# The built-in metrics before any change (README, "The canary judge's defaults").
# Errors: a rise of more than 25% fails (a candidate on one instance against a baseline on several
# differs by host alone; +10% per instance is common), and a candidate whose rate is surely below the
# negligible rate passes. 4xx are the callers' errors: a rise fails at the end of the bake rather
# than at once. Latency p99: the share of requests above the baseline's p99 (a tail metric), +10% in
# latency, at once; p50: the per-minute medians paired (a per-minute median is unbiased whatever the
# request count, a per-minute p99 is not). min_samples counts requests to the candidate, or minutes.
_BUILTIN_METRICS: dict[str, JudgedMetric] = {
    "errors_5xx": JudgedMetric(
        "errors_5xx", "rate", "invocation_5xx_errors", "higher_is_worse", 0.25, True, 500, INVOCATIONS.id,
        negligible_rate=0.001,
    ),
    "errors_4xx": JudgedMetric(
        "errors_4xx", "rate", "invocation_4xx_errors", "higher_is_worse", 0.25, False, 500, INVOCATIONS.id,
        negligible_rate=0.005,
    ),
    "latency_p50": JudgedMetric("latency_p50", "paired", "model_latency_p50", "higher_is_worse", 0.1, True, 5),
    "latency_p99": JudgedMetric(
        "latency_p99", "tail", "model_latency_p99_slow", "higher_is_worse", 0.1, True, 500, LATENCY_COUNT.id,
        quantile=0.99, threshold_series="model_latency_p99",
    ),
}  # fmt: skip


class UserMetric(_Directed):
    """A KPI published per variant, compared minute by minute with the baseline's."""

    name: MetricName
    namespace: CloudWatchName
    metric_name: CloudWatchName
    statistic: Annotated[str, StringConstraints(max_length=16)]
    dimensions: Annotated[dict[DimensionName, DimensionValue], Field(max_length=_MAX_EXTRA_DIMENSIONS)] = Field(
        default_factory=dict
    )
    critical: StrictBool = False
    min_samples: MinSamples = 5

    @field_validator("statistic")
    @classmethod
    def _known_statistic(cls, statistic: str) -> str:
        if not _STATISTIC.match(statistic):
            raise PydanticCustomError(
                _FIELD_ERROR, "must be Sum, Average, Minimum, Maximum, SampleCount or a percentile such as p99"
            )
        return statistic

    @field_validator("dimensions")
    @classmethod
    def _no_variant_dimensions(cls, dimensions: dict[str, str]) -> dict[str, str]:
        reserved = [name for name in _RESERVED_DIMENSIONS if name in dimensions]
        if reserved:
            raise PydanticCustomError(
                _FIELD_ERROR,
                "Shepherd sets {names} for each variant: leave {pronoun} out",
                {"names": " and ".join(reserved), "pronoun": "them" if len(reserved) > 1 else "it"},
            )
        return dimensions

    def judged(self) -> JudgedMetric:
        return JudgedMetric(
            self.name, "paired", self.name, self.direction, float(self.tolerance), self.critical, self.min_samples
        )

    def series(self) -> SeriesQuery:
        return SeriesQuery(
            self.name, self.namespace, self.metric_name, self.statistic, tuple(sorted(self.dimensions.items()))
        )


class JudgeConfig(Frozen):
    """The canary judge of one promotion. It runs only when there is a live variant to compare with."""

    enabled: StrictBool = True
    # Probability, per traffic step, that a candidate as good as the live model is rolled back by the
    # judge, although the judge looks again every minute. Split equally among the judged metrics.
    false_rollback_rate: Annotated[float, Strict(), Field(gt=0, le=0.2, allow_inf_nan=False)] = 0.01
    default_metrics: DefaultMetrics = Field(default_factory=DefaultMetrics)
    metrics: Annotated[tuple[UserMetric, ...], Field(max_length=MAX_USER_METRICS)] = ()
    # A bake that ends INCONCLUSIVE (too little traffic) is extended up to this long...
    max_extension_seconds: Annotated[StrictInt, Field(ge=0, le=_MAX_SECONDS)] = 600
    # ...then the rollout holds for an operator, advances, or rolls back.
    on_inconclusive: Literal["hold", "advance", "rollback"] = "hold"
    # enforce: the judge's decisions act. advisory: it judges and announces what it would have done
    # ("advisory": true), and the rollout goes on by its bakes and alarms alone.
    mode: Literal["enforce", "advisory"] = "enforce"
    # live: the candidate is compared with the live variant. fresh: the live version is deployed again
    # as a variant of the candidate's size and weight, so both sides start cold on the same capacity.
    baseline: Literal["live", "fresh"] = "live"
    # The first minutes of each step are not judged (a new variant loads its model, warms caches)...
    warmup_seconds: Annotated[StrictInt, Field(ge=0, le=3600)] = 180
    # ...except that a gross failure (this many times the baseline's rate, with evidence) still fails.
    gross_failure_ratio: Annotated[float, Strict(), Field(ge=1.5, le=1000, allow_inf_nan=False)] = 5.0
    # CloudWatch publishes a minute's metrics late: minutes that began less than this long ago may be
    # partial or missing, and are not judged.
    metrics_delay_seconds: Annotated[StrictInt, Field(ge=60, le=900)] = 120
    # A held step is judged on every pass; after this long it does what on_hold_timeout says.
    max_hold_seconds: Annotated[StrictInt, Field(ge=60, le=_MAX_SECONDS)] = 86_400
    on_hold_timeout: Literal["rollback", "advance"] = "rollback"
    # A held step is held for want of evidence: a later PASS advances it (true), or it waits for an
    # operator or the deadline all the same (false). A later FAIL always rolls it back.
    held_step_advances: StrictBool = True
    # While a hold lasts, it is announced again this often (it is announced when it starts).
    hold_reminder_seconds: Annotated[StrictInt, Field(ge=60, le=_MAX_SECONDS)] = 3600

    @model_validator(mode="after")
    def _distinct_names(self) -> Self:
        slow = (slow_series_id(metric) for metric in _BUILTIN_METRICS.values() if metric.kind == "tail")
        builtin = {*_BUILTIN_METRICS, *(series.id for series in BUILTIN_SERIES), *slow}
        taken: set[str] = set()
        for index, metric in enumerate(self.metrics):
            if metric.name in builtin or metric.name in taken:
                raise PydanticCustomError(
                    RULE_ERROR,
                    "metrics[{index}].name: '{name}' is already used (names of user metrics are unique and "
                    "differ from the built-in names: {builtin})",
                    {"index": index, "name": metric.name, "builtin": ", ".join(sorted(builtin))},
                )
            taken.add(metric.name)
        return self

    def judged_metrics(self) -> tuple[JudgedMetric, ...]:
        """Every metric the judge decides on, built-in ones first (empty when disabled)."""
        if not self.enabled:
            return ()
        chosen: list[JudgedMetric] = []
        for name, builtin in _BUILTIN_METRICS.items():
            settings: DefaultMetricSettings = getattr(self.default_metrics, name)
            if settings.enabled:
                chosen.append(_apply(builtin, settings))
        return (*chosen, *(metric.judged() for metric in self.metrics))

    def series(self) -> tuple[SeriesQuery, ...]:
        """The CloudWatch series the judged metrics need, each once, but for the tail metrics' slow
        counts, whose thresholds come from the baseline (``shepherd.analysis.look.queries``)."""
        needed = {
            name
            for metric in self.judged_metrics()
            for name in (metric.series, metric.requests_series, metric.threshold_series)
        }
        builtin = tuple(series for series in BUILTIN_SERIES if series.id in needed)
        return (*builtin, *(metric.series() for metric in self.metrics if self.enabled))


def _apply(builtin: JudgedMetric, settings: DefaultMetricSettings) -> JudgedMetric:
    return JudgedMetric(
        name=builtin.name,
        kind=builtin.kind,
        series=builtin.series,
        direction=builtin.direction,
        tolerance=builtin.tolerance if settings.tolerance is None else float(settings.tolerance),
        critical=builtin.critical if settings.critical is None else settings.critical,
        min_samples=builtin.min_samples if settings.min_samples is None else settings.min_samples,
        requests_series=builtin.requests_series,
        quantile=builtin.quantile,
        threshold_series=builtin.threshold_series,
        negligible_rate=builtin.negligible_rate,
    )
