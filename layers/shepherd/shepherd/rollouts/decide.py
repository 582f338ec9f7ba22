"""The decision: one pure function from what is recorded and observed to the next action.

Controllers decide, adapters act. :func:`decide` takes the rollout record, the endpoint as SageMaker
describes it now (None when it does not exist), the gating alarms holding it and "now" (the
triggering event's time), and returns the single next :data:`Action` (actions.py). It does no I/O,
reads no clock and keeps no state, so a crash anywhere is repaired by deciding again from what is
observed (level-triggered, as Kubernetes controllers and Argo Rollouts do). reconcile.py runs it.

Rules:

- Every advance (the first shift, each next step, the retire at the end of the watch) needs no
  gating alarm holding it; a step, the first one too, is requested only once its gate opens (hold.py:
  a judged step's analysis says advance, an operator resumes a manual gate); otherwise
  :class:`Wait` says what holds it (a manual gate's hold is first recorded and announced).
  Catch-ups, completion and aborting are never held.
- ``Creating``/``Updating``/``SystemUpdating``/``RollingBack``: wait. A change this rollout requested
  must take effect within ``update_timeout_seconds`` of ``pending_since``, else the rollout aborts;
  transitions it did not request (autoscaling, maintenance) are waited out without a deadline.
- A requested change that did not take effect, an endpoint ``Failed``/``OutOfService``/``Deleting``/
  ``UpdateRollbackFailed`` or gone, or one changed outside the rollout: abort (restore.py).
- A tick whose ``now`` is before the record's ``updated_at`` is stale: wait. Record times never go
  backwards, and a late tick never shortens a bake.
- A first deployment has a single 100% step and no watch window; it completes once InService.
- A request whose record write was lost *and* that failed looks like a request never made (a stale
  ``FailureReason`` proves nothing): it is made once more, and fails the rollout if it fails again.
"""

from datetime import datetime, timedelta

import msgspec.structs

from shepherd.rollouts import hold
from shepherd.rollouts.actions import (
    Action,
    Complete,
    CreateEndpoint,
    RecordProgress,
    ResizeVariants,
    ShiftTraffic,
    UpdateEndpoint,
    Wait,
    endpoint_config,
    shift,
)
from shepherd.rollouts.candidate_sizing import caught_up, growth, provisioned, shortfall, started, with_counts
from shepherd.rollouts.kept_capacity import as_observed
from shepherd.rollouts.observed import (
    TRANSITIONAL,
    EndpointStatus,
    ObservedEndpoint,
    at_target,
    because,
    describe,
    describe_target,
    serves_live,
)
from shepherd.rollouts.record import (
    Phase,
    Rollout,
    require_aware,
    to_aborting,
    to_ended,
)
from shepherd.rollouts.restore import abort, decide_aborting, finish

# A requested change that has not even started after this long did not take effect. SageMaker marks
# the endpoint Updating before the call returns; the grace only absorbs a lagging DescribeEndpoint.
_SETTLE_SECONDS = 60


def decide(
    rollout: Rollout,
    observed: ObservedEndpoint | None,
    alarms_firing: frozenset[str],
    now: datetime,
) -> Action:
    """The next action for ``rollout``; see the module docstring for the contract."""
    require_aware(now)
    if rollout.phase.is_terminal:
        return Wait(f"rollout is {rollout.phase}")
    if now < rollout.updated_at:
        return Wait(
            f"stale tick: {now.isoformat()} is before the record's last change at {rollout.updated_at.isoformat()}"
        )
    if rollout.phase is Phase.ABORTING:
        action = decide_aborting(rollout, observed, now)
    elif rollout.phase is Phase.PREPARING:
        action = _decide_preparing(rollout, observed, now)
    else:
        action = _decide_forward(rollout, observed, alarms_firing, now)
    if isinstance(action, Wait):
        return action
    return stamped(rollout, action, now)


def stamped(rollout: Rollout, action: Action, now: datetime) -> Action:
    # One place stamps every write, so no branch can forget the revision the service conditions on.
    assert not isinstance(action, Wait)
    update = {"revision": rollout.revision + 1, "updated_at": now, "failing_since": None}
    return msgspec.structs.replace(action, next=action.next.model_copy(update=update))


def _decide_forward(
    rollout: Rollout, observed: ObservedEndpoint | None, alarms: frozenset[str], now: datetime
) -> Action:
    if observed is None:
        return _absent(rollout, now)
    if observed.status in TRANSITIONAL:
        if _overdue(rollout, now):
            return abort(rollout, observed, now, _overdue_reason(rollout, f"{observed.status} to end"))
        return Wait(f"endpoint is {observed.status}")
    if observed.status is not EndpointStatus.IN_SERVICE:
        return abort(rollout, observed, now, f"endpoint is {observed.status}{because(observed)}")
    weights_there = at_target(rollout, observed)
    if weights_there and (rollout.pending_since is None or provisioned(rollout, observed)):
        if rollout.pending_since is not None:
            return _reached(rollout, now, "reached")
        return _start_caught_up(rollout, observed) or _advance(rollout, observed, alarms, now)
    if rollout.pending_since is None:
        return _off_target(rollout, observed, now)
    if now < rollout.pending_since + timedelta(seconds=_SETTLE_SECONDS):
        return Wait(f"waiting for the endpoint to start the change towards {describe_target(rollout)}")
    # The weights are there but not the instances asked for (a resize SageMaker could not provision).
    what = (
        shortfall(rollout, observed)
        if weights_there
        else f"{describe(rollout, observed)}, expected {describe_target(rollout)}"
    )
    return abort(rollout, observed, now, f"the requested change did not take effect: {what}{because(observed)}")


def _decide_preparing(rollout: Rollout, observed: ObservedEndpoint | None, now: datetime) -> Action:
    """Not set up yet: its model may not exist, nor the alarms that would roll it back. Wait for the
    promotion (Lambda retries it); past the deadline it fails without touching the endpoint."""
    if now < rollout.phase_started_at + timedelta(seconds=rollout.update_timeout_seconds):
        return Wait("setting up: the promotion has not yet created the candidate's model and alarms")
    reason = (
        f"set-up did not finish within {rollout.update_timeout_seconds} s of the promotion "
        "(the candidate's SageMaker model and the per-rollout alarms)"
    )
    return abort(rollout, observed, now, reason)


def _absent(rollout: Rollout, now: datetime) -> Action:
    if rollout.is_first_deployment and rollout.phase is Phase.STARTING:
        if _overdue(rollout, now):
            return abort(rollout, None, now, _overdue_reason(rollout, "the endpoint to appear"))
        return _create_endpoint(rollout, now)
    gone = to_aborting(rollout, f"endpoint {rollout.endpoint_name} no longer exists", Phase.FAILED, now)
    return finish(gone, now, None)


def _off_target(rollout: Rollout, observed: ObservedEndpoint, now: datetime) -> Action:
    """InService, not at the record's target, and nothing requested that the record knows of."""
    # A tick that made the next forward change may have died before writing the record: catch up.
    forward = _forward(rollout, observed, now)
    if forward is not None and at_target(forward.next, observed):
        return _reached(forward.next, now, "caught up with the endpoint at")
    if rollout.phase is Phase.STARTING:
        if rollout.is_first_deployment:
            reason = (
                f"endpoint {rollout.endpoint_name} already exists on config {observed.config_name}; "
                "a first deployment creates it"
            )
            return abort(rollout, observed, now, reason)
        # The previous config, or any config still serving the live variant (a restore that gave
        # up, an edit outside Shepherd): the shift config puts all traffic back on the live variant.
        if observed.config_name == rollout.previous_config or serves_live(rollout, observed):
            return _start_update(rollout, observed, now)
    reason = (
        f"endpoint changed outside this rollout: {describe(rollout, observed)}, expected {describe_target(rollout)}"
    )
    return abort(rollout, observed, now, reason)


def _advance(rollout: Rollout, observed: ObservedEndpoint, alarms: frozenset[str], now: datetime) -> Action:
    """The endpoint is at the record's target and nothing is pending: bake, hold or move on."""
    if rollout.phase is Phase.RETIRING or (rollout.phase is Phase.STARTING and rollout.is_first_deployment):
        return _reached(rollout, now, "reached")
    if rollout.phase is Phase.SHIFTING:
        if rollout.step_index == len(rollout.plan) - 1:
            return _reached(rollout, now, "reached")  # repair: 100% is WATCHING
        assert rollout.step_started_at is not None
        until = rollout.step_started_at + timedelta(seconds=rollout.plan[rollout.step_index].bake_seconds)
        if now < until:
            # The live fleet grew during the bake: the candidate's share of the load did too. Never
            # while an alarm fires: a resize keeps the endpoint Updating for minutes, when SageMaker
            # refuses the rollback's weight flip.
            return (not alarms and _resize(rollout, observed, rollout.step_index, now)) or Wait(
                f"baking {rollout.target_percent}% until {until.isoformat()}", until=until
            )
    if rollout.phase in (Phase.STARTING, Phase.SHIFTING):
        # Before every next step (the first one too, the candidate up at weight 0): what, if anything,
        # the step reached waits for once baked, or the next step waits for (hold.py).
        held = hold.gate(rollout, now)
        if held is not None:
            return held
    if rollout.phase is Phase.WATCHING:
        assert rollout.watch_started_at is not None
        until = rollout.watch_started_at + timedelta(seconds=rollout.post_deploy_watch_seconds)
        if now < until:
            return Wait(f"watching at 100% until {until.isoformat()}", until=until)
    if alarms:
        return Wait(f"held at {rollout.target_percent}% by alarms: {', '.join(sorted(alarms))}", alarms=alarms)
    # Capacity first: the next step's weights move only onto instances already running.
    forward = _resize_for_next_step(rollout, observed, now) or _forward(rollout, observed, now)
    assert forward is not None
    return forward


def _forward(rollout: Rollout, observed: ObservedEndpoint, now: datetime) -> ShiftTraffic | UpdateEndpoint | None:
    """The change that moves an update rollout on from its reached target (not yet stamped)."""
    if rollout.is_first_deployment:
        return None
    if rollout.phase in (Phase.STARTING, Phase.SHIFTING) and rollout.step_index < len(rollout.plan) - 1:
        index = rollout.step_index + 1
        moved = rollout.model_copy(
            update={
                "phase": Phase.SHIFTING,
                "phase_started_at": rollout.phase_started_at if rollout.phase is Phase.SHIFTING else now,
                "step_index": index,
                "pending_since": now,
                "step_started_at": None,
            }
        )
        return shift(moved, rollout.current_percent, rollout.plan[index].percent)
    if rollout.phase is Phase.WATCHING:
        # The candidate serves everything: it keeps the fleet it runs, and the record (the baseline it
        # becomes) says the count the final config holds.
        candidate = as_observed(rollout.candidate, observed)
        update = {"phase": Phase.RETIRING, "phase_started_at": now, "pending_since": now, "candidate": candidate}
        retiring = rollout.model_copy(update=update)
        spec = endpoint_config(rollout.final_config, (candidate, 1.0))
        return UpdateEndpoint(rollout.endpoint_name, rollout.final_config, spec, "retire", retiring)
    return None


def _start_caught_up(rollout: Rollout, observed: ObservedEndpoint) -> RecordProgress | None:
    """A sized start whose update landed but whose record write was lost: record what runs first."""
    lost = caught_up(rollout, observed) if rollout.phase is Phase.STARTING else None
    if lost is None:
        return None
    return RecordProgress("caught up with the start: the candidate's instances as they run", lost)


def _resize_for_next_step(rollout: Rollout, observed: ObservedEndpoint, now: datetime) -> ResizeVariants | None:
    if rollout.phase not in (Phase.STARTING, Phase.SHIFTING) or rollout.step_index >= len(rollout.plan) - 1:
        return None
    return _resize(rollout, observed, rollout.step_index + 1, now)


def _resize(rollout: Rollout, observed: ObservedEndpoint, index: int, now: datetime) -> ResizeVariants | None:
    """Grow the candidate (and fresh baseline) for step ``index`` if they are short of its counts;
    reached once they run them (`_reached`)."""
    counts = growth(rollout, observed, index)
    if not counts:
        return None
    pending = with_counts(rollout, counts).model_copy(update={"pending_since": now})
    return ResizeVariants(rollout.endpoint_name, tuple(sorted(counts.items())), rollout.plan[index].percent, pending)


def _reached(rollout: Rollout, now: datetime, how: str) -> RecordProgress | Complete:
    """The record for a target observed reached: bake clock starts, watch starts, or done."""
    if rollout.resizing:  # what was pending is a resize at a step already reached: its bake runs on
        counts = f"{rollout.candidate.initial_instance_count} instance(s)"
        return RecordProgress(f"{how}: candidate sized to {counts}", rollout.model_copy(update={"pending_since": None}))
    if rollout.phase is Phase.RETIRING or (rollout.phase is Phase.STARTING and rollout.is_first_deployment):
        return Complete(to_ended(rollout, Phase.COMPLETED, now, current_percent=100))
    percent = rollout.target_percent
    update: dict[str, object] = {"pending_since": None, "current_percent": percent}
    if rollout.phase is Phase.STARTING:
        return RecordProgress(f"{how}: candidate deployed at weight 0", rollout.model_copy(update=update))
    update["step_started_at"] = now
    note = f"{how} {percent}%"
    if percent == 100:
        update |= {"phase": Phase.WATCHING, "phase_started_at": now, "watch_started_at": now}
        note += f"; watching for {rollout.post_deploy_watch_seconds} s"
    return RecordProgress(note, rollout.model_copy(update=update))


def _create_endpoint(rollout: Rollout, now: datetime) -> CreateEndpoint:
    # Keep the first request time: a retried create must not push the deadline out.
    pending = rollout.model_copy(update={"pending_since": rollout.pending_since or now})
    return CreateEndpoint(
        rollout.endpoint_name, endpoint_config(rollout.final_config, (rollout.candidate, 1.0)), pending
    )


def _start_update(rollout: Rollout, observed: ObservedEndpoint, now: datetime) -> UpdateEndpoint:
    assert rollout.live is not None and rollout.shift_config is not None
    live = as_observed(rollout.live, observed)  # never below the fleet autoscaling gave it
    sized = started(rollout, observed)  # the candidate at the first step's count (candidate_sizing.py)
    fresh = ((sized.fresh_baseline, 0.0),) if sized.fresh_baseline is not None else ()
    spec = endpoint_config(rollout.shift_config, (live, 1.0), (sized.candidate, 0.0), *fresh)
    pending = sized.model_copy(update={"pending_since": now})
    return UpdateEndpoint(rollout.endpoint_name, rollout.shift_config, spec, "start", pending)


def _overdue(rollout: Rollout, now: datetime) -> bool:
    pending = rollout.pending_since
    return pending is not None and now >= pending + timedelta(seconds=rollout.update_timeout_seconds)


def _overdue_reason(rollout: Rollout, waiting_for: str) -> str:
    return (
        f"gave up waiting for {waiting_for}: {rollout.update_timeout_seconds} s after requesting "
        f"{describe_target(rollout)}"
    )
