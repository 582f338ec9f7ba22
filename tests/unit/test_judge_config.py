"""``analysis.judge`` in a strategy: defaults, user metrics, and a precise reason for each bad field."""

from __future__ import annotations

from typing import Any

import pytest

from shepherd.analysis.metrics import JudgedMetric, SeriesQuery
from shepherd.rollouts.strategy import InvalidStrategy, parse_strategy

CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 600}
ACCURACY = {
    "name": "accuracy",
    "namespace": "Acme/Quality",
    "metric_name": "Accuracy",
    "statistic": "Average",
    "dimensions": {"Task": "churn"},
    "direction": "lower_is_worse",
    "tolerance": 0.02,
}


def judge_of(judge: dict[str, Any]):
    return parse_strategy({**CANARY, "analysis": {"judge": judge}}).analysis.judge


def reason_for(judge: dict[str, Any]) -> str:
    with pytest.raises(InvalidStrategy) as caught:
        parse_strategy({**CANARY, "analysis": {"judge": judge}})
    return caught.value.reason


def test_by_default_the_judge_compares_errors_and_latency_percentiles():
    judge = parse_strategy(CANARY).analysis.judge

    assert judge.enabled and judge.false_rollback_rate == 0.01 and judge.mode == "enforce"
    assert judge.max_extension_seconds == 600 and judge.on_inconclusive == "hold"
    assert (judge.warmup_seconds, judge.metrics_delay_seconds, judge.gross_failure_ratio) == (180, 120, 5.0)
    assert (judge.max_hold_seconds, judge.on_hold_timeout, judge.baseline) == (86_400, "rollback", "live")
    assert judge.judged_metrics() == (
        JudgedMetric(
            "errors_5xx", "rate", "invocation_5xx_errors", "higher_is_worse", 0.25, True, 500, "invocations",
            negligible_rate=0.001,
        ),
        JudgedMetric(
            "errors_4xx", "rate", "invocation_4xx_errors", "higher_is_worse", 0.25, False, 500, "invocations",
            negligible_rate=0.005,
        ),
        JudgedMetric("latency_p50", "paired", "model_latency_p50", "higher_is_worse", 0.1, True, 5),
        JudgedMetric(
            "latency_p99", "tail", "model_latency_p99_slow", "higher_is_worse", 0.1, True, 500,
            "model_latency_count", quantile=0.99, threshold_series="model_latency_p99",
        ),
    )  # fmt: skip
    # The slow counts above the p99 threshold are added once the threshold is known (analysis/look.py).
    assert [(s.metric_name, s.statistic) for s in judge.series()] == [
        ("Invocations", "Sum"),
        ("Invocation5XXErrors", "Sum"),
        ("Invocation4XXErrors", "Sum"),
        ("ModelLatency", "p50"),
        ("ModelLatency", "p99"),
        ("ModelLatency", "SampleCount"),
    ]


def test_built_in_metrics_can_be_tuned_or_switched_off_and_user_metrics_added():
    judge = judge_of(
        {
            "false_rollback_rate": 0.05,
            "default_metrics": {
                "latency_p99": {"tolerance": 0.25, "critical": False, "min_samples": 10},
                "errors_4xx": {"enabled": False},
                "errors_5xx": {"enabled": False},
            },
            "metrics": [{**ACCURACY, "critical": True, "min_samples": 20}],
            "max_extension_seconds": 0,
            "on_inconclusive": "rollback",
        }
    )

    assert [(m.name, m.tolerance, m.critical, m.min_samples) for m in judge.judged_metrics()] == [
        ("latency_p50", 0.1, True, 5),
        ("latency_p99", 0.25, False, 10),
        ("accuracy", 0.02, True, 20),
    ]
    # Without a rate metric, the invocation counts are not fetched.
    assert judge.series() == (
        SeriesQuery("model_latency_p50", "AWS/SageMaker", "ModelLatency", "p50"),
        SeriesQuery("model_latency_p99", "AWS/SageMaker", "ModelLatency", "p99"),
        SeriesQuery("model_latency_count", "AWS/SageMaker", "ModelLatency", "SampleCount"),
        SeriesQuery("accuracy", "Acme/Quality", "Accuracy", "Average", (("Task", "churn"),)),
    )
    assert judge.on_inconclusive == "rollback" and judge.max_extension_seconds == 0


def test_a_disabled_judge_judges_nothing_and_fetches_nothing():
    judge = judge_of({"enabled": False, "metrics": [ACCURACY]})

    assert judge.judged_metrics() == () and judge.series() == ()


@pytest.mark.parametrize("statistic", ["Sum", "Average", "Minimum", "Maximum", "SampleCount", "p99", "p99.9", "p50"])
def test_statistics_cloudwatch_accepts(statistic):
    assert judge_of({"metrics": [{**ACCURACY, "statistic": statistic}]}).metrics[0].statistic == statistic


@pytest.mark.parametrize(
    ("judge", "reason"),
    [
        (
            {"metrics": [{**ACCURACY, "tolerance": 1.5}]},
            "analysis.judge.metrics[0].tolerance: must be below 1 when direction is 'lower_is_worse' (a ratio "
            "cannot drop by 100% or more) (got 1.5)",
        ),
        (
            {"metrics": [{**ACCURACY, "direction": "either", "tolerance": 1}]},
            "analysis.judge.metrics[0].tolerance: must be below 1 when direction is 'either' (a ratio cannot drop "
            "by 100% or more) (got 1)",
        ),
        (
            {"metrics": [{**ACCURACY, "tolerance": -0.1}]},
            "analysis.judge.metrics[0].tolerance: Input should be greater than or equal to 0 (got -0.1)",
        ),
        (
            {"metrics": [{**ACCURACY, "tolerance": "5%"}]},
            "analysis.judge.metrics[0].tolerance: Input should be a valid number (got '5%')",
        ),
        (
            {"metrics": [{**ACCURACY, "direction": "down"}]},
            "analysis.judge.metrics[0].direction: Input should be 'higher_is_worse', 'lower_is_worse' or 'either' "
            "(got 'down')",
        ),
        (
            {"metrics": [{**ACCURACY, "statistic": "avg"}]},
            "analysis.judge.metrics[0].statistic: must be Sum, Average, Minimum, Maximum, SampleCount or a "
            "percentile such as p99 (got 'avg')",
        ),
        (
            {"metrics": [{**ACCURACY, "name": "Accuracy"}]},
            "analysis.judge.metrics[0].name: String should match pattern '^[a-z][a-z0-9_]{0,62}$' (got 'Accuracy')",
        ),
        (
            {"metrics": [{**ACCURACY, "dimensions": {"EndpointName": "x", "VariantName": "y"}}]},
            "analysis.judge.metrics[0].dimensions: Shepherd sets EndpointName and VariantName for each variant: "
            "leave them out",
        ),
        (
            {"metrics": [{**ACCURACY, "dimensions": {"VariantName": "y"}}]},
            "analysis.judge.metrics[0].dimensions: Shepherd sets VariantName for each variant: leave it out",
        ),
        (
            {"metrics": [{**ACCURACY, "min_samples": 0}]},
            "analysis.judge.metrics[0].min_samples: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            {"metrics": [{**ACCURACY, "critical": "yes"}]},
            "analysis.judge.metrics[0].critical: Input should be a valid boolean (got 'yes')",
        ),
        (
            {"metrics": [{"name": "accuracy"}]},
            "analysis.judge.metrics[0].direction: Field required; analysis.judge.metrics[0].tolerance: Field "
            "required; analysis.judge.metrics[0].namespace: Field required; analysis.judge.metrics[0].metric_name: "
            "Field required; analysis.judge.metrics[0].statistic: Field required",
        ),
        (
            {"metrics": [ACCURACY, {**ACCURACY, "metric_name": "Precision"}]},
            "analysis.judge: metrics[1].name: 'accuracy' is already used (names of user metrics are unique and "
            "differ from the built-in names: errors_4xx, errors_5xx, invocation_4xx_errors, invocation_5xx_errors, "
            "invocations, latency_p50, latency_p99, model_latency_count, model_latency_p50, model_latency_p99, "
            "model_latency_p99_slow)",
        ),
        (
            {"metrics": [{**ACCURACY, "name": "latency_p99"}]},
            "analysis.judge: metrics[0].name: 'latency_p99' is already used (names of user metrics are unique and "
            "differ from the built-in names: errors_4xx, errors_5xx, invocation_4xx_errors, invocation_5xx_errors, "
            "invocations, latency_p50, latency_p99, model_latency_count, model_latency_p50, model_latency_p99, "
            "model_latency_p99_slow)",
        ),
        (
            {"metrics": [ACCURACY] * 21},
            "analysis.judge.metrics: Tuple should have at most 20 items after validation, not 21",
        ),
        (
            {"default_metrics": {"latency_p90": {"tolerance": 0.2}}},
            "analysis.judge.default_metrics.latency_p90: Extra inputs are not permitted",
        ),
        (
            {"default_metrics": {"errors_5xx": {"enabled": "no"}}},
            "analysis.judge.default_metrics.errors_5xx.enabled: Input should be a valid boolean (got 'no')",
        ),
        (
            {"false_rollback_rate": 0},
            "analysis.judge.false_rollback_rate: Input should be greater than 0 (got 0)",
        ),
        (
            {"false_rollback_rate": 0.5},
            "analysis.judge.false_rollback_rate: Input should be less than or equal to 0.2 (got 0.5)",
        ),
        (
            {"on_inconclusive": "wait"},
            "analysis.judge.on_inconclusive: Input should be 'hold', 'advance' or 'rollback' (got 'wait')",
        ),
        (
            {"max_extension_seconds": -1},
            "analysis.judge.max_extension_seconds: Input should be greater than or equal to 0 (got -1)",
        ),
        (
            {"max_extension_seconds": "600"},
            "analysis.judge.max_extension_seconds: Input should be a valid integer (got '600')",
        ),
        ({"verdict": "PASS"}, "analysis.judge.verdict: Extra inputs are not permitted"),
    ],
)
def test_each_bad_field_is_named_with_the_reason(judge, reason):
    assert reason_for(judge) == reason
