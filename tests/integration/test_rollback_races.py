"""Rollback against a busy endpoint and against a controller tick running at the same time, on moto.

A rollback reports `rolled_back` only for a flip SageMaker accepted; an endpoint still Updating is
waited for (bounded), then left to the controller, which flips as soon as it is InService. A tick
that read the rollout record before a rollback never leaves the candidate with more traffic.

The interleavings are made by wrapping one of Shepherd's own adapter methods so that the rollback
function runs at an exact point inside a tick: moto serves requests one at a time and cannot pause
one call while another runs. Everything else is the handlers on the emulator.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from shepherd import bootstrap
from shepherd.adapters.cloudwatch import CloudWatchAlarms
from shepherd.adapters.sagemaker import SageMakerEndpoints
from shepherd.kernel.errors import TransientError
from shepherd_cli.local import emulator
from tests.handlers import conftest as handler_fixtures
from tests.handlers.lifecycle import ENDPOINT, settled_weights, status, tick, weights
from tests.integration import test_fault_injection as faulted
from tests.integration.test_fault_injection import AT, V1, V2, alarm, finish, shifted

lambda_context = handler_fixtures.lambda_context
sagemaker = handler_fixtures.sagemaker
first_deployment = handler_fixtures.first_deployment
faults = faulted.faults
candidate_joined = faulted.candidate_joined
canary_at_10 = faulted.canary_at_10

rollback = faulted.rollback
STEP_DUE = AT + timedelta(minutes=8)  # the 10% step (reached at AT+2m) has baked its 300 s: next is 100%


@pytest.fixture
def baked(world, sagemaker, lambda_context, canary_at_10) -> int:
    """v2 at 10% since AT+2m; a tick at STEP_DUE moves it to 100%."""
    tick(lambda_context, AT + timedelta(minutes=2))
    world.announcements()
    world.seen.clear()
    return canary_at_10


def outcome(response: dict[str, Any]) -> dict[str, Any]:
    [result] = response["results"]
    return dict(result)


def rolled_back_once(world) -> dict[str, Any]:
    assert world.announcements("Rollout Failed") == []
    [announced] = world.announcements("Rollout Rolled Back")
    return announced


# --- fix 2: a flip refused because the endpoint is updating -----------------------------------------


def test_a_flip_refused_while_a_step_is_in_flight_waits_for_the_endpoint_then_flips(
    world, sagemaker, lambda_context, faults, baked
):
    emulator.configure(settle_after_describes=3)  # the step to 100% stays Updating for 3 describes
    tick(lambda_context, STEP_DUE)
    slept: list[float] = []
    bootstrap.rollback_service().sleep = slept.append
    flips = faults("sagemaker", "UpdateEndpointWeightsAndCapacities", times=0)  # counts, injects nothing

    result = outcome(rollback.lambda_handler(alarm(world, at=STEP_DUE), lambda_context))

    # Refused once (in progress), re-described until InService, then the flip SageMaker accepted.
    assert flips.attempts == 2
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}  # by the rollback itself: no tick since
    assert result["result"] == "rolled_back" and result["seconds_to_flip"] is not None
    assert 0 < sum(slept) <= 30
    assert rolled_back_once(world)["seconds_to_flip"] == result["seconds_to_flip"]
    assert status(world, baked) == "ROLLED_BACK"


def test_an_endpoint_updating_longer_than_the_wait_is_flipped_by_the_controller_once_in_service(
    world, sagemaker, lambda_context, baked
):
    emulator.configure(settle_after_describes=1000)  # the step to 100% outlasts the rollback's wait
    tick(lambda_context, STEP_DUE)

    result = outcome(rollback.lambda_handler(alarm(world, at=STEP_DUE), lambda_context))

    # Nothing flipped, so nothing claims it: the abort is recorded for the controller.
    assert (result["result"], result["seconds_to_flip"]) == ("flip_pending", None)
    assert world.announcements("Rollout Rolled Back") == []
    assert bootstrap.rollout_store().incidents(ENDPOINT) == []
    assert status(world, baked) == "ROLLED_BACK"

    emulator.reset()  # the step lands: the candidate is at 100% now
    assert weights(sagemaker) == {V1: 0.0, V2: 1.0}
    tick(lambda_context, STEP_DUE + timedelta(minutes=1))  # the first pass that sees it InService flips

    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    announced = rolled_back_once(world)
    assert announced["seconds_to_flip"] is not None and announced["seconds_to_flip"] >= 0
    [incident] = bootstrap.rollout_store().incidents(ENDPOINT)
    assert incident.flipped_at is not None and incident.seconds_to_flip == announced["seconds_to_flip"]
    assert incident.weights_before == {V1: 0.0, V2: 1.0}  # the step it had asked for
    assert finish(lambda_context, sagemaker, range(10, 14)) == {V1: 1.0}
    assert status(world, baked) == "ROLLED_BACK" and status(world, 1) == "LIVE"


# --- fix 3: a tick that read the record before the rollback -------------------------------------------


def rollback_once(world, lambda_context, sagemaker, ran: list[str]) -> Callable[[], None]:
    """Run the rollback function (its flip settled) the first time it is called."""
    event = alarm(world, at=STEP_DUE - timedelta(seconds=30))

    def run() -> None:
        if not ran:
            ran.append(outcome(rollback.lambda_handler(copy.deepcopy(event), lambda_context))["result"])
            settled_weights(sagemaker)  # the flip has landed before the tick goes on

    return run


def test_a_tick_that_read_the_record_before_a_rollback_does_not_move_the_candidate_up(
    world, sagemaker, lambda_context, baked, monkeypatch
):
    ran: list[str] = []
    run_rollback = rollback_once(world, lambda_context, sagemaker, ran)
    read_alarms = CloudWatchAlarms.alarm_states

    def alarms_then_rollback(self: CloudWatchAlarms, names: tuple[str, ...]) -> dict[str, str]:
        states = read_alarms(self, names)  # the tick's last read: it has the record, the endpoint, no alarm
        run_rollback()
        return states

    monkeypatch.setattr(CloudWatchAlarms, "alarm_states", alarms_then_rollback)

    tick(lambda_context, STEP_DUE)  # decides 10% -> 100% from the record it read before the rollback

    assert ran == ["rolled_back"]
    assert settled_weights(sagemaker).get(V2, 0.0) == 0.0
    assert (10, 100) not in shifted(world)
    monkeypatch.undo()
    assert finish(lambda_context, sagemaker, range(9, 13)) == {V1: 1.0}
    assert status(world, baked) == "ROLLED_BACK"
    rolled_back_once(world)


def test_a_tick_whose_step_landed_after_a_rollback_flips_back_at_once(
    world, sagemaker, lambda_context, baked, monkeypatch
):
    ran: list[str] = []
    run_rollback = rollback_once(world, lambda_context, sagemaker, ran)
    set_weights = SageMakerEndpoints.set_weights

    def rollback_then_step(self: SageMakerEndpoints, endpoint_name: str, desired: dict[str, float]) -> None:
        if desired.get(V2) == 1.0:  # the tick's step to 100%, already decided and checked: too late to stop
            run_rollback()
        set_weights(self, endpoint_name, desired)

    monkeypatch.setattr(SageMakerEndpoints, "set_weights", rollback_then_step)
    bootstrap.rollout_service().sleep = lambda seconds: None  # its wait for the endpoint to settle

    tick(lambda_context, STEP_DUE)

    assert ran == ["rolled_back"]
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}  # flipped back by the same tick
    monkeypatch.undo()
    assert finish(lambda_context, sagemaker, range(9, 13)) == {V1: 1.0}
    assert status(world, baked) == "ROLLED_BACK"
    rolled_back_once(world)


# --- a rollback whose flip landed, but a tick recorded it first -------------------------------------------


def test_a_rollback_whose_flip_a_tick_records_first_reports_it_rolled_back_with_one_latency_metric(
    world, sagemaker, lambda_context, baked, monkeypatch, capsys
):
    # The rollback's flip lands; before the rollback writes it down, a controller pass sees the candidate
    # out and records the flip (incident, announcement) first: the rollback's own write loses the race.
    set_weights = SageMakerEndpoints.set_weights
    ticks: list[dict[str, Any]] = []

    def flip_then_tick(self: SageMakerEndpoints, endpoint_name: str, desired: dict[str, float]) -> None:
        set_weights(self, endpoint_name, desired)
        if desired.get(V2) == 0.0 and not ticks:  # the rollback's flip, accepted by SageMaker
            settled_weights(sagemaker)
            ticks.append(tick(lambda_context, AT + timedelta(minutes=3)))

    monkeypatch.setattr(SageMakerEndpoints, "set_weights", flip_then_tick)
    capsys.readouterr()

    result = outcome(rollback.lambda_handler(alarm(world, at=AT + timedelta(minutes=2)), lambda_context))

    assert ticks and ticks[0]["errors"] == 0
    # The invocation whose flip made the change says so, with the latency of its own flip...
    assert result["result"] == "rolled_back"
    assert result["seconds_to_flip"] is not None and result["seconds_to_flip"] >= 0
    # ...and the RollbackLatency metric is emitted once (the controller never emits it).
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"RollbackLatency"' in line]
    assert [metrics["RollbackLatency"] for metrics in emitted] == [[result["seconds_to_flip"]]]
    # One rollback on record: one incident, one announcement (the tick's).
    [incident] = bootstrap.rollout_store().incidents(ENDPOINT)
    assert rolled_back_once(world)["seconds_to_flip"] == incident.seconds_to_flip
    monkeypatch.undo()
    assert finish(lambda_context, sagemaker, range(4, 8)) == {V1: 1.0}
    assert status(world, baked) == "ROLLED_BACK"


def test_two_deliveries_of_one_alarm_that_both_flip_report_one_rollback_and_one_latency_metric(
    world, sagemaker, lambda_context, baked, monkeypatch, capsys
):
    # EventBridge delivers the same alarm event twice at once: both invocations ask for the flip, and the
    # second writes it down first. Only the controller's record leaves a flipping invocation
    # `rolled_back`; another invocation's record makes this one the duplicate it is.
    set_weights = SageMakerEndpoints.set_weights
    event = alarm(world, at=AT + timedelta(minutes=2))
    inner: list[dict[str, Any]] = []

    def flip_then_redeliver(self: SageMakerEndpoints, endpoint_name: str, desired: dict[str, float]) -> None:
        set_weights(self, endpoint_name, desired)
        if desired.get(V2) == 0.0 and not inner:  # the first delivery's flip, accepted by SageMaker
            inner.append({})
            inner[0] = outcome(rollback.lambda_handler(copy.deepcopy(event), lambda_context))

    monkeypatch.setattr(SageMakerEndpoints, "set_weights", flip_then_redeliver)
    capsys.readouterr()

    first = outcome(rollback.lambda_handler(copy.deepcopy(event), lambda_context))

    assert sorted([first["result"], inner[0]["result"]]) == ["duplicate", "rolled_back"]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"RollbackLatency"' in line]
    assert len(emitted) == 1
    assert len(bootstrap.rollout_store().incidents(ENDPOINT)) == 1


def test_a_retry_that_only_sees_the_flip_a_tick_recorded_is_a_duplicate(
    world, sagemaker, lambda_context, faults, baked
):
    # The first delivery flipped and died before its write; a tick recorded the flip; Lambda's retry
    # changes nothing (it only looks): a duplicate, with no second latency.
    event = alarm(world, at=AT + timedelta(minutes=2))
    flip = faults("sagemaker", "UpdateEndpointWeightsAndCapacities", times=0)
    record = faults("dynamodb", "TransactWriteItems", kind="5xx", times=1000, armed=lambda: flip.passed > 0)
    with pytest.raises(TransientError):
        rollback.lambda_handler(copy.deepcopy(event), lambda_context)
    record.times = 0
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    tick(lambda_context, AT + timedelta(minutes=3))  # sees the candidate out: records the flip
    assert len(bootstrap.rollout_store().incidents(ENDPOINT)) == 1

    retried = outcome(rollback.lambda_handler(copy.deepcopy(event), lambda_context))

    assert (retried["result"], retried["seconds_to_flip"]) == ("duplicate", None)
    rolled_back_once(world)
