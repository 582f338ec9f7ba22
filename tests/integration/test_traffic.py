"""Local mode's simulated traffic: the metrics it publishes follow the weights and each version's behaviour.

Everything is read back the way the rollout controller and alarms read it: GetMetricData on moto,
with the emulator's percentile statistics.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shepherd.rollouts.naming import variant_name
from shepherd_cli.local import cloudwatch_emulator, emulator
from shepherd_cli.local.traffic import TrafficSimulator, moto_endpoints
from shepherd_cli.local.traffic_behaviour import Behaviour, behaviours_by_variant, set_behaviour

ACCOUNT, REGION = "123456789012", "eu-west-1"
MODEL, ENDPOINT = "churn", "churn-prod"
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
LIVE, CANARY = variant_name(MODEL, 1), variant_name(MODEL, 2)


@dataclass
class Local:
    sagemaker: Any
    cloudwatch: Any
    ssm: Any
    traffic: TrafficSimulator

    def run(self, minutes: int, start: datetime = START) -> None:
        for minute in range(minutes):
            self.traffic.publish_minute(start + timedelta(minutes=minute))

    def stat(self, variant: str, metric: str, stat: str, minutes: int, period: int = 60) -> list[float]:
        dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
        query = {
            "Id": "q",
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dimensions},
                "Period": period,
                "Stat": stat,
            },
        }
        response = self.cloudwatch.get_metric_data(
            MetricDataQueries=[query],
            StartTime=START,
            EndTime=START + timedelta(minutes=minutes),
            ScanBy="TimestampAscending",
        )
        return list(response["MetricDataResults"][0]["Values"])


@pytest.fixture
def local() -> Iterator[Local]:
    emulator.install()
    emulator.configure(settle_after_describes=0)
    cloudwatch_emulator.install()
    with mock_aws():
        clients = {name: boto3.client(name, region_name=REGION) for name in ("sagemaker", "cloudwatch", "ssm")}
        traffic = TrafficSimulator(
            clients["cloudwatch"],
            clients["ssm"],
            moto_endpoints(ACCOUNT, REGION),
            rps=50,
            rng=random.Random(7),
        )
        yield Local(clients["sagemaker"], clients["cloudwatch"], clients["ssm"], traffic)
    emulator.reset()


def deploy(local: Local, weights: dict[str, float]) -> None:
    variants = []
    for name, weight in weights.items():
        local.sagemaker.create_model(
            ModelName=name, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm", PrimaryContainer={"Image": "image"}
        )
        variants.append(
            {
                "VariantName": name,
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": weight,
            }
        )
    local.sagemaker.create_endpoint_config(EndpointConfigName="config", ProductionVariants=variants)
    local.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config")


def test_a_ten_percent_canary_gets_about_ten_percent_of_the_invocations(local):
    deploy(local, {LIVE: 0.9, CANARY: 0.1})

    local.run(minutes=10)

    live, canary = local.stat(LIVE, "Invocations", "Sum", 10), local.stat(CANARY, "Invocations", "Sum", 10)
    assert len(live) == len(canary) == 10
    assert all(a + b == 3000 for a, b in zip(live, canary, strict=True))  # 50 requests a second
    share = sum(canary) / (sum(live) + sum(canary))
    assert 0.09 < share < 0.11  # 30,000 requests: the share's standard deviation is 0.0017
    assert min(canary) != max(canary)  # drawn, not a fixed split
    assert local.stat(CANARY, "Invocation4XXErrors", "Sum", 10) == [0.0] * 10


def test_healthy_by_default_and_the_set_behaviour_for_the_version_otherwise(local):
    deploy(local, {LIVE: 0.5, CANARY: 0.5})
    set_behaviour(local.ssm, MODEL, 2, Behaviour(latency_ms=100, p99_ms=300, error_percent=5))

    local.run(minutes=10)

    assert sum(local.stat(LIVE, "Invocation5XXErrors", "Sum", 10)) == 0
    errors, invocations = (sum(local.stat(CANARY, name, "Sum", 10)) for name in ("Invocation5XXErrors", "Invocations"))
    assert 0.045 < errors / invocations < 0.055  # 15,000 requests: standard deviation 0.0018
    # Latency in microseconds, percentiles within 5% of the behaviour's over the ten minutes.
    [p50] = local.stat(CANARY, "ModelLatency", "p50", 10, period=600)
    [p99] = local.stat(CANARY, "ModelLatency", "p99", 10, period=600)
    assert p50 == pytest.approx(100_000, rel=0.05)
    assert p99 == pytest.approx(300_000, rel=0.05)
    [live_p50] = local.stat(LIVE, "ModelLatency", "p50", 10, period=600)
    [live_p99] = local.stat(LIVE, "ModelLatency", "p99", 10, period=600)
    assert live_p50 == pytest.approx(40_000, rel=0.05)  # the default: 40 ms, p99 80 ms
    assert live_p99 == pytest.approx(80_000, rel=0.05)
    # One latency sample per invocation.
    assert local.stat(CANARY, "ModelLatency", "SampleCount", 10) == local.stat(CANARY, "Invocations", "Sum", 10)


def test_traffic_follows_the_current_weights_not_the_desired_ones(local):
    deploy(local, {LIVE: 1.0, CANARY: 0.0})
    local.run(minutes=1)
    emulator.configure(settle_after_describes=1)  # the next change stays in progress until described
    local.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT,
        DesiredWeightsAndCapacities=[
            {"VariantName": LIVE, "DesiredWeight": 0.5},
            {"VariantName": CANARY, "DesiredWeight": 0.5},
        ],
    )

    local.run(minutes=1, start=START + timedelta(minutes=1))  # Updating: still the current weights
    local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)  # settled: 50/50
    local.run(minutes=1, start=START + timedelta(minutes=2))

    canary = local.stat(CANARY, "Invocations", "Sum", 3)
    assert canary[:2] == [0.0, 0.0]
    assert 1300 < canary[2] < 1700


def test_no_traffic_to_an_endpoint_being_created_or_when_rps_is_zero(local):
    emulator.configure(settle_after_describes=1)
    deploy(local, {LIVE: 1.0})
    local.run(minutes=1)
    assert local.stat(LIVE, "Invocations", "Sum", 1) == []

    local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    local.traffic.rps = 0
    local.run(minutes=1, start=START + timedelta(minutes=1))
    assert local.stat(LIVE, "Invocations", "Sum", 2) == []


def test_behaviours_are_read_back_by_variant_and_bad_ones_are_skipped(local):
    set_behaviour(local.ssm, MODEL, 2, Behaviour.of(latency_ms=120))
    local.ssm.put_parameter(Name="/shepherd/local/traffic/churn/v3", Value="not json", Type="String")

    assert behaviours_by_variant(local.ssm) == {CANARY: Behaviour(latency_ms=120, p99_ms=240, error_percent=0)}


def error_rates(local: Local, variant: str, minutes: int) -> list[float]:
    """The per-minute 5xx rates of the minutes with traffic."""
    errors = local.stat(variant, "Invocation5XXErrors", "Sum", minutes)
    invocations = local.stat(variant, "Invocations", "Sum", minutes)
    return [bad / total for bad, total in zip(errors, invocations, strict=True) if total > 0]


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values)


def test_error_bursts_make_the_error_rate_vary_from_minute_to_minute(local):
    # Given two versions failing 5% of requests on average, the canary's errors in bursts.
    deploy(local, {LIVE: 0.5, CANARY: 0.5})
    set_behaviour(local.ssm, MODEL, 1, Behaviour.of(latency_ms=40, error_percent=5))
    set_behaviour(local.ssm, MODEL, 2, Behaviour.of(latency_ms=40, error_percent=5, error_bursts=1.0))

    local.run(minutes=40)

    steady, bursty = error_rates(local, LIVE, 40), error_rates(local, CANARY, 40)
    # ~1,500 requests a minute: binomial noise alone is a CV of 0.11; bursts of CV 1 dominate it.
    assert cv(steady) < 0.2
    assert cv(bursty) > 0.6
    assert 0.03 < statistics.mean(bursty) < 0.075  # still 5% on average (40 minutes: SE ~0.008)
    # Each variant's bursts are its own: the two rates do not move together.
    assert abs(statistics.correlation(steady, bursty)) < 0.4


def test_common_shocks_hit_both_variants_in_the_same_minutes(local):
    deploy(local, {LIVE: 0.5, CANARY: 0.5})
    for version in (1, 2):
        set_behaviour(local.ssm, MODEL, version, Behaviour.of(latency_ms=40, error_percent=5, common_shocks=1.0))

    local.run(minutes=40)

    live, canary = error_rates(local, LIVE, 40), error_rates(local, CANARY, 40)
    assert cv(live) > 0.6 and cv(canary) > 0.6
    assert statistics.correlation(live, canary) > 0.9  # the same factor each minute, binomial noise apart
    # The ratio of the two rates stays near 1: what a judge comparing the variants in a minute sees.
    assert 0.85 < sum(canary) / sum(live) < 1.15


def test_a_new_variant_warms_up_after_it_starts_taking_traffic(local):
    # Given v1 serving alone (with a warm-up it already had: serving before the first simulated minute)
    # and v2 on the endpoint at weight 0, both 3 minutes slow to warm up, v2 also failing 20% at first.
    deploy(local, {LIVE: 1.0, CANARY: 0.0})
    warming = {"warmup_minutes": 3, "warmup_latency_x": 3.0}
    set_behaviour(local.ssm, MODEL, 1, Behaviour.of(latency_ms=40, **warming))
    set_behaviour(local.ssm, MODEL, 2, Behaviour.of(latency_ms=40, warmup_5xx_percent=20, **warming))
    local.run(minutes=2)  # v2 takes no traffic: its warm-up has not begun

    # When v2 starts taking half the traffic.
    local.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT,
        DesiredWeightsAndCapacities=[
            {"VariantName": LIVE, "DesiredWeight": 0.5},
            {"VariantName": CANARY, "DesiredWeight": 0.5},
        ],
    )
    local.run(minutes=5, start=START + timedelta(minutes=2))

    # Then v2's first minutes are 3x, 2.33x, 1.67x slower, then normal; its first minute fails ~20%.
    medians = local.stat(CANARY, "ModelLatency", "p50", 7)
    assert medians == [pytest.approx(40_000 * slower, rel=0.05) for slower in (3.0, 1 + 2 * 2 / 3, 1 + 2 / 3, 1.0, 1.0)]
    assert 0.15 < error_rates(local, CANARY, 7)[0] < 0.25
    assert error_rates(local, CANARY, 7)[1:] == [0.0] * 4
    # v1 was warm all along.
    assert local.stat(LIVE, "ModelLatency", "p50", 7) == [pytest.approx(40_000, rel=0.05)] * 7
    assert sum(local.stat(LIVE, "Invocation5XXErrors", "Sum", 7)) == 0


def test_a_behaviour_without_the_new_settings_reads_back_as_before(local):
    # A parameter stored before bursts and warm-ups existed.
    local.ssm.put_parameter(
        Name="/shepherd/local/traffic/churn/v2",
        Value='{"error_percent": 1.0, "latency_ms": 50.0, "p99_ms": 90.0}',
        Type="String",
    )

    [behaviour] = behaviours_by_variant(local.ssm).values()

    assert behaviour == Behaviour(latency_ms=50, p99_ms=90, error_percent=1)
    assert (behaviour.error_bursts, behaviour.common_shocks, behaviour.warmup_minutes) == (0, 0, 0)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"latency_ms": 0}, "latency_ms: must be above 0"),
        ({"latency_ms": 100, "p99_ms": 50}, "p99_ms: must be at least the median"),
        ({"latency_ms": 100, "error_percent": 101}, "error_percent: must be between 0 and 100"),
        ({"latency_ms": float("nan")}, "latency_ms: must be a number"),
        ({"latency_ms": 40, "error_bursts": -1}, "error_bursts: must be between 0 and 10"),
        ({"latency_ms": 40, "common_shocks": 11}, "common_shocks: must be between 0 and 10"),
        ({"latency_ms": 40, "warmup_minutes": 2, "warmup_latency_x": 0.5}, "warmup_latency_x: must be between 1"),
        ({"latency_ms": 40, "warmup_latency_x": 2}, "warmup_minutes: a warm-up's latency or errors need"),
        ({"latency_ms": 40, "warmup_minutes": 1.5}, "warmup_minutes: must be a whole number"),
    ],
)
def test_a_behaviour_says_what_is_wrong_with_it(arguments, problem):
    with pytest.raises(ValueError, match=problem):
        Behaviour.of(**arguments)
