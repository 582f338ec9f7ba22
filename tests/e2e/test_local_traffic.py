"""Local mode under simulated traffic: `shepherd local traffic` changes a version's behaviour, the
metrics move, the alarms Shepherd creates evaluate themselves, and each state change is delivered the
three ways CloudWatch delivers it (EventBridge, the Lambda alarm action, the SNS alarm action)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shepherd.adapters.cloudwatch import CloudWatchAlarms
from shepherd.rollouts.naming import variant_name
from shepherd.rollouts.strategy import Analysis
from shepherd_cli.local import simulation
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.local.traffic_behaviour import Behaviour, behaviours_by_variant
from shepherd_cli.main import cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
MODEL, ENDPOINT = "fraud", "fraud-prod"
LIVE, CANARY = variant_name(MODEL, 1), variant_name(MODEL, 2)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalShepherd]:
    with LocalShepherd.start(ROOT / "template.yaml", environment_overrides=QUIET) as running:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("SHEPHERD_STACK", raising=False)
        monkeypatch.setenv("SHEPHERD_ENDPOINT_URL", running.endpoint_url)
        yield running


def queue(local: LocalShepherd, name: str) -> tuple[str, str]:
    sqs = local.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(local: LocalShepherd, url: str) -> list[dict[str, Any]]:
    sqs, bodies = local.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def canary_endpoint(local: LocalShepherd) -> None:
    """v1 at 90% and v2 at 10%, named as Shepherd names them."""
    sagemaker = local.client("sagemaker")
    variants = []
    for name, weight in ((LIVE, 0.9), (CANARY, 0.1)):
        sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
            PrimaryContainer={"Image": "image"},
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
    sagemaker.create_endpoint_config(EndpointConfigName="fraud-config", ProductionVariants=variants)
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="fraud-config")
    while sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] != "InService":
        pass


def traffic(*arguments: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["local", "traffic", MODEL, "2", *arguments, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def canary_stat(local: LocalShepherd, metric: str, stat: str, minutes: int) -> list[float]:
    now = local.pump.clock.now
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": CANARY}]
    response = local.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": stat,
                },
            }
        ],
        StartTime=now.replace(second=0) - timedelta(minutes=minutes),
        EndTime=now.replace(second=0),
        ScanBy="TimestampAscending",
    )
    return list(response["MetricDataResults"][0]["Values"])


def test_shepherd_local_traffic_makes_the_canarys_alarms_fire_and_recover_with_all_three_deliveries(local):
    # Given a 10% canary under 50 requests a second, with Shepherd's two rollout alarms on it, whose
    # actions are the rollback function and an SNS topic, and a subscriber to the default bus.
    simulation.attach(local, rps=50, seed=3)
    canary_endpoint(local)
    topic = local.client("sns").create_topic(Name="alarm-notifications")["TopicArn"]
    sns_url, sns_queue = queue(local, "alarm-notifications")
    local.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sns_queue)
    bus_url, bus_queue = queue(local, "alarm-events")
    events = local.client("events")
    events.put_rule(Name="alarm-events", EventPattern=json.dumps({"detail-type": ["CloudWatch Alarm State Change"]}))
    events.put_targets(Rule="alarm-events", Targets=[{"Id": "queue", "Arn": bus_queue}])
    rollback = local.stack.functions["RollbackFunction"]
    names = ("fraud-error-rate", "fraud-latency")
    CloudWatchAlarms(local.client("cloudwatch")).create_rollout_alarms(
        names, ENDPOINT, CANARY, Analysis(), (rollback.arn, topic)
    )

    # Healthy by default: three minutes, and nothing fires.
    local.pump.advance(180)
    assert drain(local, bus_url) == []
    invocations = canary_stat(local, "Invocations", "Sum", 2)
    assert len(invocations) == 2 and all(200 < count < 400 for count in invocations)  # ~10% of 3,000
    assert canary_stat(local, "Invocation5XXErrors", "Sum", 2) == [0.0, 0.0]

    # When v2 turns slow and failing (from another process, as a user would).
    stored = traffic("--latency-ms", "100", "--p99-ms", "450", "--error-percent", "30")
    assert stored["parameter"] == "/shepherd/local/traffic/fraud/v2" and stored["error_percent"] == 30
    local.pump.advance(60)
    [errors] = canary_stat(local, "Invocation5XXErrors", "Sum", 1)
    [invocations_now] = canary_stat(local, "Invocations", "Sum", 1)
    assert 0.2 < errors / invocations_now < 0.4
    [p99] = canary_stat(local, "ModelLatency", "p99", 1)
    assert 350_000 < p99 < 600_000  # microseconds; ~300 samples a minute
    local.pump.advance(120)

    # Then both alarms went to ALARM after three breaching minutes, delivered three ways each.
    alarm_events = [event["detail"] for event in drain(local, bus_url)]
    assert sorted((detail["alarmName"], detail["state"]["value"]) for detail in alarm_events) == [
        ("fraud-error-rate", "ALARM"),
        ("fraud-latency", "ALARM"),
    ]
    assert all(detail["previousState"]["value"] == "OK" for detail in alarm_events)
    assert all("3 out of the last 3 datapoints" in detail["state"]["reason"] for detail in alarm_events)
    notifications = [json.loads(body["Message"]) for body in drain(local, sns_url)]
    assert sorted((note["AlarmName"], note["NewStateValue"]) for note in notifications) == [
        ("fraud-error-rate", "ALARM"),
        ("fraud-latency", "ALARM"),
    ]
    actions = [
        call.event["alarmData"]["alarmName"]
        for call in local.pump.history
        if call.function_name == rollback.name and call.outcome.source == "async invoke"
    ]
    assert sorted(actions) == ["fraud-error-rate", "fraud-latency"]

    # And when v2 is healthy again, both alarms return to OK within three minutes.
    traffic("--latency-ms", "40")
    local.pump.advance(180)
    recovered = [event["detail"] for event in drain(local, bus_url)]
    assert sorted((detail["alarmName"], detail["state"]["value"]) for detail in recovered) == [
        ("fraud-error-rate", "OK"),
        ("fraud-latency", "OK"),
    ]


def test_shepherd_local_traffic_sets_bursts_and_a_warm_up(local):
    stored = traffic(
        "--latency-ms", "40", "--error-percent", "1", "--error-bursts", "0.8", "--common-shocks", "0.5",
        "--warmup-minutes", "3", "--warmup-latency-x", "2.5", "--warmup-5xx", "4",
    )  # fmt: skip

    assert behaviours_by_variant(local.client("ssm"))[CANARY] == Behaviour(
        latency_ms=40,
        p99_ms=80,
        error_percent=1,
        error_bursts=0.8,
        common_shocks=0.5,
        warmup_minutes=3,
        warmup_latency_x=2.5,
        warmup_5xx_percent=4,
    )
    assert stored["warmup_minutes"] == 3 and stored["error_bursts"] == 0.8
    text = CliRunner().invoke(cli, ["local", "traffic", MODEL, "2", "--latency-ms", "40", "--error-bursts", "1"])
    assert text.stdout.strip() == (
        "fraud v2: median 40 ms, p99 80 ms, 0% of requests fail 5xx, errors in bursts (CV 1 per minute) "
        "(from the simulated minute in progress)"
    )


def test_shepherd_local_traffic_rejects_a_bad_behaviour_a_bad_name_and_a_deployed_stack():
    # Checked before looking for the emulator: none runs here.
    result = CliRunner().invoke(cli, ["local", "traffic", MODEL, "2", "--latency-ms", "100", "--p99-ms", "10"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: p99_ms: must be at least the median (100) and at most 60000, got 10"

    result = CliRunner().invoke(cli, ["local", "traffic", MODEL, "2", "--latency-ms", "40", "--warmup-5xx", "5"])
    assert result.exit_code == 1 and "a warm-up's latency or errors need a warm-up of 1 minute" in result.stderr

    result = CliRunner().invoke(cli, ["local", "traffic", "no_underscores", "2", "--latency-ms", "100"])
    assert result.exit_code == 1 and "model_name: 'no_underscores' is not a valid SageMaker name" in result.stderr

    result = CliRunner().invoke(cli, ["local", "traffic", MODEL, "2", "--latency-ms", "100", "--stack", "prod"])
    assert result.exit_code == 1 and "simulated traffic of `shepherd local up` only" in result.stderr
