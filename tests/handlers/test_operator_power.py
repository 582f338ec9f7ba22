"""What operators and deployers may not do (issue 20): a rollback ships only a version that was live on
its endpoint before; an endpoint keeps its model unless a promotion says `replace_model`; instance
types and counts stay within the stack's parameters; a missing gating alarm holds a rollout.

Through the handlers, on moto. Every refusal is answered, recorded (`refusals`, the REFUSALS index)
and leaves the endpoint as it was, with no lock held."""

from __future__ import annotations

import uuid
from datetime import timedelta

import boto3
import pytest

from shepherd import bootstrap
from tests.handlers.conftest import load_handler, sample_event
from tests.handlers.lifecycle import (
    ENDPOINT,
    START,
    approve,
    endpoint_state,
    promote,
    promotion,
    register,
    registered_version,
    settled_weights,
    status,
    tick,
)
from tests.handlers.test_register_version import eventbridge_upload
from tests.handlers.test_rollback import rollback_command

rollback = load_handler("rollback")
AT = START + timedelta(hours=1)


def lock_item(world) -> dict | None:
    key = {"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "LOCK"}}
    return world.dynamodb.get_item(TableName=world.table, Key=key).get("Item")


def recorded_refusals() -> list[str]:
    return [entry.detail for entry in bootstrap.rollout_store().refusals(10)]


def assert_refused_and_nothing_held(world, sagemaker, before, reason_part: str) -> None:
    """Announced (Promotion Rejected), recorded, the endpoint untouched, the lock free."""
    [rejected] = world.announcements("Promotion Rejected")
    assert reason_part in rejected["reason"], rejected["reason"]
    assert any(reason_part in detail for detail in recorded_refusals())
    assert endpoint_state(sagemaker) == before
    assert lock_item(world) is None


@pytest.fixture
def v2_live_after_v1(world, sagemaker, lambda_context, first_deployment) -> int:
    """v1 then v2 deployed on the endpoint (v1 RETIRED); v3 APPROVED but never deployed."""
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(
        promotion(v2, {"type": "all_at_once", "post_deploy_watch_seconds": 0}, at=AT), lambda_context
    )
    for minute in range(6):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v2": 1.0}
    assert (status(world, 1), status(world, v2)) == ("RETIRED", "LIVE")
    assert registered_version(world, lambda_context, 3) == 3
    world.announcements()
    world.seen.clear()
    return v2


# --- 5a: a rollback goes back only to a version that was live there -------------------------------------


def test_a_rollback_to_a_version_never_live_on_the_endpoint_is_refused_recorded_and_announced(
    world, sagemaker, lambda_context, v2_live_after_v1
):
    before = endpoint_state(sagemaker)

    result = rollback.lambda_handler(rollback_command(AT + timedelta(minutes=10), to_version=3), lambda_context)

    outcome = result["results"][0]
    assert outcome["result"] == "skipped" and "never live on churn-prod" in outcome["reason"]
    [skipped] = world.announcements("Rollback Skipped")
    assert "never live on churn-prod" in skipped["reason"]
    assert_refused_and_nothing_held(world, sagemaker, before, "never live on churn-prod")
    assert status(world, 3) == "APPROVED"  # nothing shipped it


def test_a_rollback_to_a_version_that_was_live_there_redeploys_it(world, sagemaker, lambda_context, v2_live_after_v1):
    result = rollback.lambda_handler(rollback_command(AT + timedelta(minutes=10), to_version=1), lambda_context)

    assert result["results"][0]["result"] == "redeploying"
    for minute in range(10, 16):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker)["churn-predictor-v1"] == 1.0


# --- 5b: an endpoint keeps its model unless the promotion says replace_model ------------------------------


def other_model_version(world, lambda_context) -> None:
    """fraud-detector v1, registered and approved."""
    key = "models/fraud-detector/run-1/model.tar.gz"
    assert register.lambda_handler(eventbridge_upload(world, key=key), lambda_context)["results"][0]["version"] == 1
    command = sample_event("model-version-approval-requested.json")
    command["id"] = str(uuid.uuid4())
    command["detail"].update(model_name="fraud-detector", version=1)
    assert approve.lambda_handler(command, lambda_context)["result"] == "approved"
    world.announcements()
    world.seen.clear()


def other_model_promotion(**detail) -> dict:
    command = promotion(1, {"type": "all_at_once"}, at=AT, **detail)
    command["detail"]["model_name"] = "fraud-detector"
    return command


def test_another_model_on_a_bound_endpoint_is_refused_recorded_and_announced(
    world, sagemaker, lambda_context, first_deployment
):
    other_model_version(world, lambda_context)
    before = endpoint_state(sagemaker)

    response = promote.lambda_handler(other_model_promotion(), lambda_context)

    assert response["result"] == "rejected"
    assert "bound to churn-predictor" in response["reason"] and "replace_model" in response["reason"]
    assert_refused_and_nothing_held(world, sagemaker, before, "bound to churn-predictor")


def test_replace_model_true_puts_another_model_on_the_endpoint(world, sagemaker, lambda_context, first_deployment):
    other_model_version(world, lambda_context)

    response = promote.lambda_handler(other_model_promotion(replace_model=True), lambda_context)

    assert response["result"] == "started"
    for minute in range(6):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker)["fraud-detector-v1"] == 1.0


# --- 5c: instance types and counts within the stack's parameters ------------------------------------------


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"instance_type": "ml.p4d.24xlarge"}, "instance type ml.p4d.24xlarge is not allowed"),
        ({"initial_instance_count": 11}, "11 instances is more than the 10 allowed"),
    ],
    ids=["type", "count"],
)
def test_a_disallowed_instance_type_or_count_is_refused_recorded_and_announced(
    world, sagemaker, lambda_context, first_deployment, detail, reason
):
    v2 = registered_version(world, lambda_context, 2)
    world.announcements()
    world.seen.clear()
    before = endpoint_state(sagemaker)

    response = promote.lambda_handler(promotion(v2, {"type": "all_at_once"}, at=AT, **detail), lambda_context)

    assert response["result"] == "rejected" and reason in response["reason"]
    assert_refused_and_nothing_held(world, sagemaker, before, reason)
    assert status(world, v2) == "APPROVED"


# --- 6b: a missing gating alarm holds the rollout ---------------------------------------------------------


def business_alarm(name: str = "churn-conversion-drop") -> None:
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="Acme/Checkout",
        MetricName="Conversions",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="LessThanThreshold",
    )


def test_a_gating_alarm_deleted_during_a_rollout_holds_it_and_says_so_until_it_is_back(
    world, sagemaker, lambda_context, first_deployment
):
    business_alarm()
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 0}
    promote.lambda_handler(promotion(v2, strategy, at=AT, alarms=["churn-conversion-drop"]), lambda_context)
    tick(lambda_context, AT)
    tick(lambda_context, AT + timedelta(minutes=1))
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    world.announcements()
    world.seen.clear()

    boto3.client("cloudwatch").delete_alarms(AlarmNames=["churn-conversion-drop"])
    for minute in range(12, 20):  # the bake is long over
        tick(lambda_context, AT + timedelta(minutes=minute))

    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    [missing] = world.announcements("Gating Alarms Missing")
    assert missing["missing_alarms"] == ["churn-conversion-drop"] and missing["percent"] == 10
    assert "gating alarm churn-conversion-drop is missing" in missing["reason"]
    trail = bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT)
    assert [e.detail for e in trail if e.action == "held"] == [missing["reason"]]

    # Back, and not firing: the rollout goes on (level-triggered, as for an alarm that stops firing).
    business_alarm()
    for minute in range(20, 26):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker)["churn-predictor-v2"] == 1.0
    assert status(world, v2) == "LIVE"
    assert [e.action for e in bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT)].count("gating alarms back") == 1


def test_a_missing_per_rollout_alarm_holds_the_first_shift(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "canary", "canary_percent": 10, "bake_seconds": 600}
    response = promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)
    own = f"shepherd-test--{ENDPOINT}-{response['rollout_id']}-latency-p99"
    boto3.client("cloudwatch").delete_alarms(AlarmNames=[own])

    for minute in range(5):
        tick(lambda_context, AT + timedelta(minutes=minute))

    assert settled_weights(sagemaker)["churn-predictor-v2"] == 0.0
    [missing] = world.announcements("Gating Alarms Missing")
    assert missing["missing_alarms"] == [own] and missing["percent"] == 0


def test_a_gating_alarm_missing_at_the_end_of_the_watch_window_keeps_the_previous_variant(
    world, sagemaker, lambda_context, first_deployment
):
    business_alarm()
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "all_at_once", "post_deploy_watch_seconds": 300}
    promote.lambda_handler(promotion(v2, strategy, at=AT, alarms=["churn-conversion-drop"]), lambda_context)
    for minute in range(3):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.0, "churn-predictor-v2": 1.0}  # watching

    boto3.client("cloudwatch").delete_alarms(AlarmNames=["churn-conversion-drop"])
    for minute in range(3, 15):  # the watch window is long over
        tick(lambda_context, AT + timedelta(minutes=minute))

    # Not retired: v1 stays one weight change away, as while a gating alarm fires.
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.0, "churn-predictor-v2": 1.0}
    assert status(world, 1) == "STANDBY"
    [missing] = world.announcements("Gating Alarms Missing")
    assert missing["percent"] == 100
