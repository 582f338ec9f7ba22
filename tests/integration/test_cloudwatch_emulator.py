"""The CloudWatch emulator extension (extended statistics, metric math, compact distributions), through boto3."""

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


def test_get_metric_statistics_rejects_what_is_not_an_extended_statistic(cloudwatch):
    with pytest.raises(ClientError, match="Sum"):
        cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="ModelLatency",
            StartTime=START,
            EndTime=START + timedelta(minutes=1),
            Period=60,
            ExtendedStatistics=["Sum"],
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


# --- extended statistics: CloudWatch's statistics definitions ---------------------------------------


def test_trimmed_counts_sums_means_and_percentile_ranks_by_value(cloudwatch):
    # 1..100 ms once each; the lower bound is exclusive, the upper one inclusive.
    put(cloudwatch, "ModelLatency", START, Values=[float(v) for v in range(1, 101)])
    # A SageMaker-like grid: 10 ms 99 times, 20 ms once.
    put(cloudwatch, "ModelLatency", START + timedelta(minutes=1), Values=[10.0, 20.0], Counts=[99.0, 1.0])

    result = series(
        cloudwatch,
        query("above_50", "ModelLatency", "TC(50:)"),
        query("above_10", "ModelLatency", "TC(10.000:)"),
        query("between", "ModelLatency", "TC(50:60)"),
        query("far_above", "ModelLatency", "TC(5000:)"),
        query("samples", "ModelLatency", "SampleCount"),
        query("rank_low", "ModelLatency", "PR(:15)"),
        query("rank_high", "ModelLatency", "PR(90:)"),
        query("mean_top", "ModelLatency", "TM(90:)"),
        query("sum_low", "ModelLatency", "TS(:10)"),
    )

    assert result["above_50"] == [50.0, 0.0]
    assert result["above_10"] == [90.0, 1.0]
    assert result["between"] == [10.0, 0.0]
    # Samples in the period, none above the bound: a count of 0, not a missing point.
    assert result["far_above"] == [0.0, 0.0]
    assert result["samples"] == [100.0, 100.0]
    assert result["rank_low"] == [15.0, 99.0]
    assert result["rank_high"] == [10.0, 0.0]
    assert result["mean_top"] == [95.5]  # nothing above 90 in the second minute: no mean
    assert result["sum_low"] == [55.0, 990.0]


def test_percentage_bounds_trim_by_rank(cloudwatch):
    put(cloudwatch, "ModelLatency", START, Values=[float(v) for v in range(1, 101)])
    put(cloudwatch, "ModelLatency", START + timedelta(minutes=1), Values=[1.0, 2.0, 3.0])

    result = series(
        cloudwatch,
        query("middle", "ModelLatency", "TC(10%:90%)"),
        query("middle_mean", "ModelLatency", "TM(10%:90%)"),
        query("tc90", "ModelLatency", "tc90"),
        query("tm90", "ModelLatency", "tm90"),
        query("iqm", "ModelLatency", "IQM"),
        query("top", "ModelLatency", "TS(95%:)"),
    )

    assert result["middle"] == [80.0, pytest.approx(2.4)]
    assert result["middle_mean"] == [50.5, pytest.approx(2.0)]
    assert result["tc90"] == [90.0, pytest.approx(2.7)]  # a sample straddling the bound counts in part
    assert result["tm90"] == [45.5, pytest.approx((1 + 2 + 0.7 * 3) / 2.7)]
    assert result["iqm"] == [50.5, 2.0]
    assert result["top"] == [96.0 + 97 + 98 + 99 + 100, pytest.approx(0.15 * 3)]


def test_statistic_sets_count_only_when_cloudwatch_could_split_them(cloudwatch):
    same = {"SampleCount": 40.0, "Sum": 400.0, "Minimum": 10.0, "Maximum": 10.0}
    put(cloudwatch, "ModelLatency", START, StatisticValues=same)
    spread = {"SampleCount": 40.0, "Sum": 400.0, "Minimum": 1.0, "Maximum": 30.0}
    put(cloudwatch, "ModelLatency", START + timedelta(minutes=1), StatisticValues=spread)
    put(cloudwatch, "ModelLatency", START + timedelta(minutes=2), Values=[-5.0, 5.0])

    result = series(
        cloudwatch, query("slow", "ModelLatency", "TC(5:)"), query("samples", "ModelLatency", "SampleCount")
    )

    # 40 samples of 10; then no trimmed count of a spread statistic set, nor of negative values.
    assert result["slow"] == [40.0]
    assert result["samples"] == [40.0, 40.0, 2.0]


@pytest.mark.parametrize(
    ("statistic", "why"),
    [
        ("TC(abc:)", "not a bound"),
        ("TC(:)", "at least one bound"),
        ("TC(10%:200)", "both bounds"),
        ("TM(50%:150%)", "between 0 and 100"),
        ("PR(10%:)", "values, not percentages"),
        ("TC(9:3)", "lower bound must be below"),
        ("WM(10%:90%)", "not implemented"),
        ("p150", "between 0 and 100"),
        ("TM99", "not a valid extended statistic"),
    ],
)
def test_a_malformed_extended_statistic_is_refused(cloudwatch, statistic, why):
    put(cloudwatch, "ModelLatency", START, Value=1.0)

    with pytest.raises(ClientError, match=why) as refused:
        series(cloudwatch, query("m", "ModelLatency", statistic))

    assert refused.value.response["Error"]["Code"] == "ValidationError"


def test_a_malformed_statistic_is_refused_even_without_data(cloudwatch):
    with pytest.raises(ClientError, match="not a bound"):
        series(cloudwatch, query("m", "ModelLatency", "TC(x:)"))


def test_get_metric_statistics_returns_trimmed_counts_and_percentile_ranks(cloudwatch):
    put(cloudwatch, "ModelLatency", START, Values=[float(v) for v in range(1, 101)])

    [point] = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=DIMENSIONS,
        StartTime=START,
        EndTime=START + timedelta(minutes=1),
        Period=60,
        ExtendedStatistics=["TC(80:)", "PR(:30)", "TM(10%:90%)"],
    )["Datapoints"]

    assert point["ExtendedStatistics"] == {"TC(80:)": 20.0, "PR(:30)": 30.0, "TM(10%:90%)": 50.5}
