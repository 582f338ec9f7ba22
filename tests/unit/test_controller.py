"""The rollout controller: every phase and rule, then whole rollouts simulated over a fake endpoint.

The simulation loops decide -> apply the action to an in-memory endpoint -> write the record ->
advance a clock, with duplicated ticks, crashes between the endpoint call and the record write,
slow or failing endpoint updates and firing alarms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shepherd.rollouts import naming
from shepherd.rollouts.actions import (
    Action,
    Complete,
    CreateEndpoint,
    DeleteEndpoint,
    Fail,
    FinishRollback,
    RecordProgress,
    ShiftTraffic,
    UpdateEndpoint,
    Wait,
)
from shepherd.rollouts.decide import decide
from shepherd.rollouts.failures import failing_too_long, recovered, refused, still_failing
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint, ObservedVariant
from shepherd.rollouts.record import (
    DEFAULT_UPDATE_TIMEOUT_SECONDS,
    InvalidTransition,
    LiveDeployment,
    Phase,
    Rollout,
    VariantSpec,
    new_rollout,
    request_abort,
)
from shepherd.rollouts.strategy import MAX_BAKE_SECONDS, Strategy, TrafficStep, parse_strategy

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ENDPOINT = "fraud-endpoint"
RID = naming.rollout_id("6a7e8f2b-1c2d-4e5f-8a9b-0c1d2e3f4a5b", T0)
SHIFT = naming.endpoint_config_name(ENDPOINT, RID, "shift")
FINAL = naming.endpoint_config_name(ENDPOINT, RID, "final")
PREVIOUS = "fraud-endpoint-previous"
CANDIDATE = VariantSpec.for_version("fraud", 2, instance_type="ml.m5.large", initial_instance_count=2)
LIVE = VariantSpec.for_version("fraud", 1, instance_type="ml.m5.large", initial_instance_count=3)
NONE: frozenset[str] = frozenset()
IN_SERVICE = EndpointStatus.IN_SERVICE
UPDATING = EndpointStatus.UPDATING

LINEAR_20 = {"type": "linear", "step_percent": 20, "interval_seconds": 300}
CANARY_10 = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 900}


def unjudged(strategy: dict[str, Any]) -> Strategy:
    """The strategy with the canary judge off unless it says otherwise: these tests are about the
    steps and alarms; the judge's part of the decision is tested in test_controller_analysis.py."""
    analysis = strategy.get("analysis", {})
    return parse_strategy({**strategy, "analysis": {"judge": {"enabled": False}, **analysis}})


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def rollout(strategy: dict[str, Any] | None = None, *, first: bool = False, **changes: Any) -> Rollout:
    """A STARTING record (or, with changes, any phase), validated like one read from the table."""
    record = new_rollout(
        rollout_id=RID,
        endpoint_name=ENDPOINT,
        model_name="fraud",
        version=2,
        strategy=unjudged(strategy or CANARY_10),
        candidate=CANDIDATE,
        live=None if first else LiveDeployment(model_name="fraud", version=1, variant=LIVE, config_name=PREVIOUS),
        now=T0,
        gating_alarms=("fraud-accuracy",),
    )
    return Rollout.model_validate({**record.model_dump(), **changes})


def at(percent: float, *, config: str = SHIFT, status: EndpointStatus = IN_SERVICE, reason: str | None = None):
    """The endpoint on the shift config with the candidate at ``percent``."""
    variants = (
        ObservedVariant(LIVE.variant_name, (100 - percent) / 100),
        ObservedVariant(CANDIDATE.variant_name, percent / 100),
    )
    return ObservedEndpoint(status, config, variants, reason)


def on_previous(status: EndpointStatus = IN_SERVICE, reason: str | None = None) -> ObservedEndpoint:
    return ObservedEndpoint(status, PREVIOUS, (ObservedVariant(LIVE.variant_name, 1.0),), reason)


def on_final(status: EndpointStatus = IN_SERVICE, reason: str | None = None) -> ObservedEndpoint:
    return ObservedEndpoint(status, FINAL, (ObservedVariant(CANDIDATE.variant_name, 1.0),), reason)


def shifting(step: int, *, reached: datetime | None = T0, pending: datetime | None = None, **more: Any) -> Rollout:
    record = rollout(**more.pop("base", {}))
    percent = record.plan[step].percent
    fields = {"phase": Phase.SHIFTING, "step_index": step, "step_started_at": reached, "pending_since": pending}
    if pending is None:
        fields["current_percent"] = percent
    elif step > 0:
        fields["current_percent"] = record.plan[step - 1].percent
    return Rollout.model_validate({**record.model_dump(), **fields, **more})


def watching(since: datetime = T0, **more: Any) -> Rollout:
    record = rollout(**more.pop("base", {}))
    last = len(record.plan) - 1
    fields = {
        "phase": Phase.WATCHING,
        "step_index": last,
        "current_percent": 100,
        "step_started_at": since,
        "watch_started_at": since,
    }
    return Rollout.model_validate({**record.model_dump(), **fields, **more})


def retiring(pending: datetime = T0, **more: Any) -> Rollout:
    return watching(**more).model_copy(update={"phase": Phase.RETIRING, "pending_since": pending})


def aborting(outcome: Phase = Phase.FAILED, **more: Any) -> Rollout:
    base = shifting(0, **more)
    return Rollout.model_validate(
        {**base.model_dump(), "phase": Phase.ABORTING, "abort_outcome": outcome, "failure_reason": "boom"}
    )


def written(action: Action) -> Rollout:
    """The record the service would write, checked the way the table would read it back."""
    assert not isinstance(action, Wait)
    record = action.next
    assert Rollout.model_validate_json(record.model_dump_json()) == record
    return record


# --- STARTING: an update of a live endpoint --------------------------------------------------


def test_starting_asks_for_the_shift_config_with_the_candidate_at_weight_0() -> None:
    action = decide(rollout(), on_previous(), NONE, T0)

    assert isinstance(action, UpdateEndpoint)
    assert (action.endpoint_name, action.config_name, action.purpose) == (ENDPOINT, SHIFT, "start")
    assert action.create_config is not None
    assert [(v.variant.variant_name, v.initial_weight) for v in action.create_config.variants] == [
        (LIVE.variant_name, 1.0),
        (CANDIDATE.variant_name, 0.0),
    ]
    record = written(action)
    assert (record.phase, record.pending_since, record.revision, record.updated_at) == (Phase.STARTING, T0, 1, T0)


def test_starting_waits_while_the_endpoint_updates() -> None:
    action = decide(rollout(pending_since=T0), at(0, status=UPDATING), NONE, T0 + s(120))

    assert action == Wait("endpoint is Updating")


def test_starting_records_the_candidate_deployed_once_in_service() -> None:
    action = decide(rollout(pending_since=T0), at(0), NONE, T0 + s(600))

    assert isinstance(action, RecordProgress)
    record = written(action)
    assert (record.phase, record.pending_since, record.current_percent) == (Phase.STARTING, None, 0)


def test_starting_shifts_to_the_first_step_when_deployed() -> None:
    action = decide(rollout(), at(0), NONE, T0 + s(600))

    assert isinstance(action, ShiftTraffic)
    assert (action.candidate_variant, action.candidate_weight) == (CANDIDATE.variant_name, 0.1)
    assert (action.live_variant, action.live_weight) == (LIVE.variant_name, 0.9)
    assert (action.from_percent, action.to_percent) == (0, 10)
    record = written(action)
    assert (record.phase, record.step_index, record.pending_since, record.step_started_at) == (
        Phase.SHIFTING,
        0,
        T0 + s(600),
        None,
    )


def test_the_first_shift_is_held_by_a_firing_alarm() -> None:
    alarms = frozenset({"fraud-accuracy", "fraud-5xx"})

    action = decide(rollout(), at(0), alarms, T0 + s(600))

    assert action == Wait("held at 0% by alarms: fraud-5xx, fraud-accuracy", alarms=alarms)


def test_a_failed_start_fails_the_rollout_with_sagemakers_reason() -> None:
    # SageMaker rolled the failed update back: InService on the old config, FailureReason set.
    observed = on_previous(reason="image not found")

    action = decide(rollout(pending_since=T0), observed, NONE, T0 + s(900))

    assert isinstance(action, Fail)
    assert "did not take effect" in action.reason and "image not found" in action.reason
    record = written(action)
    assert (record.phase, record.ended_at, record.current_percent) == (Phase.FAILED, T0 + s(900), 0)


def test_a_lagging_describe_right_after_the_request_is_not_a_failure() -> None:
    action = decide(rollout(pending_since=T0), on_previous(), NONE, T0 + s(5))

    assert isinstance(action, Wait)


def test_starting_gives_up_after_the_update_deadline() -> None:
    late = T0 + s(DEFAULT_UPDATE_TIMEOUT_SECONDS)

    action = decide(rollout(pending_since=T0), on_previous(UPDATING), NONE, late)

    # Cannot touch an updating endpoint: record the abort and keep restoring on later ticks.
    assert isinstance(action, RecordProgress)
    record = written(action)
    assert (record.phase, record.abort_outcome) == (Phase.ABORTING, Phase.FAILED)
    assert record.failure_reason is not None and "gave up waiting for Updating to end" in record.failure_reason


def test_an_unrequested_transition_has_no_deadline() -> None:
    # Autoscaling or maintenance: not ours to time out.
    action = decide(rollout(), on_previous(EndpointStatus.SYSTEM_UPDATING), NONE, T0 + s(86_400))

    assert action == Wait("endpoint is SystemUpdating")


@pytest.mark.parametrize(
    ("observed", "fragment"),
    [
        (None, "no longer exists"),
        (ObservedEndpoint(IN_SERVICE, "someone-elses-config"), "changed outside this rollout"),
        (on_previous(EndpointStatus.FAILED, "capacity"), "endpoint is Failed (FailureReason: capacity)"),
        (on_previous(EndpointStatus.OUT_OF_SERVICE), "endpoint is OutOfService"),
    ],
)
def test_starting_fails_on_a_broken_or_foreign_endpoint(observed: ObservedEndpoint | None, fragment: str) -> None:
    action = decide(rollout(), observed, NONE, T0)

    assert isinstance(action, Fail)
    assert fragment in action.reason
    assert written(action).phase is Phase.FAILED


# --- STARTING: a first deployment -------------------------------------------------------------


def test_a_first_deployment_plans_100_percent_and_no_watch_window() -> None:
    record = rollout(LINEAR_20, first=True)

    assert record.plan == (TrafficStep(percent=100),)
    assert record.post_deploy_watch_seconds == 0
    assert (record.shift_config, record.previous_config, record.previous_version) == (None, None, None)


def test_a_first_deployment_creates_the_endpoint_with_the_candidate_alone() -> None:
    action = decide(rollout(first=True), None, NONE, T0)

    assert isinstance(action, CreateEndpoint)
    assert action.config.name == FINAL
    assert [(v.variant, v.initial_weight) for v in action.config.variants] == [(CANDIDATE, 1.0)]
    assert written(action).pending_since == T0


def test_a_retried_create_keeps_the_first_request_time() -> None:
    action = decide(rollout(first=True, pending_since=T0), None, NONE, T0 + s(60))

    assert isinstance(action, CreateEndpoint)
    assert written(action).pending_since == T0


def test_a_first_deployment_completes_once_in_service_without_alarm_gates() -> None:
    action = decide(rollout(first=True, pending_since=T0), on_final(), frozenset({"x"}), T0 + s(600))

    assert isinstance(action, Complete)
    record = written(action)
    assert (record.phase, record.current_percent, record.ended_at) == (Phase.COMPLETED, 100, T0 + s(600))


def test_a_first_deployment_waits_while_creating() -> None:
    action = decide(rollout(first=True, pending_since=T0), on_final(EndpointStatus.CREATING), NONE, T0 + s(60))

    assert action == Wait("endpoint is Creating")


def test_a_failed_first_deployment_deletes_its_own_endpoint_then_fails() -> None:
    failed = on_final(EndpointStatus.FAILED, "bad model")

    deleting = decide(rollout(first=True, pending_since=T0), failed, NONE, T0 + s(600))
    assert isinstance(deleting, DeleteEndpoint)
    record = written(deleting)
    assert record.phase is Phase.ABORTING

    gone = decide(record, None, NONE, T0 + s(660))
    assert isinstance(gone, Fail)
    assert gone.reason == "endpoint is Failed (FailureReason: bad model)"


def test_a_first_deployment_that_came_up_after_giving_up_is_kept_and_recorded_as_live() -> None:
    # Before: it ended FAILED with the endpoint serving it, so the next promotion was refused
    # ("exists but was not deployed by Shepherd"). It is what it is: the endpoint's live deployment.
    record = rollout(first=True, pending_since=T0)
    late = T0 + s(DEFAULT_UPDATE_TIMEOUT_SECONDS)

    gave_up = decide(record, on_final(EndpointStatus.CREATING), NONE, late)
    assert isinstance(gave_up, RecordProgress)
    ended = decide(written(gave_up), on_final(), NONE, late + s(60))

    assert isinstance(ended, Complete)
    assert (written(ended).phase, written(ended).current_percent) == (Phase.COMPLETED, 100)
    assert written(ended).failure_reason.endswith("the endpoint came up InService: kept as live")


def test_a_first_deployment_cannot_be_rolled_back_but_can_be_aborted() -> None:
    record = rollout(first=True, pending_since=T0)

    with pytest.raises(InvalidTransition, match="nothing to roll back to"):
        request_abort(record, reason="alarm", now=T0)
    assert request_abort(record, reason="operator", now=T0, outcome=Phase.FAILED).phase is Phase.ABORTING


def test_a_first_deployment_onto_an_existing_endpoint_leaves_it_alone() -> None:
    action = decide(rollout(first=True), ObservedEndpoint(IN_SERVICE, "hand-made"), NONE, T0)

    assert isinstance(action, Fail)
    assert "already exists on config hand-made" in action.reason
    assert "left as it is" in action.reason


def test_a_first_deployment_whose_endpoint_never_appears_fails() -> None:
    action = decide(rollout(first=True, pending_since=T0), None, NONE, T0 + s(DEFAULT_UPDATE_TIMEOUT_SECONDS))

    assert isinstance(action, Fail)
    assert "gave up waiting for the endpoint to appear" in action.reason


# --- SageMaker refusing a call for good, or failing for too long ---------------------------------


def test_a_refused_call_starts_the_abort_with_sagemakers_reason() -> None:
    action = refused(shifting(0), T0 + s(60), "ResourceLimitExceeded: quota")

    assert isinstance(action, RecordProgress)
    record = written(action)
    assert (record.phase, record.abort_outcome) == (Phase.ABORTING, Phase.FAILED)
    assert record.failure_reason == "ResourceLimitExceeded: quota"
    assert record.revision == shifting(0).revision + 1
    # The restore is the next decision: traffic back to the live variant first.
    restore = decide(record, at(10), NONE, T0 + s(61))
    assert isinstance(restore, ShiftTraffic) and restore.to_percent == 0


def test_a_refused_restore_ends_the_rollout_with_both_reasons() -> None:
    action = refused(aborting(), T0 + s(60), "AccessDeniedException: no")

    assert isinstance(action, Fail)
    assert action.reason == "boom; could not restore the endpoint: AccessDeniedException: no"
    assert written(action).phase is Phase.FAILED


def test_retryable_failures_time_out_from_the_first_one() -> None:
    first = still_failing(shifting(0, reached=None, pending=T0), T0 + s(60))
    again = still_failing(first, T0 + s(120))

    assert first.failing_since == again.failing_since == T0 + s(60)
    assert again.revision == first.revision + 1 and again.updated_at == T0 + s(120)
    assert not failing_too_long(again, T0 + s(60 + DEFAULT_UPDATE_TIMEOUT_SECONDS - 1))
    assert failing_too_long(again, T0 + s(60 + DEFAULT_UPDATE_TIMEOUT_SECONDS))
    # Any action that goes through clears it, and so does a pass that only waits.
    assert written(decide(again, at(10), NONE, T0 + s(180))).failing_since is None
    assert recovered(again, T0 + s(180)).failing_since is None


def test_starting_from_a_config_that_still_serves_the_live_variant_restarts_cleanly() -> None:
    # A restore that gave up left the endpoint on an older rollout's shift config: the next
    # promotion starts from there instead of failing as "changed outside" forever.
    leftover = at(10, config="fraud-endpoint-older-shift")

    action = decide(rollout(), leftover, NONE, T0)

    assert isinstance(action, UpdateEndpoint) and action.config_name == SHIFT
    assert {(w.variant.variant_name, w.initial_weight) for w in action.create_config.variants} == {
        (LIVE.variant_name, 1.0),
        (CANDIDATE.variant_name, 0.0),
    }


# --- SHIFTING ---------------------------------------------------------------------------------


def test_a_requested_step_starts_its_bake_when_observed() -> None:
    action = decide(shifting(0, reached=None, pending=T0), at(10), NONE, T0 + s(90))

    assert isinstance(action, RecordProgress)
    record = written(action)
    assert (record.pending_since, record.step_started_at, record.current_percent) == (None, T0 + s(90), 10)


def test_a_step_bakes_until_its_time() -> None:
    action = decide(shifting(0), at(10), NONE, T0 + s(599))

    assert action == Wait(f"baking 10% until {(T0 + s(600)).isoformat()}", until=T0 + s(600))


def test_a_bake_is_over_at_exactly_its_end() -> None:
    action = decide(shifting(0), at(10), NONE, T0 + s(600))

    assert isinstance(action, ShiftTraffic)
    assert (action.from_percent, action.to_percent, action.candidate_weight, action.live_weight) == (10, 100, 1.0, 0.0)
    assert written(action).step_index == 1


def test_an_advance_is_held_while_an_alarm_fires_and_resumes_after() -> None:
    held = decide(shifting(0), at(10), frozenset({"fraud-accuracy"}), T0 + s(700))
    resumed = decide(shifting(0), at(10), NONE, T0 + s(760))

    assert held == Wait("held at 10% by alarms: fraud-accuracy", alarms=frozenset({"fraud-accuracy"}))
    assert isinstance(resumed, ShiftTraffic)


def test_alarms_do_not_hold_a_bake_that_is_not_over() -> None:
    action = decide(shifting(0), at(10), frozenset({"a"}), T0 + s(10))

    assert isinstance(action, Wait) and action.alarms == frozenset()


@pytest.mark.parametrize(("percent", "weights"), [(30, (0.3, 0.7)), (70, (0.7, 0.3)), (1, (0.01, 0.99))])
def test_weights_are_exact_fractions(percent: int, weights: tuple[float, float]) -> None:
    base = {"type": "steps", "steps": [{"percent": percent}, {"percent": 100}]}

    action = decide(rollout(base), at(0), NONE, T0)

    assert isinstance(action, ShiftTraffic)
    assert (action.candidate_weight, action.live_weight) == weights


def test_reaching_100_percent_starts_the_watch() -> None:
    action = decide(shifting(1, reached=None, pending=T0), at(100), NONE, T0 + s(60))

    assert isinstance(action, RecordProgress)
    record = written(action)
    assert (record.phase, record.watch_started_at, record.current_percent) == (Phase.WATCHING, T0 + s(60), 100)


def test_a_shift_applied_but_not_recorded_is_caught_up_without_a_second_shift() -> None:
    # The tick shifted to 100% and died before writing: the record still says "10%, baked".
    action = decide(shifting(0), at(100), NONE, T0 + s(660))

    assert isinstance(action, RecordProgress)
    assert action.note.startswith("caught up")
    record = written(action)
    assert (record.phase, record.step_index, record.current_percent) == (Phase.WATCHING, 1, 100)


def test_a_failed_shift_reverts_the_candidate_to_0() -> None:
    # Asked for 40%, SageMaker is back at 20% with a failure: abort and put the live variant back.
    record = shifting(1, reached=None, pending=T0, base={"strategy": LINEAR_20})

    action = decide(record, at(20, reason="throttled"), NONE, T0 + s(300))

    assert isinstance(action, ShiftTraffic)
    assert (action.from_percent, action.to_percent, action.candidate_weight, action.live_weight) == (20, 0, 0.0, 1.0)
    aborted = written(action)
    assert aborted.phase is Phase.ABORTING
    assert aborted.failure_reason is not None and "throttled" in aborted.failure_reason


def test_a_shift_stuck_past_the_deadline_aborts() -> None:
    record = shifting(1, reached=None, pending=T0)

    action = decide(record, at(10, status=UPDATING), NONE, T0 + s(DEFAULT_UPDATE_TIMEOUT_SECONDS))

    assert isinstance(action, RecordProgress)
    assert written(action).phase is Phase.ABORTING


def test_weights_changed_outside_the_rollout_abort_it() -> None:
    action = decide(shifting(0), at(50), NONE, T0 + s(30))

    assert isinstance(action, ShiftTraffic) and action.to_percent == 0
    aborted = written(action)
    assert aborted.failure_reason is not None
    assert "changed outside this rollout" in aborted.failure_reason


def test_unreadable_weights_are_reverted() -> None:
    both_zero = ObservedEndpoint(
        IN_SERVICE, SHIFT, (ObservedVariant(LIVE.variant_name, 0.0), ObservedVariant(CANDIDATE.variant_name, 0.0))
    )

    action = decide(shifting(0), both_zero, NONE, T0 + s(30))

    assert isinstance(action, ShiftTraffic)
    assert (action.from_percent, action.to_percent, action.live_weight) == (10, 0, 1.0)


def test_a_manual_revert_to_the_previous_config_fails_the_rollout() -> None:
    action = decide(shifting(0), on_previous(), NONE, T0 + s(30))

    assert isinstance(action, Fail)
    assert written(action).current_percent == 0


@pytest.mark.parametrize(
    ("record", "observed", "kind", "phase"),
    [
        # Records no decision writes, but a hand-edited table might hold: repaired, not crashed on.
        (shifting(1), at(100), RecordProgress, Phase.WATCHING),
        (retiring().model_copy(update={"pending_since": None}), on_final(), Complete, Phase.COMPLETED),
    ],
)
def test_odd_but_valid_records_are_repaired(
    record: Rollout, observed: ObservedEndpoint, kind: type, phase: Phase
) -> None:
    action = decide(record, observed, NONE, T0 + s(60))

    assert isinstance(action, kind)
    assert written(action).phase is phase


# --- WATCHING and RETIRING --------------------------------------------------------------------


def test_the_watch_window_holds_the_previous_variant() -> None:
    action = decide(watching(), at(100), NONE, T0 + s(899))

    assert action == Wait(f"watching at 100% until {(T0 + s(900)).isoformat()}", until=T0 + s(900))


def test_after_the_watch_the_old_variant_is_retired() -> None:
    action = decide(watching(), at(100), NONE, T0 + s(900))

    assert isinstance(action, UpdateEndpoint)
    assert (action.config_name, action.purpose) == (FINAL, "retire")
    assert action.create_config is not None
    assert [(v.variant, v.initial_weight) for v in action.create_config.variants] == [(CANDIDATE, 1.0)]
    record = written(action)
    assert (record.phase, record.pending_since) == (Phase.RETIRING, T0 + s(900))


def test_the_retire_is_held_by_a_firing_alarm() -> None:
    action = decide(watching(), at(100), frozenset({"fraud-5xx"}), T0 + s(900))

    assert isinstance(action, Wait) and action.alarms == frozenset({"fraud-5xx"})


def test_no_watch_window_retires_at_once() -> None:
    record = watching(base={"strategy": {**CANARY_10, "post_deploy_watch_seconds": 0}})

    assert isinstance(decide(record, at(100), NONE, T0), UpdateEndpoint)


def test_retiring_completes_once_only_the_candidate_serves() -> None:
    waiting = decide(retiring(), on_final(UPDATING), NONE, T0 + s(60))
    done = decide(retiring(), on_final(), NONE, T0 + s(600))

    assert waiting == Wait("endpoint is Updating")
    assert isinstance(done, Complete)
    record = written(done)
    assert (record.phase, record.ended_at, record.pending_since) == (Phase.COMPLETED, T0 + s(600), None)


def test_a_retire_applied_but_not_recorded_completes_on_the_next_tick() -> None:
    action = decide(watching(), on_final(), NONE, T0 + s(1000))

    assert isinstance(action, Complete)


def test_a_failed_retire_reverts_to_the_live_variant() -> None:
    action = decide(retiring(), at(100, reason="no capacity"), NONE, T0 + s(600))

    assert isinstance(action, ShiftTraffic)
    assert (action.from_percent, action.to_percent) == (100, 0)
    assert written(action).phase is Phase.ABORTING


# --- ABORTING ---------------------------------------------------------------------------------


def test_aborting_moves_traffic_back_first() -> None:
    action = decide(aborting(), at(10), frozenset({"ignored"}), T0 + s(60))

    assert isinstance(action, ShiftTraffic)
    assert (action.candidate_weight, action.live_weight, action.to_percent) == (0.0, 1.0, 0)
    assert written(action).phase is Phase.ABORTING


def test_aborting_then_restores_the_previous_config() -> None:
    action = decide(aborting(), at(0), NONE, T0 + s(60))

    assert isinstance(action, UpdateEndpoint)
    assert (action.config_name, action.create_config, action.purpose) == (PREVIOUS, None, "restore")


def test_aborting_also_restores_from_the_final_config() -> None:
    action = decide(aborting(), on_final(), NONE, T0 + s(60))

    assert isinstance(action, UpdateEndpoint) and action.config_name == PREVIOUS


@pytest.mark.parametrize(("outcome", "kind"), [(Phase.FAILED, Fail), (Phase.ROLLED_BACK, FinishRollback)])
def test_aborting_ends_once_the_endpoint_is_as_before(outcome: Phase, kind: type) -> None:
    action = decide(aborting(outcome), on_previous(), NONE, T0 + s(600))

    assert isinstance(action, kind)
    record = written(action)
    assert (record.phase, record.abort_outcome, record.current_percent) == (outcome, None, 0)
    assert record.failure_reason == "boom"


def test_aborting_waits_for_an_update_then_gives_up_at_its_deadline() -> None:
    record = aborting(phase_started_at=T0)

    waiting = decide(record, at(10, status=UPDATING), NONE, T0 + s(60))
    given_up = decide(record, at(10, status=UPDATING), NONE, T0 + s(DEFAULT_UPDATE_TIMEOUT_SECONDS))

    assert waiting == Wait("restoring: endpoint is Updating")
    assert isinstance(given_up, Fail)
    assert given_up.reason.startswith("boom; restoring gave up")


def test_aborting_stops_acting_at_its_deadline() -> None:
    record = aborting(phase_started_at=T0)

    action = decide(record, at(10), NONE, T0 + s(DEFAULT_UPDATE_TIMEOUT_SECONDS))

    assert isinstance(action, Fail)
    assert action.reason.startswith("boom; restoring gave up after 3600 s: InService on config")


@pytest.mark.parametrize(
    ("observed", "fragment"),
    [
        (None, "nothing to restore"),
        (ObservedEndpoint(IN_SERVICE, "other"), "did not create; left as it is"),
        (at(10, status=EndpointStatus.FAILED), "could not restore"),
        (on_previous(EndpointStatus.FAILED), "Failed on its previous config"),
    ],
)
def test_aborting_ends_when_nothing_more_can_be_done(observed: ObservedEndpoint | None, fragment: str) -> None:
    action = decide(aborting(), observed, NONE, T0 + s(60))

    assert isinstance(action, Fail)
    assert fragment in action.reason


def test_a_rollback_request_is_written_before_the_endpoint_is_touched() -> None:
    record = shifting(0)

    requested = request_abort(record, reason="alarm fraud-5xx", now=T0 + s(30))

    assert (requested.phase, requested.abort_outcome, requested.revision) == (Phase.ABORTING, Phase.ROLLED_BACK, 1)
    assert requested.failure_reason == "alarm fraud-5xx"
    assert request_abort(requested, reason="again", now=T0 + s(40)) is requested
    reverted = decide(requested, at(10), NONE, T0 + s(30))
    assert isinstance(reverted, ShiftTraffic) and reverted.to_percent == 0
    finished = decide(written(reverted), on_previous(), NONE, T0 + s(600))
    assert isinstance(finished, FinishRollback)


def test_a_rollback_request_never_moves_the_record_clock_back() -> None:
    record = shifting(0, updated_at=T0 + s(100))

    assert request_abort(record, reason="late", now=T0).updated_at == T0 + s(100)


def test_a_finished_rollout_cannot_be_aborted() -> None:
    done = written(decide(retiring(), on_final(), NONE, T0 + s(60)))

    with pytest.raises(InvalidTransition):
        request_abort(done, reason="too late", now=T0 + s(120))
    with pytest.raises(ValueError):
        request_abort(shifting(0), reason="x", now=T0, outcome=Phase.COMPLETED)


# --- rules for every phase --------------------------------------------------------------------


@pytest.mark.parametrize("phase", [Phase.COMPLETED, Phase.FAILED, Phase.ROLLED_BACK])
def test_terminal_rollouts_do_nothing(phase: Phase) -> None:
    record = rollout(phase=phase, ended_at=T0)

    assert decide(record, None, NONE, T0 + s(60)) == Wait(f"rollout is {phase}")


def test_a_tick_older_than_the_record_is_stale() -> None:
    record = shifting(0, updated_at=T0 + s(600))

    action = decide(record, at(10), NONE, T0 + s(599))

    assert isinstance(action, Wait) and action.reason.startswith("stale tick")


def test_deciding_twice_on_the_same_state_gives_the_same_action() -> None:
    record, observed = shifting(0), at(10)

    assert decide(record, observed, NONE, T0 + s(600)) == decide(record, observed, NONE, T0 + s(600))


def test_after_an_action_is_recorded_deciding_again_waits() -> None:
    shift = decide(shifting(0), at(10), NONE, T0 + s(600))

    again = decide(written(shift), at(10, status=UPDATING), NONE, T0 + s(600))

    assert again == Wait("endpoint is Updating")


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(rollout(), on_previous(), NONE, datetime(2025, 3, 1))


# --- records ----------------------------------------------------------------------------------


def test_new_rollout_names_its_configs_and_keeps_the_live_facts() -> None:
    record = rollout(LINEAR_20)

    assert (record.shift_config, record.final_config, record.previous_config) == (SHIFT, FINAL, PREVIOUS)
    assert (record.previous_model_name, record.previous_version, record.live) == ("fraud", 1, LIVE)
    assert [step.percent for step in record.plan] == [20, 40, 60, 80, 100]
    assert (record.phase, record.step_index, record.revision, record.gating_alarms) == (
        Phase.STARTING,
        -1,
        0,
        ("fraud-accuracy",),
    )


def test_new_rollout_refuses_to_roll_out_the_live_variant() -> None:
    with pytest.raises(ValueError, match="already live"):
        new_rollout(
            rollout_id=RID,
            endpoint_name=ENDPOINT,
            model_name="fraud",
            version=1,
            strategy=unjudged(CANARY_10),
            candidate=LIVE,
            live=LiveDeployment(model_name="fraud", version=1, variant=LIVE, config_name=PREVIOUS),
            now=T0,
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"shift_config": None},
        {"live": None},
        {"step_index": 2},
        {"plan": ({"percent": 50}, {"percent": 40}, {"percent": 100})},
        {"plan": ({"percent": 50},)},
        {"phase": Phase.ABORTING},
        {"abort_outcome": Phase.FAILED},
        {"phase": Phase.SHIFTING, "step_index": 0},
        {"phase": Phase.WATCHING},
        {"phase": Phase.COMPLETED},
        {"started_at": datetime(2025, 1, 1)},
        {"unknown": 1},
    ],
)
def test_inconsistent_records_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        rollout(**changes)


def test_a_record_survives_a_json_round_trip() -> None:
    record = shifting(0, base={"strategy": LINEAR_20})

    assert Rollout.model_validate_json(record.model_dump_json()) == record


# --- simulation -------------------------------------------------------------------------------


@dataclass
class FakeEndpoint:
    """SageMaker, in memory: changes take ``delay`` ticks; listed changes fail and roll back."""

    status: EndpointStatus | None = None
    config: str = ""
    weights: dict[str, float] = field(default_factory=dict)
    configs: dict[str, dict[str, float]] = field(default_factory=dict)
    delay: int = 0
    failing: frozenset[int] = frozenset()
    failure_reason: str | None = None
    calls: list[Action] = field(default_factory=list)
    _busy: int = 0
    _landing: tuple[EndpointStatus, str, dict[str, float]] | None = None

    @classmethod
    def live(cls, **kwargs: Any) -> FakeEndpoint:
        weights = {LIVE.variant_name: 1.0}
        return cls(status=IN_SERVICE, config=PREVIOUS, weights=weights, configs={PREVIOUS: weights}, **kwargs)

    def observe(self) -> ObservedEndpoint | None:
        if self.status is None:
            return None
        variants = tuple(ObservedVariant(name, weight) for name, weight in self.weights.items())
        return ObservedEndpoint(self.status, self.config, variants, self.failure_reason)

    def apply(self, action: Action) -> None:
        if isinstance(action, CreateEndpoint):
            assert self.status is None, "CreateEndpoint on an existing endpoint"
            self.configs.setdefault(action.config.name, _weights(action.config))
            self._change(action, EndpointStatus.CREATING, action.config.name, self.configs[action.config.name])
        elif isinstance(action, UpdateEndpoint):
            assert self.status is IN_SERVICE, f"UpdateEndpoint while {self.status}"
            if action.create_config is not None:
                self.configs.setdefault(action.config_name, _weights(action.create_config))
            self._change(action, UPDATING, action.config_name, self.configs[action.config_name])
        elif isinstance(action, ShiftTraffic):
            assert self.status is IN_SERVICE, f"UpdateEndpointWeightsAndCapacities while {self.status}"
            weights = action.weights()  # one call sets every variant's weight (a fresh baseline's too)
            assert set(self.weights) == set(weights)
            self._change(action, UPDATING, self.config, weights)
        elif isinstance(action, DeleteEndpoint):
            self.calls.append(action)
            self.status = None

    def _change(self, action: Action, busy: EndpointStatus, config: str, weights: dict[str, float]) -> None:
        fails = len(self.calls) in self.failing
        self.calls.append(action)
        if fails and busy is EndpointStatus.CREATING:
            landing = (EndpointStatus.FAILED, config, dict(weights))
        elif fails:
            landing = (IN_SERVICE, self.config, dict(self.weights))  # rolled back by SageMaker
        else:
            landing = (IN_SERVICE, config, dict(weights))
        self.failure_reason = "injected failure" if fails else None
        if self.delay == 0 and not fails:
            self.status, self.config, self.weights = landing
        else:
            self.status, self._busy, self._landing = busy, max(self.delay, 1), landing

    def tick(self) -> None:
        if self._landing is not None:
            self._busy -= 1
            if self._busy == 0:
                self.status, self.config, self.weights = self._landing
                self._landing = None

    def candidate_weight(self) -> float | None:
        return self.weights.get(CANDIDATE.variant_name) if self.status is IN_SERVICE else None


def _weights(config: Any) -> dict[str, float]:
    return {v.variant.variant_name: v.initial_weight for v in config.variants}


@dataclass
class Run:
    record: Rollout
    endpoint: FakeEndpoint
    weights_seen: list[float]
    actions: list[Action]


def simulate(
    record: Rollout,
    endpoint: FakeEndpoint,
    *,
    duplicate: bool = False,
    crashes: frozenset[int] | Callable[[Action], bool] = frozenset(),
    alarms: frozenset[int] = frozenset(),
    max_ticks: int = 3000,
) -> Run:
    """Tick until the rollout ends; ``alarms`` and ``crashes`` are tick numbers (or crash on a test)."""
    now = record.updated_at
    weights_seen: list[float] = []
    actions: list[Action] = []
    for tick in range(max_ticks):
        firing = frozenset({"gate"}) if tick in alarms else NONE
        until = None
        for _attempt in range(2 if duplicate else 1):
            observed = endpoint.observe()
            _see(weights_seen, endpoint)
            action = decide(record, observed, firing, now)
            assert decide(record, observed, firing, now) == action, "decide is not a function of its inputs"
            _check_rules(record, action, firing, now)
            actions.append(action)
            until = action.until if isinstance(action, Wait) else None
            if isinstance(action, Wait):
                continue
            endpoint.apply(action)
            if action_crashes(crashes, tick, action):
                continue  # the endpoint changed, the record write is lost
            assert action.next.revision == record.revision + 1
            record = Rollout.model_validate_json(action.next.model_dump_json())
        _see(weights_seen, endpoint)
        if record.phase.is_terminal:
            return Run(record, endpoint, weights_seen, actions)
        endpoint.tick()
        # A scheduler ticks every minute; skip the idle minutes of a long bake.
        now = max(now + s(60), until) if until is not None else now + s(60)
    raise AssertionError(f"rollout did not end: {record.phase}")


def action_crashes(crashes: frozenset[int] | Callable[[Action], bool], tick: int, action: Action) -> bool:
    return crashes(action) if callable(crashes) else tick in crashes


def _see(weights_seen: list[float], endpoint: FakeEndpoint) -> None:
    """Note the candidate's weight whenever it differs from the last one seen InService."""
    weight = endpoint.candidate_weight()
    if weight is not None and (not weights_seen or weights_seen[-1] != weight):
        weights_seen.append(weight)


def _check_rules(record: Rollout, action: Action, firing: frozenset[str], now: datetime) -> None:
    """What must hold for every single decision."""
    forward = isinstance(action, ShiftTraffic) and action.to_percent > 0
    retire = isinstance(action, UpdateEndpoint) and action.purpose == "retire"
    if forward or retire:
        assert not firing, "advanced while an alarm fired"
    if forward and record.phase is Phase.SHIFTING and record.step_started_at is not None:
        bake = record.plan[record.step_index].bake_seconds
        assert now >= record.step_started_at + s(bake), "advanced before the bake ended"
    if retire and record.watch_started_at is not None:
        assert now >= record.watch_started_at + s(record.post_deploy_watch_seconds), "retired during the watch"


def endpoint_calls(run: Run) -> list[tuple[str, object]]:
    calls: list[tuple[str, object]] = []
    for call in run.endpoint.calls:
        if isinstance(call, ShiftTraffic):
            calls.append(("shift", call.candidate_weight))
        elif isinstance(call, UpdateEndpoint):
            calls.append((call.purpose, call.config_name))
        else:
            calls.append((type(call).__name__, None))
    return calls


def expected_calls(record: Rollout) -> list[tuple[str, object]]:
    return [
        ("start", SHIFT),
        *[("shift", step.percent / 100) for step in record.plan],
        ("retire", FINAL),
    ]


def test_a_linear_20_rollout_shows_each_weight_once_in_order() -> None:
    record = rollout(LINEAR_20)

    run = simulate(record, FakeEndpoint.live(delay=2), duplicate=True)

    assert run.record.phase is Phase.COMPLETED
    assert run.weights_seen == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert endpoint_calls(run) == expected_calls(record)
    assert (run.endpoint.config, run.endpoint.weights) == (FINAL, {CANDIDATE.variant_name: 1.0})


def test_a_canary_rollout_on_an_instant_endpoint() -> None:
    # moto's endpoint is InService at once: the first pass after the deploy lands at 10%.
    run = simulate(rollout(CANARY_10), FakeEndpoint.live())

    assert run.weights_seen == [0.0, 0.1, 1.0]
    assert run.record.phase is Phase.COMPLETED
    assert run.record.ended_at is not None
    # 600 s of bake and 900 s of watch at least.
    assert run.record.ended_at - run.record.started_at >= s(1500)


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_a_crash_after_each_endpoint_change_costs_no_second_change(delay: int) -> None:
    record = rollout(LINEAR_20)
    crashed: set[Action] = set()

    def first_attempt_of_each_change(action: Action) -> bool:
        # Every endpoint change is made, then its record write is lost, once.
        if isinstance(action, ShiftTraffic | UpdateEndpoint) and action not in crashed:
            crashed.add(action)
            return True
        return False

    run = simulate(record, FakeEndpoint.live(delay=delay), crashes=first_attempt_of_each_change)

    assert run.record.phase is Phase.COMPLETED
    assert endpoint_calls(run) == expected_calls(record)
    assert run.weights_seen == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    caught_up = [a.note for a in run.actions if isinstance(a, RecordProgress) and a.note.startswith("caught up")]
    assert caught_up == [
        *[f"caught up with the endpoint at {p}%" for p in (20, 40, 60, 80)],
        "caught up with the endpoint at 100%; watching for 900 s",
    ]


def test_a_first_deployment_end_to_end() -> None:
    run = simulate(rollout(LINEAR_20, first=True), FakeEndpoint(delay=3), duplicate=True)

    assert run.record.phase is Phase.COMPLETED
    assert endpoint_calls(run) == [("CreateEndpoint", None)]
    assert run.weights_seen == [1.0]


def test_a_failed_first_deployment_leaves_no_endpoint() -> None:
    run = simulate(rollout(CANARY_10, first=True), FakeEndpoint(delay=2, failing=frozenset({0})))

    assert run.record.phase is Phase.FAILED
    assert run.endpoint.status is None


# --- properties -------------------------------------------------------------------------------

bakes = st.one_of(st.integers(min_value=0, max_value=3600), st.just(MAX_BAKE_SECONDS))


@st.composite
def strategies(draw: st.DrawFn) -> dict[str, Any]:
    common = {"post_deploy_watch_seconds": draw(bakes)}
    kind = draw(st.sampled_from(["canary", "linear", "steps", "all_at_once"]))
    if kind == "canary":
        return {"type": kind, "canary_percent": draw(st.integers(1, 99)), "bake_seconds": draw(bakes), **common}
    if kind == "linear":
        step = draw(st.integers(5, 100))
        return {"type": kind, "step_percent": step, "interval_seconds": draw(bakes), **common}
    if kind == "steps":
        below = sorted(draw(st.sets(st.integers(1, 99), max_size=6)))
        steps = [{"percent": p, "bake_seconds": draw(bakes)} for p in below]
        return {"type": kind, "steps": [*steps, {"percent": 100}], **common}
    return {"type": kind, **common}


ticks = st.frozensets(st.integers(min_value=0, max_value=400), max_size=60)


@settings(max_examples=150, deadline=None)
@given(strategies(), st.integers(min_value=0, max_value=3), st.booleans(), ticks)
def test_every_rollout_shows_exactly_its_plan(
    raw: dict[str, Any], delay: int, duplicate: bool, alarm_ticks: frozenset[int]
) -> None:
    record = rollout(raw)

    run = simulate(record, FakeEndpoint.live(delay=delay), duplicate=duplicate, alarms=alarm_ticks)

    assert run.record.phase is Phase.COMPLETED
    assert run.weights_seen == [0.0, *[step.percent / 100 for step in record.plan]]
    assert endpoint_calls(run) == expected_calls(record)


@settings(max_examples=150, deadline=None)
@given(strategies(), st.integers(min_value=0, max_value=3), st.booleans(), ticks)
def test_crashes_between_the_endpoint_call_and_the_write_are_repaired(
    raw: dict[str, Any], delay: int, duplicate: bool, crash_ticks: frozenset[int]
) -> None:
    record = rollout(raw)

    run = simulate(record, FakeEndpoint.live(delay=delay), duplicate=duplicate, crashes=crash_ticks)

    assert run.record.phase is Phase.COMPLETED
    assert endpoint_calls(run) == expected_calls(record)  # no change made twice, none skipped


@settings(max_examples=150, deadline=None)
@given(strategies(), st.integers(min_value=0, max_value=3), st.data())
def test_a_failed_change_always_ends_with_the_endpoint_as_before(
    raw: dict[str, Any], delay: int, data: st.DataObject
) -> None:
    record = rollout(raw)
    forward_changes = len(expected_calls(record))
    failing = data.draw(st.integers(min_value=0, max_value=forward_changes - 1), label="failing change")
    endpoint = FakeEndpoint.live(delay=delay, failing=frozenset({failing}))

    run = simulate(record, endpoint, crashes=data.draw(ticks, label="crashes"))

    calls = endpoint_calls(run)
    if run.record.phase is Phase.COMPLETED:
        # A crash lost the record of the failed request: the record never knew it was made, so
        # the controller made it again (once), and the retry went through.
        assert calls[failing] == calls[failing + 1]
        assert calls[: failing + 1] + calls[failing + 2 :] == expected_calls(record)
        return
    assert run.record.phase is Phase.FAILED
    # (A crash can lose the first abort's record, and with it SageMaker's FailureReason: a later
    # tick still fails the rollout, on what it sees then.)
    assert run.record.failure_reason
    assert (run.endpoint.status, run.endpoint.config) == (IN_SERVICE, PREVIOUS)
    assert run.endpoint.weights == {LIVE.variant_name: 1.0}
    # Nothing moved forward after the failure.
    after = run.endpoint.calls[failing + 1 :]
    assert not [c for c in after if isinstance(c, ShiftTraffic) and c.to_percent > 0]
    assert not [c for c in after if isinstance(c, UpdateEndpoint) and c.purpose != "restore"]


def test_a_failed_change_without_crashes_always_fails() -> None:
    record = rollout(LINEAR_20)

    for failing in range(len(expected_calls(record))):
        for delay in (0, 2):
            run = simulate(record, FakeEndpoint.live(delay=delay, failing=frozenset({failing})), duplicate=True)

            assert run.record.phase is Phase.FAILED
            assert run.record.failure_reason is not None and "injected failure" in run.record.failure_reason
            assert (run.endpoint.config, run.endpoint.weights) == (PREVIOUS, {LIVE.variant_name: 1.0})


@settings(max_examples=100, deadline=None)
@given(strategies(), st.integers(min_value=0, max_value=2), st.integers(min_value=0, max_value=60), st.booleans())
def test_a_rollback_at_any_moment_restores_the_live_variant(
    raw: dict[str, Any], delay: int, at_tick: int, duplicate: bool
) -> None:
    record = rollout(raw)
    endpoint = FakeEndpoint.live(delay=delay)
    first = simulate_until(record, endpoint, at_tick)
    if first.phase.is_terminal:
        return  # finished before the rollback came
    requested = request_abort(first, reason="alarm", now=first.updated_at)

    run = simulate(requested, endpoint, duplicate=duplicate)

    assert run.record.phase is Phase.ROLLED_BACK
    assert (run.endpoint.status, run.endpoint.config, run.endpoint.weights) == (
        IN_SERVICE,
        PREVIOUS,
        {LIVE.variant_name: 1.0},
    )


def simulate_until(record: Rollout, endpoint: FakeEndpoint, ticks_to_run: int) -> Rollout:
    now = record.updated_at
    for _ in range(ticks_to_run):
        action = decide(record, endpoint.observe(), NONE, now)
        if not isinstance(action, Wait):
            endpoint.apply(action)
            record = action.next
        if record.phase.is_terminal:
            break
        endpoint.tick()
        now += s(60)
    return record


@given(strategies(), st.sampled_from([*EndpointStatus, None]), st.integers(0, 100), st.integers(-1, 10))
def test_decide_never_raises_and_every_write_is_a_valid_record(
    raw: dict[str, Any], status: EndpointStatus | None, percent: int, step: int
) -> None:
    record = rollout(raw)
    step = min(step, len(record.plan) - 1)
    if step >= 0:
        record = Rollout.model_validate(
            {**record.model_dump(), "phase": Phase.SHIFTING, "step_index": step, "step_started_at": T0}
        )
    observed = None if status is None else at(percent, status=status)

    action = decide(record, observed, NONE, T0 + s(3600))

    if not isinstance(action, Wait):
        assert written(action).revision == record.revision + 1


def test_strategy_type_is_usable_in_records() -> None:
    # The requested strategy is stored as given; the plan is the effective one.
    strategy: Strategy = unjudged(LINEAR_20)
    record = rollout(LINEAR_20, first=True)

    assert record.strategy == strategy


def test_actions_are_immutable_values() -> None:
    # Actions compare by type and value (a Fail is never equal to a FinishRollback with the same
    # fields), hash, and cannot be changed once decided.
    record = rollout(LINEAR_20, first=True)

    assert Wait("x") == Wait("x")
    assert hash(Wait("x")) == hash(Wait("x"))
    assert Fail("r", next=record) != FinishRollback("r", next=record)
    with pytest.raises(AttributeError):
        Wait("x").reason = "y"  # type: ignore[misc]
