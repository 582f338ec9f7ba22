"""Rollback through the rollback function, reached by each of its four event shapes, on moto."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shepherd import bootstrap
from tests.handlers.conftest import load_handler, sample_event
from tests.handlers.lifecycle import (
    ENDPOINT,
    START,
    promote,
    promotion,
    registered_version,
    settled_weights,
    status,
    tick,
)

rollback = load_handler("rollback")
AT = START + timedelta(hours=1)


class hooked:
    """Registers a botocore before-call hook on the clients the handlers use (created once, cached)."""

    def __init__(self, handler, event: str = "before-call") -> None:
        self.handler, self.event = handler, event
        self.clients = [bootstrap.client(s) for s in ("dynamodb", "sagemaker", "events", "cloudwatch")]

    def __enter__(self) -> None:
        for client in self.clients:
            client.meta.events.register(self.event, self.handler)

    def __exit__(self, *_: object) -> None:
        for client in self.clients:
            client.meta.events.unregister(self.event, self.handler)


def active_rollout_id(world) -> str:
    item = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "LOCK"}}
    )
    return str(item["Item"]["rollout_id"]["S"])


def error_rate_alarm(world) -> str:
    return f"shepherd-test--{ENDPOINT}-{active_rollout_id(world)}-error-rate"


CANDIDATE = {"EndpointName": ENDPOINT, "VariantName": "churn-predictor-v2"}


def alarm_event(
    shape: str, alarm_name: str, state: str = "ALARM", at=AT, dimensions: dict[str, str] = CANDIDATE
) -> dict[str, Any]:
    """One of the three real alarm shapes from events/, about `alarm_name` on the metric `dimensions`."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    reason = "Threshold Crossed: 1 datapoint [17.0] was greater than the threshold (5.0)."
    if shape == "lambda-action":
        event = sample_event("cloudwatch-alarm-lambda-action.json")
        event["alarmData"]["alarmName"] = alarm_name
        event["alarmData"]["state"].update(value=state, reason=reason, timestamp=stamp)
        event["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = dict(dimensions)
        return event
    if shape == "eventbridge":
        event = sample_event("cloudwatch-alarm-state-change.eventbridge.json")
        event["id"] = str(uuid.uuid4())
        event["detail"]["alarmName"] = alarm_name
        event["detail"]["state"].update(value=state, reason=reason, timestamp=stamp)
        event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = dict(dimensions)
        return event
    if state == "ALARM":
        cloudwatch_sets_alarm(alarm_name, dimensions)  # what happens before CloudWatch notifies the topic
    event = sample_event("cloudwatch-alarm.sns.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message.update(AlarmName=alarm_name, NewStateValue=state, NewStateReason=reason, StateChangeTime=stamp)
    message["Trigger"]["Dimensions"] = [{"name": name, "value": value} for name, value in dimensions.items()]
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def cloudwatch_sets_alarm(alarm_name: str, *metric_dimensions: dict[str, str]) -> None:
    """The alarm enters ALARM in CloudWatch (created first, on `metric_dimensions`, when the test's alarm
    is not a real one): an SNS notification is confirmed against it, and acts by its dimensions as
    CloudWatch has them (rollouts/alarm_confirmation.py)."""
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    if not cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]:
        threshold = {"EvaluationPeriods": 1, "Threshold": 5.0, "ComparisonOperator": "GreaterThanThreshold"}
        if len(metric_dimensions) <= 1:
            dimensions = [{"Name": k, "Value": v} for k, v in (metric_dimensions or ({},))[0].items()]
            cloudwatch.put_metric_alarm(
                AlarmName=alarm_name,
                Namespace="AWS/SageMaker",
                MetricName="Invocation5XXErrors",
                Dimensions=dimensions,
                Statistic="Sum",
                Period=60,
                **threshold,
            )
        else:
            metrics = [
                {
                    "Id": f"m{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SageMaker",
                            "MetricName": "Invocation5XXErrors",
                            "Dimensions": [{"Name": k, "Value": v} for k, v in each.items()],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                }
                for index, each in enumerate(metric_dimensions)
            ]
            expression = {"Id": "difference", "Expression": "m0 - m1", "ReturnData": True}
            cloudwatch.put_metric_alarm(AlarmName=alarm_name, Metrics=[*metrics, expression], **threshold)
    cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue="ALARM", StateReason="Threshold Crossed")


@pytest.fixture
def canary_at_10(world, sagemaker, lambda_context, first_deployment) -> int:
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "canary", "canary_percent": 10, "bake_seconds": 3600, "post_deploy_watch_seconds": 900}
    promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)
    tick(lambda_context, AT)
    tick(lambda_context, AT + timedelta(minutes=1))
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    world.announcements()
    world.seen.clear()
    return v2


@pytest.mark.parametrize("shape", ["lambda-action", "eventbridge", "sns"])
def test_an_alarm_during_a_canary_flips_traffic_back_then_removes_the_candidate(
    world, sagemaker, lambda_context, canary_at_10, shape
):
    alarm = error_rate_alarm(world)

    response = rollback.lambda_handler(alarm_event(shape, alarm, at=AT + timedelta(minutes=2)), lambda_context)

    assert response["results"][0]["result"] == "rolled_back"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}
    version = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": "MODEL#churn-predictor"}, "sk": {"S": "VERSION#0000000002"}}
    )["Item"]
    assert version["status"]["S"] == "ROLLED_BACK"
    assert version["rolled_back_by"]["S"] == alarm and "Threshold Crossed" in version["rollback_reason"]["S"]
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert (rolled_back["version"], rolled_back["restored_version"], rolled_back["trigger"]) == (2, 1, alarm)
    assert rolled_back["seconds_to_flip"] is not None
    # The incident record, for the post-mortem: the alarm, its reason, the timeline up to the flip.
    [incident] = bootstrap.rollout_store().incidents(ENDPOINT)
    assert (incident.alarm_name, incident.version, incident.restored_version) == (alarm, 2, 1)
    assert "Threshold Crossed" in incident.state_reason
    assert incident.weights_before == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    assert incident.weights_after == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}
    assert {"started", "traffic 0% -> 10%"} <= {entry.action for entry in incident.timeline}

    # The controller then removes the candidate variant, releases the lock and deletes the alarms.
    for minute in range(3, 6):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0}
    assert status(world, 1) == "LIVE"
    lock = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "LOCK"}}
    )
    assert "Item" not in lock
    assert boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix="shepherd-")["MetricAlarms"] == []


def test_the_audit_trail_says_each_weight_request_in_fields(world, sagemaker, lambda_context, canary_at_10):
    # The dashboard draws the candidate's traffic from these fields, never from the action's words.
    rollback.lambda_handler(
        alarm_event("eventbridge", error_rate_alarm(world), at=AT + timedelta(minutes=2)), lambda_context
    )

    trail = sorted(bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT), key=lambda entry: entry.at)
    weights = [(entry.action, entry.from_percent, entry.to_percent) for entry in trail if entry.to_percent is not None]
    # the first deployment's new endpoint (v1 takes all), v2's 10% step, then the flip back
    assert weights == [("create endpoint", 0, 100), ("traffic 0% -> 10%", 0, 10), ("traffic flipped back", 10, 0)]
    assert all(entry.from_percent is None for entry in trail if entry.to_percent is None)


def test_the_same_alarm_five_times_is_one_rollback_and_one_announcement(world, sagemaker, lambda_context, canary_at_10):
    event = alarm_event("eventbridge", error_rate_alarm(world))
    results = [rollback.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]["result"] for _ in range(5)]
    assert results == ["rolled_back"] + ["duplicate"] * 4
    assert len(world.announcements("Rollout Rolled Back")) == 1


def test_alarms_from_several_metrics_at_once_are_one_rollback(world, sagemaker, lambda_context, canary_at_10):
    from concurrent.futures import ThreadPoolExecutor

    rollout_id = active_rollout_id(world)
    names = [
        f"shepherd-test--{ENDPOINT}-{rollout_id}-error-rate",
        f"shepherd-test--{ENDPOINT}-{rollout_id}-latency-p99",
    ]
    events = [alarm_event("lambda-action", name) for name in names] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda e: rollback.lambda_handler(e, lambda_context)["results"][0]["result"], events))
    assert sorted(results).count("rolled_back") == 1
    # One rollback (one incident), announced for the one rollout at least once (I3). Deliveries of the
    # event the record names re-send what it owes, as a Lambda retry must (the recording invocation may
    # have died before publishing): with both alarms delivered twice at the same moment, that can be
    # more than one copy (EventBridge is at least once too; consumers dedupe on rollout_id).
    announced = world.announcements("Rollout Rolled Back")
    assert {a["rollout_id"] for a in announced} == {rollout_id} and len(announced) >= 1
    assert len(bootstrap.rollout_store().incidents(ENDPOINT)) == 1
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}


def test_ok_and_insufficient_data_are_recorded_and_ignored(world, sagemaker, lambda_context, canary_at_10):
    for state in ("OK", "INSUFFICIENT_DATA"):
        result = rollback.lambda_handler(alarm_event("sns", error_rate_alarm(world), state=state), lambda_context)
        assert result["results"][0]["result"] == "ignored"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}


def test_an_alarm_about_an_endpoint_shepherd_does_not_manage_is_ignored(world, sagemaker, lambda_context):
    event = alarm_event("eventbridge", "someone-elses-alarm")
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["EndpointName"] = "other"
    assert rollback.lambda_handler(event, lambda_context)["results"][0]["result"] == "ignored"


def test_an_alarm_on_the_endpoint_and_the_candidate_variant_rolls_back_too(
    world, sagemaker, lambda_context, canary_at_10
):
    # A team's own alarm, not registered with the rollout, about the candidate by its dimensions.
    event = alarm_event("eventbridge", "churn-accuracy-below-90", dimensions=CANDIDATE)
    assert rollback.lambda_handler(event, lambda_context)["results"][0]["result"] == "rolled_back"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}


@pytest.mark.parametrize(
    "dimensions",
    [
        {"EndpointName": ENDPOINT, "VariantName": "churn-predictor-v1"},  # e.g. target tracking on the baseline
        {"EndpointName": ENDPOINT},  # the endpoint as a whole, no variant
    ],
    ids=["baseline-variant", "no-variant"],
)
@pytest.mark.parametrize("shape", ["eventbridge", "sns"])
def test_an_alarm_on_the_endpoint_but_not_on_the_candidate_does_not_act(
    world, sagemaker, lambda_context, canary_at_10, dimensions, shape
):
    event = alarm_event(shape, "churn-prod-scale-out", dimensions=dimensions)

    result = rollback.lambda_handler(event, lambda_context)["results"][0]

    assert result["result"] == "ignored"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    assert status(world, canary_at_10) == "DEPLOYING"
    assert world.announcements("Rollout Rolled Back") == []


def test_an_alarm_named_in_the_promotion_acts_whatever_its_dimensions(
    world, sagemaker, lambda_context, first_deployment
):
    # A business metric with no SageMaker dimensions at all, named by the team in its promotion.
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName="churn-conversion-drop",
        Namespace="Acme/Checkout",
        MetricName="Conversions",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="LessThanThreshold",
    )
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "canary", "canary_percent": 10, "bake_seconds": 3600}
    promote.lambda_handler(promotion(v2, strategy, at=AT, alarms=["churn-conversion-drop"]), lambda_context)
    tick(lambda_context, AT)
    tick(lambda_context, AT + timedelta(minutes=1))
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}

    event = alarm_event("sns", "churn-conversion-drop", at=AT + timedelta(minutes=2), dimensions={})
    result = rollback.lambda_handler(event, lambda_context)["results"][0]

    assert result["result"] == "rolled_back"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert rolled_back["trigger"] == "churn-conversion-drop"


def test_a_metric_math_alarm_through_sns_maps_to_its_endpoint_like_the_other_shapes(
    world, sagemaker, lambda_context, canary_at_10
):
    # Given a team's metric-math alarm (5xx rate = errors / invocations) on the candidate variant, sent
    # through SNS: its dimensions are under Trigger.Metrics[].MetricStat.Metric, not Trigger.Dimensions.
    event = sample_event("cloudwatch-alarm-metric-math.sns.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    for query in message["Trigger"]["Metrics"][1:]:
        query["MetricStat"]["Metric"]["Dimensions"] = [
            {"name": name, "value": value} for name, value in CANDIDATE.items()
        ]
    message["StateChangeTime"] = AT.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    cloudwatch_sets_alarm(message["AlarmName"], CANDIDATE, CANDIDATE)

    result = rollback.lambda_handler(event, lambda_context)["results"][0]

    assert result["result"] == "rolled_back"
    assert settled_weights(sagemaker)["churn-predictor-v1"] == 1.0
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert rolled_back["trigger"] == "churn-prod-candidate-error-rate"


def test_an_alarm_inside_the_watch_window_restores_the_previous_version_with_one_weight_call(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "all_at_once", "post_deploy_watch_seconds": 900}
    promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)
    for minute in range(4):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.0, "churn-predictor-v2": 1.0}
    assert status(world, v2) == "LIVE"
    alarm = error_rate_alarm(world)

    calls: list[str] = []
    with hooked(lambda model, **_: calls.append(model.name), "before-call.sagemaker.*"):
        rollback.lambda_handler(alarm_event("lambda-action", alarm, at=AT + timedelta(minutes=5)), lambda_context)

    assert calls == ["UpdateEndpointWeightsAndCapacities"]
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}
    assert (status(world, 1), status(world, v2)) == ("LIVE", "ROLLED_BACK")


def test_an_alarm_after_the_watch_window_is_announced_not_acted_on(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(
        promotion(v2, {"type": "all_at_once", "post_deploy_watch_seconds": 60}, at=AT), lambda_context
    )
    alarm = error_rate_alarm(world)
    for minute in range(8):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v2": 1.0}

    event = alarm_event("eventbridge", "churn-accuracy-below-90", at=AT + timedelta(minutes=9))
    assert rollback.lambda_handler(event, lambda_context)["results"][0]["result"] == "skipped"
    assert rollback.lambda_handler(alarm_event("sns", alarm), lambda_context)["results"][0]["result"] in (
        "ignored",
        "skipped",
    )
    [skipped] = world.announcements("Rollback Skipped")[:1]
    assert "watch window" in skipped["reason"] and skipped["endpoint_name"] == ENDPOINT
    assert settled_weights(sagemaker) == {"churn-predictor-v2": 1.0}
    assert status(world, v2) == "LIVE"


def test_the_rollback_flips_after_two_reads_and_the_abort_record(world, sagemaker, lambda_context, canary_at_10):
    calls: list[str] = []

    def count(model, **_):
        calls.append(f"{model.service_model.service_name}:{model.name}")

    with hooked(count):
        rollback.lambda_handler(alarm_event("lambda-action", error_rate_alarm(world)), lambda_context)

    # Which rollout, its record, then the abort written before the flip (so no tick moves traffic on).
    flip = calls.index("sagemaker:UpdateEndpointWeightsAndCapacities")
    assert calls[: flip + 1] == [
        "dynamodb:GetItem",
        "dynamodb:GetItem",
        "dynamodb:TransactWriteItems",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
    ]


def test_throttling_on_the_flip_is_retried(world, sagemaker, lambda_context, canary_at_10):
    failures = {"left": 3}

    def throttle(model, params, **_):
        if model.name == "UpdateEndpointWeightsAndCapacities" and failures["left"]:
            failures["left"] -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, model.name)

    with hooked(throttle, "before-call.sagemaker.*"):
        result = rollback.lambda_handler(alarm_event("eventbridge", error_rate_alarm(world)), lambda_context)
    assert result["results"][0]["result"] == "rolled_back"
    assert settled_weights(sagemaker)["churn-predictor-v1"] == 1.0


def test_a_flip_that_never_lands_fails_the_invocation_and_claims_nothing(
    world, sagemaker, lambda_context, canary_at_10
):
    def throttle(model, params, **_):
        if model.name == "UpdateEndpointWeightsAndCapacities":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, model.name)

    event = alarm_event("eventbridge", error_rate_alarm(world))
    with hooked(throttle, "before-call.sagemaker.*"), pytest.raises(Exception, match="Throttling"):
        rollback.lambda_handler(copy.deepcopy(event), lambda_context)
    # The abort is recorded before the flip, so the version is already ROLLED_BACK; no flip is claimed.
    assert world.announcements("Rollout Rolled Back") == []
    assert bootstrap.rollout_store().incidents(ENDPOINT) == []
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    # Lambda's retry (the same event) finishes the abort it started; another alarm would be a duplicate.
    another = alarm_event("eventbridge", error_rate_alarm(world))
    assert rollback.lambda_handler(another, lambda_context)["results"][0]["result"] == "duplicate"
    assert rollback.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]["result"] == "rolled_back"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}
    assert len(world.announcements("Rollout Rolled Back")) == 1


def test_a_manual_rollback_after_completion_redeploys_the_previous_version(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(
        promotion(v2, {"type": "all_at_once", "post_deploy_watch_seconds": 0}, at=AT), lambda_context
    )
    for minute in range(6):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v2": 1.0}
    assert status(world, 1) == "RETIRED"
    command = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Model Rollback Requested",
        "source": "shepherd.cli",
        "account": "123456789012",
        "time": (AT + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "eu-west-1",
        "resources": [],
        "detail": {"endpoint_name": ENDPOINT, "reason": "customers complain", "requested_by": "oncall@example.com"},
    }

    assert rollback.lambda_handler(command, lambda_context)["results"][0]["result"] == "redeploying"
    for minute in range(10, 16):
        tick(lambda_context, AT + timedelta(minutes=minute))

    # v1 serves everything again; v2 stays at weight 0 through the redeploy's own watch window: the
    # statuses say so (v1 LIVE, v2 on STANDBY), not two LIVE versions.
    assert settled_weights(sagemaker)["churn-predictor-v1"] == 1.0
    assert (status(world, 1), status(world, v2)) == ("LIVE", "STANDBY")
    started = world.announcements("Rollout Started")[-1]
    assert started["version"] == 1 and started["reason"] == "rollback: customers complain"


def rollback_command(at, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Model Rollback Requested",
        "source": "shepherd.cli",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "eu-west-1",
        "resources": [],
        "detail": {"endpoint_name": ENDPOINT, "reason": "customers complain", "requested_by": "oncall@example.com"}
        | detail,
    }


@pytest.mark.parametrize("to_version", [None, 1], ids=["no-to-version", "to-the-baseline"])
def test_an_operator_rollback_during_a_rollout_aborts_it_as_a_rollback(
    world, sagemaker, lambda_context, canary_at_10, to_version
):
    detail = {} if to_version is None else {"to_version": to_version}

    result = rollback.lambda_handler(rollback_command(AT + timedelta(minutes=2), **detail), lambda_context)

    assert result["results"][0]["result"] == "rolled_back"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}
    assert status(world, canary_at_10) == "ROLLED_BACK"
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert (rolled_back["trigger"], rolled_back["restored_version"]) == ("oncall@example.com", 1)
    assert world.announcements("Promotion Rejected") == []
    # An operator is not an alarm: the incident names who asked, and no alarm.
    [incident] = bootstrap.rollout_store().incidents(ENDPOINT)
    assert (incident.trigger, incident.alarm_name) == ("oncall@example.com", None)


def test_an_operator_rollback_to_another_version_during_a_rollout_is_skipped_with_a_reason(
    world, sagemaker, lambda_context, canary_at_10
):
    registered_version(world, lambda_context, 3)
    world.announcements()
    world.seen.clear()

    result = rollback.lambda_handler(rollback_command(AT + timedelta(minutes=2), to_version=3), lambda_context)

    assert result["results"][0]["result"] == "skipped"
    [skipped] = world.announcements("Rollback Skipped")
    assert skipped["trigger"] == "oncall@example.com" and skipped["version"] == canary_at_10
    assert "version 3" in skipped["reason"] and "baseline" in skipped["reason"]
    assert world.announcements("Promotion Rejected") == []
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    assert status(world, canary_at_10) == "DEPLOYING"


def test_a_watch_window_rollback_is_audited_from_live(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(
        promotion(v2, {"type": "all_at_once", "post_deploy_watch_seconds": 900}, at=AT), lambda_context
    )
    for minute in range(4):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert (status(world, v2), status(world, 1)) == ("LIVE", "STANDBY")

    rollback.lambda_handler(
        alarm_event("eventbridge", error_rate_alarm(world), at=AT + timedelta(minutes=5)), lambda_context
    )

    trail = bootstrap.registry().model_audit_trail("churn-predictor")
    [rolled_back] = [entry for entry in trail if entry.version == v2 and entry.to_status.value == "ROLLED_BACK"]
    assert rolled_back.from_status.value == "LIVE"
    # The version rolled back to serves again: LIVE, in the same commit as the abort.
    restored = [
        (e.from_status, e.to_status) for e in trail if e.version == 1 and e.rollout_id == rolled_back.rollout_id
    ]
    assert [(str(before), str(after)) for before, after in restored] == [("LIVE", "STANDBY"), ("STANDBY", "LIVE")]
    assert status(world, 1) == "LIVE"


def test_seconds_to_flip_is_never_negative_even_for_an_alarm_stamped_ahead_of_the_service_clock(
    world, sagemaker, lambda_context, canary_at_10
):
    # A sender's clock (or a forged event) ahead of ours: the flip cannot precede the alarm.
    ahead = datetime.now(UTC) + timedelta(hours=2)

    result = rollback.lambda_handler(alarm_event("eventbridge", error_rate_alarm(world), at=ahead), lambda_context)

    assert result["results"][0]["result"] == "rolled_back"
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert 0 <= rolled_back["seconds_to_flip"] < 60
    [incident] = bootstrap.rollout_store().incidents(ENDPOINT)
    assert incident.seconds_to_flip is not None and 0 <= incident.seconds_to_flip < 60


def test_a_malformed_operator_rollback_is_answered_as_refused_and_leaves_the_canary_alone(
    world, sagemaker, lambda_context, canary_at_10
):
    command = rollback_command(AT + timedelta(minutes=2), reason="")

    response = rollback.lambda_handler(command, lambda_context)

    assert response["result"] == "refused"
    [refused] = world.announcements("Command Refused")
    assert (refused["command_id"], refused["command"]) == (command["id"], "Model Rollback Requested")
    assert refused["reason"].startswith("detail.reason:")
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    assert world.announcements("Rollout Rolled Back") == []


def test_a_redelivered_operator_rollback_that_started_a_redeploy_is_that_redeploy_not_a_rollback_of_it(
    world, sagemaker, lambda_context, first_deployment
):
    # Given v2 completed, then an operator's rollback with nothing in flight: it redeploys v1
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(
        promotion(v2, {"type": "all_at_once", "post_deploy_watch_seconds": 0}, at=AT), lambda_context
    )
    for minute in range(6):
        tick(lambda_context, AT + timedelta(minutes=minute))
    command = rollback_command(AT + timedelta(minutes=10))
    assert rollback.lambda_handler(copy.deepcopy(command), lambda_context)["results"][0]["result"] == "redeploying"

    # When the same command is delivered again (a retry after a crash, or EventBridge's at least once)
    again = rollback.lambda_handler(copy.deepcopy(command), lambda_context)["results"][0]

    # Then it is the redeploy it started, which goes on: not a rollback of it, not a refusal
    assert again["result"] == "duplicate"
    assert world.announcements("Rollout Rolled Back") == [] and world.announcements("Rollback Skipped") == []
    for minute in range(10, 16):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker)["churn-predictor-v1"] == 1.0
    assert status(world, 1) == "LIVE"


def test_a_redelivered_operator_rollback_does_not_roll_back_the_rollout_that_came_after(
    world, sagemaker, lambda_context, canary_at_10
):
    # Given an operator's rollback that rolled v2 back, and v3 promoted afterwards
    command = rollback_command(AT + timedelta(minutes=2))
    assert rollback.lambda_handler(copy.deepcopy(command), lambda_context)["results"][0]["result"] == "rolled_back"
    for minute in range(3, 8):
        tick(lambda_context, AT + timedelta(minutes=minute))
    v3 = registered_version(world, lambda_context, 3)
    strategy = {"type": "canary", "canary_percent": 10, "bake_seconds": 3600, "analysis": {"judge": {"enabled": False}}}
    promote.lambda_handler(promotion(v3, strategy, at=AT + timedelta(minutes=8)), lambda_context)
    for minute in (8, 9, 10):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker)["churn-predictor-v3"] == 0.1

    # When the operator's command is delivered again (EventBridge delivers at least once)
    again = rollback.lambda_handler(copy.deepcopy(command), lambda_context)["results"][0]

    # Then it is the command already carried out: v3's canary goes on
    assert again["result"] == "duplicate"
    assert settled_weights(sagemaker)["churn-predictor-v3"] == 0.1
    assert status(world, v3) == "DEPLOYING"


def comparison_alarm(shape: str, variants: list[str]) -> dict[str, Any]:
    """A team's metric-math alarm comparing two variants' 5xx (candidate - baseline), one metric per
    variant in `variants` order, in the EventBridge or SNS shape (issue 22, defect 4)."""
    metrics = [{"EndpointName": ENDPOINT, "VariantName": variant} for variant in variants]
    if shape == "sns":
        cloudwatch_sets_alarm("churn-prod-5xx-vs-baseline", *metrics)
        event = sample_event("cloudwatch-alarm-metric-math.sns.json")
        message = json.loads(event["Records"][0]["Sns"]["Message"])
        for query, dimensions in zip(message["Trigger"]["Metrics"][1:], metrics, strict=True):
            query["MetricStat"]["Metric"]["Dimensions"] = [{"name": n, "value": v} for n, v in dimensions.items()]
        message.update(
            AlarmName="churn-prod-5xx-vs-baseline", StateChangeTime=AT.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        )
        event["Records"][0]["Sns"]["Message"] = json.dumps(message)
        return event
    event = alarm_event(shape, "churn-prod-5xx-vs-baseline")
    configuration = (event.get("alarmData") or event["detail"])["configuration"]
    first = configuration["metrics"][0]
    configuration["metrics"] = [
        {"id": "difference", "expression": "m0 - m1", "returnData": True},
        *(
            {
                **first,
                "id": f"m{n}",
                "returnData": False,
                "metricStat": {
                    **first["metricStat"],
                    "metric": {**first["metricStat"]["metric"], "dimensions": dimensions},
                },
            }
            for n, dimensions in enumerate(metrics)
        ),
    ]
    return event


@pytest.mark.parametrize("order", ["candidate-first", "baseline-first"])
@pytest.mark.parametrize("shape", ["lambda-action", "eventbridge", "sns"])
def test_an_alarm_comparing_the_candidate_with_the_baseline_rolls_back_whatever_the_order_of_its_metrics(
    world, sagemaker, lambda_context, canary_at_10, shape, order
):
    # Given an alarm that watches the candidate variant (and the baseline, to compare with): it is
    # about the candidate, so it acts, however CloudWatch lists its metrics.
    variants = ["churn-predictor-v2", "churn-predictor-v1"]
    event = comparison_alarm(shape, variants if order == "candidate-first" else variants[::-1])

    result = rollback.lambda_handler(event, lambda_context)["results"][0]

    assert result["result"] == "rolled_back"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0, "churn-predictor-v2": 0.0}
    assert status(world, canary_at_10) == "ROLLED_BACK"


@pytest.mark.parametrize("in_cloudwatch", ["OK", "missing"])
def test_an_sns_alarm_cloudwatch_does_not_confirm_rolls_nothing_back_and_is_recorded_and_announced(
    world, sagemaker, lambda_context, canary_at_10, in_cloudwatch
):
    # Someone who may publish to the alarm topic (the policy admits CloudWatch only, but policies change)
    # forges an ALARM for the rollout's own alarm, or for one that does not exist in CloudWatch.
    rollout_id = active_rollout_id(world)
    own = f"shepherd-test--{ENDPOINT}-{rollout_id}-error-rate"
    name = own if in_cloudwatch == "OK" else "churn-forged-alarm"
    if in_cloudwatch == "OK":
        boto3.client("cloudwatch", region_name="eu-west-1").set_alarm_state(
            AlarmName=own, StateValue="OK", StateReason="healthy"
        )
    event = sample_event("cloudwatch-alarm.sns.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message.update(AlarmName=name, NewStateValue="ALARM", StateChangeTime=AT.strftime("%Y-%m-%dT%H:%M:%S.000+0000"))
    message["Trigger"]["Dimensions"] = [{"name": key, "value": value} for key, value in CANDIDATE.items()]
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)

    [result] = rollback.lambda_handler(event, lambda_context)["results"]

    assert result["result"] == "skipped" and "CloudWatch" in result["reason"]
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    [skipped] = world.announcements("Rollback Skipped")
    assert skipped["trigger"] == name and skipped["rollout_id"] == rollout_id
    refusals = bootstrap.rollout_store().refusals(10)
    assert [(entry.action, entry.actor) for entry in refusals] == [("refused alarm", name)]
    assert world.announcements("Rollout Rolled Back") == []


def test_an_sns_alarm_acts_by_the_dimensions_cloudwatch_has_not_the_messages(
    world, sagemaker, lambda_context, canary_at_10
):
    # A real alarm of another team is firing on another endpoint; a forged notification names it but
    # claims the candidate's dimensions: confirmed as firing, it still acts only where it really looks.
    cloudwatch_sets_alarm("checkout-latency-high", {"EndpointName": "checkout-prod", "VariantName": "v7"})
    event = alarm_event("sns", "checkout-latency-high", state="OK")  # built without touching CloudWatch
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["NewStateValue"] = "ALARM"
    message["Trigger"]["Dimensions"] = [{"name": key, "value": value} for key, value in CANDIDATE.items()]
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)

    [result] = rollback.lambda_handler(event, lambda_context)["results"]

    assert result["result"] == "ignored"
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    assert world.announcements("Rollout Rolled Back") == []
