"""An aborting rollout: put the endpoint back as it was before the rollout, then end it.

Traffic first (candidate to weight 0, one call, seconds), then ``UpdateEndpoint`` to
``previous_config``, and only then the end (``Fail`` or ``FinishRollback``, by ``abort_outcome``).
When autoscaling moved the live fleet away from ``previous_config``'s count, the restore writes
``Rollout.restore_config`` instead (the live variant alone at its observed count: kept_capacity.py),
and the end makes it the endpoint's baseline.
A failed first deployment deletes the endpoint it created, unless it came up InService (it may
already take traffic: kept, and completed as the endpoint's live deployment).
"""

from datetime import datetime, timedelta

from shepherd.rollouts.actions import (
    Action,
    Complete,
    DeleteEndpoint,
    EndpointConfigSpec,
    Fail,
    FinishRollback,
    RecordProgress,
    UpdateEndpoint,
    Wait,
    endpoint_config,
    shift,
)
from shepherd.rollouts.kept_capacity import as_observed, as_restored
from shepherd.rollouts.observed import (
    PERCENT_TOLERANCE,
    TRANSITIONAL,
    EndpointStatus,
    ObservedEndpoint,
    because,
    candidate_percent,
    describe,
)
from shepherd.rollouts.record import (
    LiveDeployment,
    Phase,
    Rollout,
    to_aborting,
    to_ended,
)


def abort(rollout: Rollout, observed: ObservedEndpoint | None, now: datetime, reason: str) -> Action:
    """Fail the rollout: restore the endpoint if needed, in the same decision when possible."""
    aborting = to_aborting(rollout, reason, Phase.FAILED, now)
    action = decide_aborting(aborting, observed, now)
    if isinstance(action, Wait):
        return RecordProgress(f"aborting: {reason}; {action.reason}", aborting)
    return action


def decide_aborting(rollout: Rollout, observed: ObservedEndpoint | None, now: datetime) -> Action:
    """Put the endpoint back as it was before the rollout, then end it."""
    if observed is None:
        problem = None if rollout.is_first_deployment else "nothing to restore: the endpoint no longer exists"
        return finish(rollout, now, problem, current_percent=0)
    deadline = rollout.phase_started_at + timedelta(seconds=rollout.update_timeout_seconds)
    if observed.status in TRANSITIONAL or observed.status is EndpointStatus.DELETING:
        if now >= deadline:
            return finish(
                rollout,
                now,
                f"restoring gave up: endpoint still {observed.status} "
                f"{rollout.update_timeout_seconds} s after the abort",
            )
        return Wait(f"restoring: endpoint is {observed.status}")
    if observed.config_name in (rollout.previous_config, rollout.restore_config):
        if observed.status is EndpointStatus.IN_SERVICE:
            return finish(rollout, now, None, current_percent=0, baseline=restored_baseline(rollout, observed))
        return finish(rollout, now, f"endpoint is {observed.status} on its previous config{because(observed)}")
    ours = rollout.final_config if rollout.is_first_deployment else rollout.shift_config
    if observed.config_name not in (ours, rollout.final_config):
        return finish(
            rollout,
            now,
            f"endpoint is on config {observed.config_name}, which this rollout did not create; left as it is",
        )
    if now >= deadline:
        return finish(
            rollout,
            now,
            f"restoring gave up after {rollout.update_timeout_seconds} s: {describe(rollout, observed)}",
        )
    return _restore(rollout, observed, now)


def _restore(rollout: Rollout, observed: ObservedEndpoint, now: datetime) -> Action:
    """One step back towards the pre-rollout endpoint, which is stable and on a config of ours."""
    pending = rollout.model_copy(update={"pending_since": now})
    if rollout.is_first_deployment:
        if observed.status is EndpointStatus.IN_SERVICE:
            # It came up after all and may already take traffic: left in place, and recorded as what
            # it is, the endpoint's live deployment (so the next promotion updates it).
            kept = rollout.model_copy(
                update={"failure_reason": f"{rollout.failure_reason}; the endpoint came up InService: kept as live"}
            )
            return Complete(to_ended(kept, Phase.COMPLETED, now, current_percent=100))
        # A broken endpoint this rollout created serves nobody; deleting it lets the next
        # promotion create it again.
        return DeleteEndpoint(rollout.endpoint_name, pending)
    if observed.status is not EndpointStatus.IN_SERVICE:
        return finish(rollout, now, f"endpoint is {observed.status}{because(observed)}; could not restore it")
    percent = candidate_percent(rollout, observed)
    if observed.config_name == rollout.shift_config and (percent is None or percent > PERCENT_TOLERANCE):
        # Traffic first: one weight change, seconds; removing the candidate variant comes after.
        return shift(pending, round(percent) if percent is not None else rollout.current_percent, 0)
    config_name, spec = restoring_config(rollout, observed)
    return UpdateEndpoint(rollout.endpoint_name, config_name, spec, "restore", pending)


def restoring_config(rollout: Rollout, observed: ObservedEndpoint) -> tuple[str, EndpointConfigSpec | None]:
    """The config a restore puts the endpoint back on (and its spec, if it must be created): the
    previous config, or the rollout's restore config when that would shrink (or, scaled in, grow) the
    fleet autoscaling runs now. Also the clean-up's, for a restore that ended unfinished (clean_up.py)."""
    assert rollout.previous_config is not None and rollout.live is not None and rollout.restore_config is not None
    live = as_restored(rollout, observed)
    if live.initial_instance_count == rollout.live.initial_instance_count:
        return rollout.previous_config, None
    return rollout.restore_config, endpoint_config(rollout.restore_config, (live, 1.0))


def restored_baseline(rollout: Rollout, observed: ObservedEndpoint) -> LiveDeployment | None:
    """The endpoint's baseline once restored onto ``restore_config`` (None: back on the recorded one)."""
    if observed.config_name != rollout.restore_config or rollout.live is None:
        return None
    assert rollout.previous_model_name is not None and rollout.previous_version is not None
    return LiveDeployment(
        model_name=rollout.previous_model_name,
        version=rollout.previous_version,
        variant=as_observed(rollout.live, observed),
        config_name=observed.config_name,
    )


def finish(
    rollout: Rollout,
    now: datetime,
    problem: str | None,
    *,
    current_percent: int | None = None,
    baseline: LiveDeployment | None = None,
) -> Fail | FinishRollback:
    reason = rollout.failure_reason or "aborted"
    if problem:
        reason = f"{reason}; {problem}"
    outcome = rollout.abort_outcome or Phase.FAILED
    ended = to_ended(rollout.model_copy(update={"failure_reason": reason}), outcome, now, current_percent)
    if outcome is Phase.ROLLED_BACK:
        return FinishRollback(reason, ended, baseline)
    return Fail(reason, ended, baseline)
