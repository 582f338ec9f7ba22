"""Local mode's alarm evaluation on moto: alarms change state from the metrics, as CloudWatch's do.

The state changes are handed to a recorder with `Pump.set_alarm_state`'s signature that also sets
the state in moto; what the pump then emits is tested end to end in tests/e2e/test_local_traffic.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shepherd.adapters.cloudwatch import CloudWatchAlarms
from shepherd.rollouts.strategy import Analysis
from shepherd_cli.local import cloudwatch_emulator
from shepherd_cli.local.alarm_evaluator import AlarmEvaluator

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DIMENSIONS = [{"Name": "EndpointName", "Value": "churn-prod"}, {"Name": "VariantName", "Value": "churn-v2"}]


@dataclass
class Recorder:
    """Stands in for Pump.set_alarm_state (same signature), keeping what it was asked."""

    cloudwatch: Any
    changes: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, alarm_name: str, state: str, reason: str, reason_data: str) -> None:
        self.changes.append((alarm_name, state, reason, json.loads(reason_data)))
        self.cloudwatch.set_alarm_state(
            AlarmName=alarm_name, StateValue=state, StateReason=reason, StateReasonData=reason_data
        )


@dataclass
class World:
    cloudwatch: Any
    recorder: Recorder
    evaluator: AlarmEvaluator

    def minute(self, index: int, invocations: float = 300, errors: float = 0, latency_ms: float | None = 40) -> None:
        """Publish minute ``index`` (from START) of the canary's metrics."""
        at = START + timedelta(minutes=index)
        data: list[dict[str, Any]] = [
            {"MetricName": "Invocations", "Dimensions": DIMENSIONS, "Timestamp": at, "Value": invocations},
            {"MetricName": "Invocation5XXErrors", "Dimensions": DIMENSIONS, "Timestamp": at, "Value": errors},
        ]
        if latency_ms is not None:
            # 98 fast requests and 2 at the given latency: that latency is the minute's p99.
            values = {"Values": [20_000.0, latency_ms * 1000], "Counts": [98.0, 2.0], "Unit": "Microseconds"}
            data.append({"MetricName": "ModelLatency", "Dimensions": DIMENSIONS, "Timestamp": at, **values})
        self.cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)

    def evaluate_after(self, index: int) -> list[tuple[str, str]]:
        """Evaluate at the end of minute ``index``."""
        return self.evaluator.evaluate(START + timedelta(minutes=index + 1))

    def state(self, name: str) -> str:
        return str(self.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


@pytest.fixture
def world() -> Iterator[World]:
    cloudwatch_emulator.install()
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        recorder = Recorder(cloudwatch)
        yield World(cloudwatch, recorder, AlarmEvaluator(cloudwatch, recorder))


def shepherd_alarms(world: World, **analysis: Any) -> tuple[str, str]:
    """The two per-rollout alarms Shepherd creates on a canary (error rate, metric math; p99 latency)."""
    names = ("rollout-error-rate", "rollout-latency")
    CloudWatchAlarms(world.cloudwatch).create_rollout_alarms(names, "churn-prod", "churn-v2", Analysis(**analysis), ())
    return names


def test_the_error_rate_alarm_fires_after_three_breaching_minutes_and_recovers(world):
    error_rate, latency = shepherd_alarms(world)

    for minute in range(2):
        world.minute(minute, errors=30)  # 10%, above the 5% threshold
        assert world.evaluate_after(minute) == []  # 1, then 2 of the 3 periods breach: not yet
    world.minute(2, errors=30)
    assert world.evaluate_after(2) == [(error_rate, "ALARM")]

    [(name, state, reason, data)] = world.recorder.changes
    assert (name, state) == (error_rate, "ALARM")
    assert reason.startswith("Threshold Crossed: 3 out of the last 3 datapoints [10.0 (20/11/26 10:02:00), 10.0")
    assert "greater than the threshold (5.0) (minimum 3 datapoints for OK -> ALARM transition)" in reason
    assert data["recentDatapoints"] == [10.0, 10.0, 10.0] and data["threshold"] == 5.0
    assert data["startDate"] == "2026-11-20T10:00:00.000+0000" and data["period"] == 60
    assert world.state(error_rate) == "ALARM" and world.state(latency) == "OK"

    world.minute(3, errors=0)
    assert world.evaluate_after(3) == [(error_rate, "OK")]  # no longer 3 of 3


def test_the_p99_latency_alarm_fires_on_the_percentile_not_the_average(world):
    _error_rate, latency = shepherd_alarms(world)

    for minute in range(3):
        world.minute(minute, latency_ms=450)  # the average stays near 29 ms; the p99 is 450 ms
    assert world.evaluate_after(2) == [(latency, "ALARM")]
    assert world.recorder.changes[0][3]["statistic"] == "p99"
    assert world.recorder.changes[0][3]["recentDatapoints"] == [450_000.0, 450_000.0, 450_000.0]


def test_no_traffic_is_not_breaching_for_shepherds_alarms(world):
    names = shepherd_alarms(world)
    world.cloudwatch.set_alarm_state(AlarmName=names[0], StateValue="ALARM", StateReason="by hand")

    assert world.evaluate_after(2) == [(names[0], "OK")]  # TreatMissingData notBreaching, and no data


@pytest.mark.parametrize(
    ("treat_missing", "expected"),
    [("missing", "INSUFFICIENT_DATA"), ("breaching", "ALARM"), ("notBreaching", None), ("ignore", None)],
)
def test_missing_data_is_treated_as_the_alarm_says(world, treat_missing, expected):
    world.cloudwatch.put_metric_alarm(
        AlarmName="errors",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=DIMENSIONS,
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=10,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData=treat_missing,
    )

    changes = world.evaluate_after(5)  # nothing was published

    assert changes == ([("errors", expected)] if expected else [])  # a new alarm is OK in moto


def test_m_out_of_n_and_a_longer_period_is_evaluated_only_at_its_end(world):
    world.cloudwatch.put_metric_alarm(
        AlarmName="errors-2-of-3",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=DIMENSIONS,
        Statistic="Sum",
        Period=120,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    for minute, errors in enumerate([50, 0, 0, 0, 50, 0]):  # periods of two minutes: 50, 0, 50
        world.minute(minute, errors=errors)

    assert world.evaluate_after(4) == []  # 10:05 is not the end of a two-minute period
    assert world.evaluate_after(5) == [("errors-2-of-3", "ALARM")]
    assert world.recorder.changes[0][3]["recentDatapoints"] == [50.0, 0.0, 50.0]


def test_a_less_than_alarm_and_an_anomaly_band_alarm_is_left_alone(world):
    world.cloudwatch.put_metric_alarm(
        AlarmName="too-little-traffic",
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        Dimensions=DIMENSIONS,
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=100,
        ComparisonOperator="LessThanThreshold",
    )
    world.cloudwatch.put_metric_alarm(
        AlarmName="band",
        EvaluationPeriods=1,
        ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold",
        ThresholdMetricId="band",
        Metrics=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations", "Dimensions": DIMENSIONS},
                    "Period": 60,
                    "Stat": "Sum",
                },
            },
            {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(m, 2)"},
        ],
    )
    world.minute(0, invocations=20)

    assert world.evaluate_after(0) == [("too-little-traffic", "ALARM")]
