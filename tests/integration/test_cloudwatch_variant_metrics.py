"""Both variants' per-minute series for the judge, in one GetMetricData call.

Counts (Sum) go through moto, and so do the tail metrics' sample and trimmed counts, with local
mode's CloudWatch emulator (moto alone has no extended statistics). The exact request and the
parsing of pages are checked with botocore's Stubber.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from shepherd.adapters.cloudwatch import CloudWatchVariantMetrics
from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.judge import judge
from shepherd.analysis.metrics import BUILTIN_SERIES, INVOCATIONS, LATENCY_COUNT, SeriesQuery, tail_query
from shepherd.analysis.ports import MetricsUnavailable
from shepherd.kernel.errors import TransientError
from shepherd_cli.local import cloudwatch_emulator
from tests.fakes import FakeVariantMetrics

ENDPOINT = "churn-prod"
CANDIDATE, BASELINE = "churn-v2", "churn-v1"
ERRORS_5XX = BUILTIN_SERIES[1]
P99 = BUILTIN_SERIES[4]


def minutes_ago(n: int) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=n)


def put(client, metric: str, variant: str, at: datetime, value: float, endpoint: str = ENDPOINT) -> None:
    client.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
                "Timestamp": at,
                "Value": value,
            }
        ],
    )


@mock_aws
def test_counts_of_both_variants_come_back_per_minute_in_one_call():
    client = boto3.client("cloudwatch")
    for n in (5, 4, 3):
        put(client, "Invocations", CANDIDATE, minutes_ago(n), 300 + n)
        put(client, "Invocations", BASELINE, minutes_ago(n), 2700 + n)
        put(client, "Invocation5XXErrors", CANDIDATE, minutes_ago(n), 6)
        put(client, "Invocation5XXErrors", BASELINE, minutes_ago(n), 27)
    # Another endpoint's variant of the same name, and a minute before the step: neither is read.
    put(client, "Invocations", CANDIDATE, minutes_ago(4), 99_999, endpoint="other")
    put(client, "Invocations", CANDIDATE, minutes_ago(30), 99_999)
    calls = []
    client.meta.events.register("before-call.cloudwatch.GetMetricData", lambda **kw: calls.append(kw["params"]))

    series = CloudWatchVariantMetrics(client).variant_series(
        (INVOCATIONS, ERRORS_5XX), ENDPOINT, CANDIDATE, BASELINE, start=minutes_ago(10), end=minutes_ago(0)
    )

    assert len(calls) == 1
    assert series["invocations"].candidate == {minutes_ago(n): 300.0 + n for n in (5, 4, 3)}
    assert series["invocations"].baseline == {minutes_ago(n): 2700.0 + n for n in (5, 4, 3)}
    assert series["invocation_5xx_errors"].candidate == {minutes_ago(n): 6.0 for n in (5, 4, 3)}
    assert series["invocation_5xx_errors"].baseline == {minutes_ago(n): 27.0 for n in (5, 4, 3)}


@mock_aws
def test_the_series_feed_the_judge_directly():
    client = boto3.client("cloudwatch")
    for n in range(1, 21):
        put(client, "Invocations", CANDIDATE, minutes_ago(n), 300)
        put(client, "Invocations", BASELINE, minutes_ago(n), 2700)
        put(client, "Invocation5XXErrors", CANDIDATE, minutes_ago(n), 15)  # 5% against 1%
        put(client, "Invocation5XXErrors", BASELINE, minutes_ago(n), 27)
    config = JudgeConfig.model_validate({"default_metrics": {"errors_4xx": {"enabled": False}}})

    series = CloudWatchVariantMetrics(client).variant_series(
        config.series(), ENDPOINT, CANDIDATE, BASELINE, start=minutes_ago(30), end=minutes_ago(0)
    )
    verdict = judge(config.judged_metrics(), series, config.false_rollback_rate)

    assert verdict.failing(critical_only=True) == ("errors_5xx",)
    assert verdict.minutes == 20


def put_latencies(client, variant: str, at: datetime, latencies_us: dict[float, float]) -> None:
    """One minute of ModelLatency as SageMaker publishes it: every request's latency, counted."""
    client.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "ModelLatency",
                "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}],
                "Timestamp": at,
                "Values": list(latencies_us),
                "Counts": list(latencies_us.values()),
                "Unit": "Microseconds",
            }
        ],
    )


@mock_aws
def test_tail_metrics_read_sample_and_trimmed_counts_of_both_variants():
    cloudwatch_emulator.install()  # moto computes no trimmed count
    client = boto3.client("cloudwatch")
    latency_p99 = JudgeConfig().judged_metrics()[3]
    assert latency_p99.name == "latency_p99"
    for n in (3, 2):
        put_latencies(client, BASELINE, minutes_ago(n), {40_000.0: 880, 75_000.0: 10, 90_000.0: 10})
        put_latencies(client, CANDIDATE, minutes_ago(n), {40_000.0: 90, 84_000.0: 6, 95_000.0: 4})
    # The baseline's threshold is its p99, 80 ms; the candidate's is 10% higher (88 ms).
    slow = tail_query(latency_p99, 80_000.0)

    series = CloudWatchVariantMetrics(client).variant_series(
        (LATENCY_COUNT, slow), ENDPOINT, CANDIDATE, BASELINE, start=minutes_ago(10), end=minutes_ago(0)
    )

    assert series["model_latency_count"].candidate == {minutes_ago(3): 100.0, minutes_ago(2): 100.0}
    assert series["model_latency_count"].baseline == {minutes_ago(3): 900.0, minutes_ago(2): 900.0}
    # Above 80 ms for the baseline (90 ms x 10), above 88 ms for the candidate (95 ms x 4, not 84 ms).
    assert series["model_latency_p99_slow"].baseline == {minutes_ago(3): 10.0, minutes_ago(2): 10.0}
    assert series["model_latency_p99_slow"].candidate == {minutes_ago(3): 4.0, minutes_ago(2): 4.0}


@pytest.fixture
def client():
    # One attempt: the stubbed throttling must reach the adapter, not be retried by botocore.
    return boto3.client("cloudwatch", config=Config(retries={"max_attempts": 1}))


def test_percentiles_are_asked_per_variant_and_parsed_across_pages(client):
    accuracy = SeriesQuery("accuracy", "Acme/Quality", "Accuracy", "Average", (("Task", "churn"),))
    start, end = datetime(2026, 11, 29, 7, 0, 30, tzinfo=UTC), datetime(2026, 11, 29, 7, 10, 59, tzinfo=UTC)
    minute = [datetime(2026, 11, 29, 7, m, tzinfo=UTC) for m in range(10)]

    def query(series: SeriesQuery, suffix: str, variant: str, extra=()):
        return {
            "Id": f"{series.id}_{suffix}",
            "MetricStat": {
                "Metric": {
                    "Namespace": series.namespace,
                    "MetricName": series.metric_name,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": ENDPOINT},
                        {"Name": "VariantName", "Value": variant},
                        *extra,
                    ],
                },
                "Period": 60,
                "Stat": series.statistic,
            },
            "ReturnData": True,
        }

    expected = {
        "MetricDataQueries": [
            query(P99, "c", CANDIDATE),
            query(P99, "b", BASELINE),
            query(accuracy, "c", CANDIDATE, [{"Name": "Task", "Value": "churn"}]),
            query(accuracy, "b", BASELINE, [{"Name": "Task", "Value": "churn"}]),
        ],
        # Whole minutes: the series of both variants line up on the same keys.
        "StartTime": datetime(2026, 11, 29, 7, 0, tzinfo=UTC),
        "EndTime": datetime(2026, 11, 29, 7, 10, tzinfo=UTC),
        "ScanBy": "TimestampAscending",
    }
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {"Id": "model_latency_p99_c", "Timestamps": minute[:2], "Values": [250_000.0, 260_000.0]},
                    {"Id": "model_latency_p99_b", "Timestamps": minute[:2], "Values": [200_000.0, 210_000.0]},
                    {"Id": "accuracy_c", "Timestamps": [], "Values": [], "StatusCode": "PartialData"},
                ],
                "NextToken": "page-2",
            },
            expected,
        )
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {"Id": "model_latency_p99_c", "Timestamps": [minute[2]], "Values": [255_000.0]},
                    {"Id": "accuracy_c", "Timestamps": [minute[0]], "Values": [0.91], "StatusCode": "Complete"},
                    {"Id": "accuracy_b", "Timestamps": [minute[0]], "Values": [0.93], "StatusCode": "Complete"},
                ]
            },
            {**expected, "NextToken": "page-2"},
        )

        series = CloudWatchVariantMetrics(client).variant_series(
            (P99, accuracy), ENDPOINT, CANDIDATE, BASELINE, start=start, end=end
        )

    assert series["model_latency_p99"].candidate == {minute[0]: 250_000.0, minute[1]: 260_000.0, minute[2]: 255_000.0}
    assert series["model_latency_p99"].baseline == {minute[0]: 200_000.0, minute[1]: 210_000.0}
    assert series["accuracy"].candidate == {minute[0]: 0.91}
    assert series["accuracy"].baseline == {minute[0]: 0.93}


def test_a_query_cloudwatch_could_not_compute_is_a_transient_error(client):
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": "model_latency_p99_c", "StatusCode": "InternalError"}]},
        )

        with pytest.raises(TransientError):
            CloudWatchVariantMetrics(client).variant_series(
                (P99,), ENDPOINT, CANDIDATE, BASELINE, start=minutes_ago(5), end=minutes_ago(0)
            )


def test_throttling_is_a_transient_error_and_a_refusal_is_metrics_unavailable(client):
    adapter = CloudWatchVariantMetrics(client)
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", "Throttling", http_status_code=400)
        stub.add_client_error("get_metric_data", "AccessDenied", http_status_code=403)

        with pytest.raises(TransientError):
            adapter.variant_series((P99,), ENDPOINT, CANDIDATE, BASELINE, start=minutes_ago(5), end=minutes_ago(0))
        # Refused for good (a missing permission, a bad query): a domain error naming the code, which the
        # controller treats as no data rather than failing every pass of the rollout.
        with pytest.raises(MetricsUnavailable, match="AccessDenied") as caught:
            adapter.variant_series((P99,), ENDPOINT, CANDIDATE, BASELINE, start=minutes_ago(5), end=minutes_ago(0))

    assert isinstance(caught.value.__cause__, ClientError)


def test_no_series_is_no_call(client):
    with Stubber(client):  # any call would fail: nothing is stubbed
        assert (
            CloudWatchVariantMetrics(client).variant_series(
                (), ENDPOINT, CANDIDATE, BASELINE, minutes_ago(5), minutes_ago(0)
            )
            == {}
        )


@mock_aws
@pytest.mark.parametrize("reader", ["cloudwatch", "fake"])
def test_the_fake_answers_as_the_adapter_does(reader):
    """The contract tests/fakes.FakeVariantMetrics keeps: the same published data, the same series."""
    client, fake = boto3.client("cloudwatch"), FakeVariantMetrics()
    for n, value in ((12, 99.0), (5, 300.0), (4, 301.0), (0, 7.0)):  # 12: before the window; 0: its end
        put(client, "Invocations", CANDIDATE, minutes_ago(n) + timedelta(seconds=20), value)
        fake.put(ENDPOINT, CANDIDATE, "invocations", minutes_ago(n) + timedelta(seconds=20), value)
    put(client, "Invocations", BASELINE, minutes_ago(5), 2700.0)
    fake.put(ENDPOINT, BASELINE, "invocations", minutes_ago(5), 2700.0)
    metrics = CloudWatchVariantMetrics(client) if reader == "cloudwatch" else fake

    series = metrics.variant_series(
        (INVOCATIONS, ERRORS_5XX), ENDPOINT, CANDIDATE, BASELINE, start=minutes_ago(10), end=minutes_ago(0)
    )

    assert series["invocations"].candidate == {minutes_ago(5): 300.0, minutes_ago(4): 301.0}
    assert series["invocations"].baseline == {minutes_ago(5): 2700.0}
    assert series["invocation_5xx_errors"].candidate == series["invocation_5xx_errors"].baseline == {}
