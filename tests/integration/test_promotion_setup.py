"""A rollout is acted on only once its promotion has set it up (issue 22, defect 1).

The promotion takes the endpoint's lock, then creates the candidate's SageMaker model and its
per-rollout alarms. Through the handlers on moto, with faults injected as the network would produce
them (test_fault_injection.py): a controller pass that runs between a failed set-up and Lambda's retry
must not act on the rollout, the retry must finish the set-up, and a set-up refused for good (or never
finished) must end the rollout with its reason, its endpoint released and untouched.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import boto3
import pytest

from shepherd.registry.errors import TransientError
from tests.handlers.lifecycle import ENDPOINT, promote, promotion, registered_version, settled_weights, status, tick
from tests.integration import test_fault_injection as fault_injection
from tests.integration.test_fault_injection import AT, CANARY, SDK_ATTEMPTS, V1, V2, lambda_async, rollout_record
from tests.integration.test_rollout_failures import lock_holder

lambda_context = fault_injection.lambda_context
sagemaker = fault_injection.sagemaker
first_deployment = fault_injection.first_deployment
faults = fault_injection.faults

REFUSED = (400, {"__type": "LimitExceededFault", "message": "The maximum number of alarms has been reached"})


def own_alarms() -> list[str]:
    described = boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"shepherd-test--{ENDPOINT}-")
    return sorted(alarm["AlarmName"] for alarm in described["MetricAlarms"])


@pytest.fixture
def v2(world, sagemaker, lambda_context, first_deployment) -> int:
    version = registered_version(world, lambda_context, 2)
    world.announcements()
    world.seen.clear()
    return version


def run(lambda_context, minutes: range) -> list[dict[str, Any]]:
    return [tick(lambda_context, AT + timedelta(minutes=minute)) for minute in minutes]


def test_a_tick_between_a_throttled_create_model_and_lambdas_retry_leaves_the_rollout_for_the_retry(
    world, sagemaker, lambda_context, faults, v2
):
    event = promotion(v2, CANARY, at=AT)
    faults("sagemaker", "CreateModel", kind="throttling", times=SDK_ATTEMPTS)  # every attempt of one call
    with pytest.raises(TransientError):
        promote.lambda_handler(copy.deepcopy(event), lambda_context)

    # The controller's next pass runs before Lambda's retry: it does not touch the endpoint.
    assert run(lambda_context, range(0, 2))[-1]["errors"] == 0
    assert settled_weights(sagemaker) == {V1: 1.0}
    assert rollout_record(world)["rollout"]["M"]["phase"] == {"S": "PREPARING"}
    assert world.announcements("Rollout Failed") == [] and world.announcements("Rollout Started") == []

    retried = promote.lambda_handler(copy.deepcopy(event), lambda_context)

    # The retry finishes the set-up and starts the rollout (not "duplicate"): model, alarms, announcement.
    assert retried["result"] == "started"
    assert len(own_alarms()) == 2
    [started] = world.announcements("Rollout Started")
    assert started["rollout_id"] == retried["rollout_id"]
    run(lambda_context, range(2, 18))  # join, 10%, bake 300 s, 100%, watch 60 s, retire
    assert settled_weights(sagemaker) == {V2: 1.0}
    assert status(world, v2) == "LIVE"


def test_put_metric_alarm_refused_for_good_refuses_the_promotion_and_the_canary_never_runs(
    world, sagemaker, lambda_context, faults, v2
):
    faults("cloudwatch", "PutMetricAlarm", respond=lambda: REFUSED, times=10**6)

    answer = promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)

    # Refused with CloudWatch's reason, announced as the answer to the command...
    assert answer["result"] == "rejected"
    assert answer["reason"].startswith("could not set the rollout up: LimitExceededFault")
    [rejected] = world.announcements("Promotion Rejected")
    assert (rejected["rollout_id"], rejected["reason"]) == (answer["rollout_id"], answer["reason"])
    # ...and the rollout never runs without its alarms: the next pass ends it, the endpoint untouched.
    run(lambda_context, range(0, 3))
    assert settled_weights(sagemaker) == {V1: 1.0}
    assert lock_holder(world) is None
    assert (status(world, v2), status(world, 1)) == ("FAILED", "LIVE")
    [failed] = world.announcements("Rollout Failed")
    assert failed["reason"].startswith("could not set the rollout up: LimitExceededFault")
    assert world.announcements("Rollout Traffic Shifted") == []
    assert own_alarms() == []


def test_a_set_up_that_never_finishes_fails_at_the_deadline_and_releases_the_endpoint(
    world, sagemaker, lambda_context, faults, v2
):
    event = promotion(v2, CANARY, at=AT)
    faults("sagemaker", "CreateModel", kind="5xx", times=10**6)
    outcome, _ = lambda_async(promote, event, lambda_context)  # every try fails: dead-lettered
    assert outcome == "dead-letter"

    run(lambda_context, range(0, 60, 10))
    assert lock_holder(world) is not None and settled_weights(sagemaker) == {V1: 1.0}
    run(lambda_context, range(60, 63))  # the update deadline (an hour) after the promotion

    assert lock_holder(world) is None
    assert settled_weights(sagemaker) == {V1: 1.0}
    assert status(world, v2) == "FAILED"
    [failed] = world.announcements("Rollout Failed")
    assert failed["reason"].startswith("set-up did not finish within 3600 s")
