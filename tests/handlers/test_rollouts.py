"""Rollouts end to end through the handlers, on moto with Shepherd's SageMaker emulator extension.

What is asserted is what a user sees: the endpoint's variant weights (DescribeEndpoint), version
statuses in the table, and the announcements on the bus. Time is the controller events' `time`.
"""

from __future__ import annotations

import copy
from datetime import timedelta

import boto3
import pytest
from pydantic import ValidationError

from shepherd_cli.local import emulator
from tests.handlers.conftest import ROLLBACK_ARN
from tests.handlers.lifecycle import (
    ENDPOINT,
    START,
    endpoint_state,
    promote,
    promotion,
    registered_version,
    run_controller,
    settled_weights,
    status,
    tick,
    weights,
)


def test_every_sagemaker_resource_shepherd_creates_carries_the_stack_tag(sagemaker, first_deployment):
    # The stack's IAM policies let Shepherd change only resources with this tag (moto keeps tags but
    # enforces no policy: tests/unit/test_template_security.py checks the policies).
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    models = [sagemaker.describe_model(ModelName=v["ModelName"]) for v in config["ProductionVariants"]]
    arns = [endpoint["EndpointArn"], config["EndpointConfigArn"], *(m["ModelArn"] for m in models)]

    tags = {arn: sagemaker.list_tags(ResourceArn=arn)["Tags"] for arn in arns}

    assert len(arns) == 3
    assert all({"Key": "shepherd:stack", "Value": "shepherd-test-stack"} in found for found in tags.values()), tags


def test_a_first_deployment_creates_the_endpoint_at_100_percent(world, sagemaker, lambda_context):
    v1 = registered_version(world, lambda_context, 1)

    response = promote.lambda_handler(
        promotion(v1, {"type": "canary", "canary_percent": 10, "bake_seconds": 60}), lambda_context
    )
    assert response["result"] == "started"
    run_controller(lambda_context, sagemaker, START, 3)

    assert weights(sagemaker) == {"churn-predictor-v1": 1.0}
    assert status(world, v1) == "LIVE"
    kinds = [kind for kind, _ in world.seen] if world.announcements() else []
    assert "Rollout Started" in kinds and "Rollout Completed" in kinds
    [started] = world.announcements("Rollout Started")
    assert "previous_version" not in started


def test_a_canary_shifts_10_percent_then_100_then_retires_the_old_variant(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 900}
    at = START + timedelta(hours=1)
    assert promote.lambda_handler(promotion(v2, strategy, at=at), lambda_context)["result"] == "started"
    assert status(world, v2) == "DEPLOYING"

    # The controller ticks every minute; the endpoint as a user sees it, minute by minute:
    timeline = {}
    for minute in range(0, 35):
        tick(lambda_context, at + timedelta(minutes=minute))
        timeline[minute] = settled_weights(sagemaker)
        if minute == 5:
            assert (status(world, v2), status(world, first_deployment)) == ("DEPLOYING", "LIVE")
        if minute == 20:
            # In the watch window v2 serves and v1 is on standby at weight 0: only v2 is LIVE.
            assert (status(world, v2), status(world, first_deployment)) == ("LIVE", "STANDBY")

    # First passes: the candidate joins at weight 0, then gets 10% and bakes for 10 minutes.
    assert timeline[1] == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    assert timeline[10] == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    # Bake over: 100%, the old variant kept at weight 0 through the 15-minute watch window.
    assert timeline[14] == {"churn-predictor-v1": 0.0, "churn-predictor-v2": 1.0}
    assert timeline[25] == {"churn-predictor-v1": 0.0, "churn-predictor-v2": 1.0}
    # Watch window over: the old variant is removed and v1 retired.
    assert timeline[34] == {"churn-predictor-v2": 1.0}
    assert (status(world, v2), status(world, first_deployment)) == ("LIVE", "RETIRED")
    distinct = [
        weights for minute, weights in sorted(timeline.items()) if minute == 0 or weights != timeline[minute - 1]
    ]
    # joined at 0, 10%, 100% beside the old variant at 0, then alone
    assert [w.get("churn-predictor-v2") for w in distinct] == [0.0, 0.1, 1.0, 1.0]

    shifted = world.announcements("Rollout Traffic Shifted")
    assert [(s["from_percent"], s["to_percent"]) for s in shifted] == [(0, 10), (10, 100)]
    assert all(s["previous_version"] == 1 and s["version"] == 2 for s in shifted)
    assert len(world.announcements("Rollout Completed")) == 1
    assert len(world.announcements("Model Version Retired")) == 1
    alarms = boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix="shepherd-")["MetricAlarms"]
    assert alarms == []  # the per-rollout alarms went with the rollout


def test_a_linear_rollout_steps_through_every_percent_once_even_with_duplicate_ticks(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    at = START + timedelta(hours=1)
    strategy = {"type": "linear", "step_percent": 20, "interval_seconds": 120, "post_deploy_watch_seconds": 60}
    promote.lambda_handler(promotion(v2, strategy, at=at), lambda_context)

    seen: list[float] = []
    for minute in range(20):
        now = at + timedelta(minutes=minute)
        for _ in range(2):  # every tick delivered twice
            tick(lambda_context, now)
        current = settled_weights(sagemaker).get("churn-predictor-v2")
        if current is not None and (not seen or seen[-1] != current):
            seen.append(current)

    assert seen == [0.2, 0.4, 0.6, 0.8, 1.0]
    shifted = world.announcements("Rollout Traffic Shifted")
    assert [s["to_percent"] for s in shifted] == [20, 40, 60, 80, 100]


def test_a_steps_rollout_follows_its_plan(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    at = START + timedelta(hours=1)
    strategy = {
        "type": "steps",
        "steps": [{"percent": 5, "bake_seconds": 300}, {"percent": 50, "bake_seconds": 600}, {"percent": 100}],
        "post_deploy_watch_seconds": 0,
    }
    promote.lambda_handler(promotion(v2, strategy, at=at), lambda_context)
    run_controller(lambda_context, sagemaker, at, 25)
    shifted = world.announcements("Rollout Traffic Shifted")
    assert [s["to_percent"] for s in shifted] == [5, 50, 100]
    assert settled_weights(sagemaker) == {"churn-predictor-v2": 1.0}


@pytest.mark.parametrize(
    ("version", "strategy", "reason"),
    [
        (7, {"type": "all_at_once"}, "has no version 7"),
        ("unapproved", {"type": "all_at_once"}, "is REGISTERED"),
        ("v2", {"type": "canary", "canary_percent": 0, "bake_seconds": 60}, "canary_percent"),
        ("v2", {"type": "steps", "steps": [{"percent": 50}, {"percent": 40}, {"percent": 100}]}, "steps[1].percent"),
        ("v2", {"type": "linear", "step_percent": 20, "interval_seconds": 604801}, "interval_seconds"),
    ],
)
def test_bad_promotions_leave_the_endpoint_untouched_and_are_announced(
    world, sagemaker, lambda_context, first_deployment, version, strategy, reason
):
    v2 = registered_version(world, lambda_context, 2)
    if version == "unapproved":
        version = registered_version(world, lambda_context, 3, approve_it=False)
    elif version == "v2":
        version = v2
    before = endpoint_state(sagemaker)

    response = promote.lambda_handler(promotion(version, strategy, at=START + timedelta(hours=1)), lambda_context)

    assert response["result"] == "rejected" and reason in response["reason"]
    assert endpoint_state(sagemaker) == before
    [rejected] = world.announcements("Promotion Rejected")
    assert reason in rejected["reason"] and rejected["endpoint_name"] == ENDPOINT
    assert status(world, v2) == "APPROVED"


def test_a_second_promotion_on_a_busy_endpoint_names_the_active_rollout(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    v3 = registered_version(world, lambda_context, 3)
    at = START + timedelta(hours=1)
    first = promote.lambda_handler(promotion(v2, {"type": "all_at_once"}, at=at), lambda_context)

    second = promote.lambda_handler(promotion(v3, {"type": "all_at_once"}, at=at), lambda_context)

    assert second["result"] == "rejected"
    [rejected] = world.announcements("Promotion Rejected")
    assert rejected["active_rollout_id"] == first["rollout_id"]
    assert status(world, v3) == "APPROVED"


def test_two_promotions_racing_for_one_endpoint_start_one_rollout(world, sagemaker, lambda_context, first_deployment):
    from concurrent.futures import ThreadPoolExecutor

    versions = [registered_version(world, lambda_context, n) for n in (2, 3)]
    at = START + timedelta(hours=1)
    events = [promotion(v, {"type": "all_at_once"}, at=at) for v in versions]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda e: promote.lambda_handler(e, lambda_context)["result"], events))
    assert sorted(results) == ["rejected", "started"]
    assert sorted(status(world, v) for v in versions) == ["APPROVED", "DEPLOYING"]


def test_a_redelivered_promotion_is_one_rollout(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    event = promotion(v2, {"type": "all_at_once"}, at=START + timedelta(hours=1))
    results = [promote.lambda_handler(copy.deepcopy(event), lambda_context)["result"] for _ in range(3)]
    assert results == ["started", "duplicate", "duplicate"]
    assert world.announcements("Promotion Rejected") == []


def test_latest_approved_picks_the_newest_approved_version(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    registered_version(world, lambda_context, 3, approve_it=False)
    promote.lambda_handler(
        promotion("latest-approved", {"type": "all_at_once"}, at=START + timedelta(hours=1)), lambda_context
    )
    [started] = world.announcements("Rollout Started")
    assert started["version"] == v2 and started["previous_version"] == 1


def test_a_failed_update_fails_the_rollout_and_leaves_the_live_variant(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    at = START + timedelta(hours=1)
    emulator.fail_next_update(ENDPOINT, "CannotStartContainerError: the image could not be pulled")
    promote.lambda_handler(
        promotion(v2, {"type": "canary", "canary_percent": 10, "bake_seconds": 60}, at=at), lambda_context
    )

    run_controller(lambda_context, sagemaker, at, 5)

    assert settled_weights(sagemaker) == {"churn-predictor-v1": 1.0}
    assert status(world, v2) == "FAILED"
    [failed] = world.announcements("Rollout Failed")
    assert "CannotStartContainerError" in failed["reason"]
    assert world.announcements("Rollout Completed") == []


def test_a_crash_between_the_weight_change_and_the_record_is_repaired(
    world, sagemaker, lambda_context, first_deployment, monkeypatch
):
    from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore
    from shepherd.rollouts.ports import SaveRollout

    v2 = registered_version(world, lambda_context, 2)
    at = START + timedelta(hours=1)
    promote.lambda_handler(
        promotion(v2, {"type": "canary", "canary_percent": 10, "bake_seconds": 300}, at=at), lambda_context
    )
    tick(lambda_context, at)  # candidate added at weight 0
    settled_weights(sagemaker)

    # The process dies right after UpdateEndpointWeightsAndCapacities, before the record is written.
    # A BaseException: a Lambda timeout kills the process, nothing in it (no error isolation) runs after.
    class LambdaTimedOut(BaseException):
        pass

    real_commit = DynamoRolloutStore.commit

    def crash_on_shift(self, changes):
        if any(isinstance(c, SaveRollout) and c.rollout.step_index == 0 and c.rollout.pending_since for c in changes):
            raise LambdaTimedOut
        return real_commit(self, changes)

    monkeypatch.setattr(DynamoRolloutStore, "commit", crash_on_shift)
    with pytest.raises(LambdaTimedOut):
        tick(lambda_context, at + timedelta(minutes=1))
    monkeypatch.setattr(DynamoRolloutStore, "commit", real_commit)
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}

    # The next tick sees the endpoint already at 10% and catches the record up: no second shift.
    tick(lambda_context, at + timedelta(minutes=2))
    assert settled_weights(sagemaker) == {"churn-predictor-v1": 0.9, "churn-predictor-v2": 0.1}
    run_controller(lambda_context, sagemaker, at + timedelta(minutes=10), 4)
    assert settled_weights(sagemaker)["churn-predictor-v2"] == 1.0
    assert [s["to_percent"] for s in world.announcements("Rollout Traffic Shifted")] == [100]


def test_per_rollout_alarms_watch_the_candidate_and_call_the_rollback_function(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "canary", "canary_percent": 10, "bake_seconds": 60, "analysis": {"max_error_rate_percent": 2.5}}
    rollout_id = promote.lambda_handler(promotion(v2, strategy, at=START + timedelta(hours=1)), lambda_context)[
        "rollout_id"
    ]

    alarms = {
        a["AlarmName"]: a
        for a in boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix="shepherd-")["MetricAlarms"]
    }

    error_rate = alarms[f"shepherd-test--{ENDPOINT}-{rollout_id}-error-rate"]
    latency = alarms[f"shepherd-test--{ENDPOINT}-{rollout_id}-latency-p99"]
    assert error_rate["AlarmActions"] == [ROLLBACK_ARN] == latency["AlarmActions"]
    assert error_rate["Threshold"] == 2.5
    assert {m["Id"] for m in error_rate["Metrics"]} == {"errors", "invocations", "error_rate"}
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"]) == (
        "ModelLatency",
        "p99",
        300_000,
    )
    assert {"Name": "VariantName", "Value": "churn-predictor-v2"} in latency["Dimensions"]
    [started] = world.announcements("Rollout Started")
    assert set(started["alarms"]) == {error_rate["AlarmName"], latency["AlarmName"]}


def test_a_malformed_promotion_is_answered_as_refused_and_touches_no_endpoint(world, sagemaker, lambda_context):
    v1 = registered_version(world, lambda_context, 1)
    event = promotion(v1, {"type": "all_at_once"}, endpoint_name="not a name!")

    response = promote.lambda_handler(event, lambda_context)

    assert response["result"] == "refused"
    [refused] = world.announcements("Command Refused")
    assert refused["command_id"] == event["id"] and refused["command"] == "Model Promotion Requested"
    assert refused["reason"].startswith("detail.endpoint_name: String should match pattern")
    assert world.announcements("Rollout Started") == []
    assert sagemaker.list_endpoints()["Endpoints"] == [] and status(world, v1) == "APPROVED"


def test_a_promotion_without_an_envelope_id_raises_for_the_dead_letter_queue(world, sagemaker, lambda_context):
    # Given a promotion whose envelope lost its id (nothing to answer it by, nothing to key a rollout by)
    command = promotion(registered_version(world, lambda_context, 1), {"type": "all_at_once"})
    del command["id"]
    world.announcements()
    world.seen.clear()  # the registration's and approval's

    # When it is handled, the invocation fails (Lambda retries it, then its dead-letter queue keeps it)
    with pytest.raises(ValidationError):
        promote.lambda_handler(command, lambda_context)

    # Then nothing was started or announced
    assert world.announcements() == []
    assert sagemaker.list_models()["Models"] == []
