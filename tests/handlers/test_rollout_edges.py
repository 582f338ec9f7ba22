"""Rollouts under odd but legal input: senders' clocks, missing capacity, endpoints deleted outside
Shepherd, the same command delivered twice at once, a promotion refused for a held lock.

Through the handlers on moto. The services' clock is wired in with `bootstrap.wired` (as local mode
does), so "now" is the simulated time of these tests, and a sender's `time` can be ahead of it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from shepherd import bootstrap
from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore
from shepherd.rollouts.ports import StartRollout
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
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 0}
V1, V2 = "churn-predictor-v1", "churn-predictor-v2"
FORGED = timedelta(days=1)  # how far ahead of the service's clock a sender dates its event


class Clock:
    """The services' clock in these tests: it reads what the test last set."""

    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(world) -> Iterator[Clock]:
    current = Clock()
    with bootstrap.wired(bootstrap.Container(clock=current)):
        yield current


def honest_tick(lambda_context, clock: Clock, at: datetime) -> dict:
    clock.now = at
    return tick(lambda_context, at)


def shift_config(sagemaker) -> list[dict]:
    name = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    return list(sagemaker.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"])


# --- time: a sender's clock never beyond ours --------------------------------------------------------


def test_a_future_dated_tick_neither_skips_a_bake_nor_freezes_the_rollout(
    world, sagemaker, lambda_context, first_deployment, clock
):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    for minute in (0, 1, 2):  # joined at 0, then 10%, reached: baking 600 s from about AT+2m
        honest_tick(lambda_context, clock, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}

    tick(lambda_context, clock.now + FORGED)  # dated a day ahead: taken as our now (+30 s at most)

    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}  # the bake was not skipped
    # Honest ticks still move it (a record dated a day ahead would make them all "stale"):
    for minute in range(3, 16):
        honest_tick(lambda_context, clock, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {V2: 1.0}
    assert status(world, v2) == "LIVE"
    shifted = [(s["from_percent"], s["to_percent"]) for s in world.announcements("Rollout Traffic Shifted")]
    assert shifted == [(0, 10), (10, 100)]


def test_a_future_dated_promotion_starts_on_our_clock(world, sagemaker, lambda_context, first_deployment, clock):
    v2 = registered_version(world, lambda_context, 2)

    promote.lambda_handler(promotion(v2, CANARY, at=AT + FORGED), lambda_context)
    for minute in (1, 2):  # joined at 0, then 10%
        honest_tick(lambda_context, clock, AT + timedelta(minutes=minute))

    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}  # not held until tomorrow


def test_a_future_dated_alarm_rolls_back_and_the_restore_still_finishes(
    world, sagemaker, lambda_context, first_deployment, clock
):
    v2 = registered_version(world, lambda_context, 2)
    rollout_id = promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)["rollout_id"]
    for minute in (0, 1):
        honest_tick(lambda_context, clock, AT + timedelta(minutes=minute))
    event = sample_event("cloudwatch-alarm-state-change.eventbridge.json")
    event["detail"]["alarmName"] = f"shepherd-test--{ENDPOINT}-{rollout_id}-error-rate"
    event["detail"]["state"]["timestamp"] = (clock.now + FORGED).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    event["time"] = (clock.now + FORGED).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert rollback.lambda_handler(event, lambda_context)["results"][0]["result"] == "rolled_back"
    for minute in (2, 3, 4):
        honest_tick(lambda_context, clock, AT + timedelta(minutes=minute))

    assert settled_weights(sagemaker) == {V1: 1.0}  # the candidate variant is gone: the restore ran
    assert status(world, v2) == "ROLLED_BACK"
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert rolled_back["seconds_to_flip"] >= -30  # never more negative than the allowed skew


# --- capacity: as the live variant unless the promotion says otherwise ------------------------------------


def test_a_promotion_without_capacity_keeps_the_live_variants(world, sagemaker, lambda_context, clock):
    v1 = registered_version(world, lambda_context, 1)
    big = {"instance_type": "ml.c5.2xlarge", "initial_instance_count": 4}
    promote.lambda_handler(promotion(v1, {"type": "all_at_once"}, at=START, **big), lambda_context)
    for minute in range(3):
        honest_tick(lambda_context, clock, START + timedelta(minutes=minute))
    v2 = registered_version(world, lambda_context, 2)
    event = promotion(v2, CANARY, at=AT)
    del event["detail"]["instance_type"], event["detail"]["initial_instance_count"]

    promote.lambda_handler(event, lambda_context)
    honest_tick(lambda_context, clock, AT)

    capacity = {v["VariantName"]: (v["InstanceType"], v["InitialInstanceCount"]) for v in shift_config(sagemaker)}
    assert capacity == {V1: ("ml.c5.2xlarge", 4), V2: ("ml.c5.2xlarge", 4)}


# --- endpoints stay manageable ----------------------------------------------------------------------


def test_an_endpoint_deleted_outside_shepherd_is_deployed_afresh_by_the_next_promotion(
    world, sagemaker, lambda_context, first_deployment, clock
):
    sagemaker.delete_endpoint(EndpointName=ENDPOINT)
    v2 = registered_version(world, lambda_context, 2)

    assert promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)["result"] == "started"
    for minute in range(4):
        honest_tick(lambda_context, clock, AT + timedelta(minutes=minute))

    assert settled_weights(sagemaker) == {V2: 1.0}  # a first deployment: straight to 100%
    assert (status(world, v2), status(world, first_deployment)) == ("LIVE", "RETIRED")
    [started] = world.announcements("Rollout Started")
    assert "previous_version" not in started
    assert world.announcements("Rollout Failed") == []


# --- duplicates and refusals ------------------------------------------------------------------------------


def test_the_same_promotion_delivered_twice_at_once_is_one_rollout(
    world, sagemaker, lambda_context, first_deployment, monkeypatch
):
    v2 = registered_version(world, lambda_context, 2)
    event = promotion(v2, CANARY, at=AT)
    # The second delivery checks for the rollout before the first has committed it, then commits
    # first: the first delivery then finds the lock held by its own rollout. (Forced here, as a
    # thread race would produce it only sometimes.)
    real_commit = DynamoRolloutStore.commit
    second: list[dict] = []
    delivered = []

    def commit_after_the_other_delivery(self, changes):
        if not delivered and any(isinstance(change, StartRollout) for change in changes):
            delivered.append(True)
            second.append(promote.lambda_handler(copy.deepcopy(event), lambda_context))
        return real_commit(self, changes)

    monkeypatch.setattr(DynamoRolloutStore, "commit", commit_after_the_other_delivery)
    first = promote.lambda_handler(copy.deepcopy(event), lambda_context)

    assert sorted([first["result"], second[0]["result"]]) == ["duplicate", "started"]
    assert first["rollout_id"] == second[0]["rollout_id"]
    assert world.announcements("Promotion Rejected") == []
    assert len(world.announcements("Rollout Started")) == 1
    assert status(world, v2) == "DEPLOYING"


def test_a_promotion_refused_for_a_held_lock_creates_no_sagemaker_model(
    world, sagemaker, lambda_context, first_deployment
):
    v2, v3 = (registered_version(world, lambda_context, n) for n in (2, 3))
    assert promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)["result"] == "started"

    refused = promote.lambda_handler(promotion(v3, CANARY, at=AT), lambda_context)

    assert refused["result"] == "rejected"
    models = sorted(model["ModelName"].rsplit("--", 1)[-1] for model in sagemaker.list_models()["Models"])
    assert models == ["churn-predictor-v1", "churn-predictor-v2"]
