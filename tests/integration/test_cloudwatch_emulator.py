"""The CloudWatch emulator extension (percentiles, metric math, compact distributions), through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shepherd_cli.local import cloudwatch_emulator

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DIMENSIONS = [{"Name": "EndpointName", "Value": "churn-prod"}, {"Name": "VariantName", "Value": "churn-v2"}]


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    cloudwatch_emulator.install()
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="eu-west-1")


def put(cloudwatch: Any, name: str, at: datetime, **value: Any) -> None:
    datum = {"MetricName": name, "Dimensions": DIMENSIONS, "Timestamp": at, **value}
    cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[datum])


def query(query_id: str, name: str, stat: str, *, returned: bool = True, period: int = 60) -> dict[str, Any]:
    metric = {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": DIMENSIONS}
    return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}, "ReturnData": returned}


def series(cloudwatch: Any, *queries: dict[str, Any], minutes: int = 3) -> dict[str, list[float]]:
    response = cloudwatch.get_metric_data(
        MetricDataQueries=list(queries),
        StartTime=START,
        EndTime=START + timedelta(minutes=minutes),
        ScanBy="TimestampAscending",
    )
    return {result["Id"]: result["Values"] for result in response["MetricDataResults"]}


def test_percentiles_of_values_and_counts_are_nearest_rank_over_every_sample(cloudwatch):
    # 1..100 ms once each in the first minute, split across two data; 10 ms 99 times and 500 ms once in the next.
    put(cloudwatch, "ModelLatency", START, Values=[float(v) for v in range(1, 51)], Unit="Milliseconds")
    put(cloudwatch, "ModelLatency", START, Values=[float(v) for v in range(51, 101)], Unit="Milliseconds")
    put(cloudwatch, "ModelLatency", START + timedelta(minutes=1), Values=[10.0, 500.0], Counts=[99.0, 1.0])

    result = series(
        cloudwatch,
        query("p50", "ModelLatency", "p50"),
        query("p99", "ModelLatency", "p99"),
        query("p99_9", "ModelLatency", "p99.9"),
        query("samples", "ModelLatency", "SampleCount"),
        query("average", "ModelLatency", "Average"),
    )

    assert result["p50"] == [50.0, 10.0]
    assert result["p99"] == [99.0, 10.0]
    assert result["p99_9"] == [100.0, 500.0]
    # moto's own statistics still see every sample of a Values/Counts datum.
    assert result["samples"] == [100.0, 100.0]
    assert result["average"] == [50.5, (99 * 10.0 + 500.0) / 100]


def test_single_values_count_as_samples_and_statistic_sets_have_no_percentile(cloudwatch):
    for value in (5.0, 1.0, 3.0):
        put(cloudwatch, "ModelLatency", START, Value=value)
    stats = {"SampleCount": 10.0, "Sum": 100.0, "Minimum": 1.0, "Maximum": 20.0}
    put(cloudwatch, "ModelLatency", START + timedelta(minutes=1), StatisticValues=stats)

    result = series(cloudwatch, query("p50", "ModelLatency", "p50"), query("sum", "ModelLatency", "Sum"))

    assert result["p50"] == [3.0]  # CloudWatch cannot compute a percentile from a statistic set
    assert result["sum"] == [9.0, 100.0]


def test_get_metric_statistics_returns_extended_statistics(cloudwatch):
    put(cloudwatch, "ModelLatency", START, Values=[float(v) for v in range(1, 101)], Unit="Microseconds")

    datapoints = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=DIMENSIONS,
        StartTime=START,
        EndTime=START + timedelta(minutes=1),
        Period=60,
        Statistics=["SampleCount"],
        ExtendedStatistics=["p50", "p90"],
    )["Datapoints"]

    assert [(point["SampleCount"], point["ExtendedStatistics"]) for point in datapoints] == [
        (100.0, {"p50": 50.0, "p90": 90.0})
    ]


def test_get_metric_statistics_rejects_an_extended_statistic_that_is_not_a_percentile(cloudwatch):
    with pytest.raises(ClientError, match="tm99"):
        cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="ModelLatency",
            StartTime=START,
            EndTime=START + timedelta(minutes=1),
            Period=60,
            ExtendedStatistics=["tm99"],
        )


def test_metric_math_computes_an_error_rate_point_by_point(cloudwatch):
    for minute, (invocations, errors) in enumerate([(200.0, 10.0), (0.0, 0.0), (400.0, 100.0)]):
        put(cloudwatch, "Invocations", START + timedelta(minutes=minute), Value=invocations)
        put(cloudwatch, "Invocation5XXErrors", START + timedelta(minutes=minute), Value=errors)

    result = series(
        cloudwatch,
        query("invocations", "Invocations", "Sum", returned=False),
        query("errors", "Invocation5XXErrors", "Sum", returned=False),
        {"Id": "guarded", "Expression": "IF(invocations > 0, 100 * errors / invocations, 0)"},
        {"Id": "plain", "Expression": "100 * errors / invocations"},
        {"Id": "logic", "Expression": "invocations > 100 AND errors >= 100"},
    )

    assert result == {"guarded": [5.0, 0.0, 25.0], "plain": [5.0, 25.0], "logic": [0.0, 0.0, 1.0]}


def test_metric_math_rejects_what_it_cannot_evaluate(cloudwatch):
    put(cloudwatch, "Invocations", START, Value=1.0)
    with pytest.raises(ClientError, match="FILL"):
        series(cloudwatch, query("m", "Invocations", "Sum", returned=False), {"Id": "e", "Expression": "FILL(m, 0)"})
    with pytest.raises(ClientError, match="unknown ids: other"):
        series(cloudwatch, query("m", "Invocations", "Sum", returned=False), {"Id": "e", "Expression": "m + other"})


def test_a_distribution_is_stored_as_one_datum_not_one_per_count(cloudwatch):
    put(cloudwatch, "ModelLatency", START, Values=[10.0, 20.0], Counts=[2999.0, 1.0])

    backend_data = [datum for datum in _backend().metric_data if datum.name == "ModelLatency"]

    assert len(backend_data) == 1
    assert series(cloudwatch, query("count", "ModelLatency", "SampleCount"))["count"] == [3000.0]


def _backend() -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends["123456789012"]["eu-west-1"]
