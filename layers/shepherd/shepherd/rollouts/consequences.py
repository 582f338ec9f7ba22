"""What a step of a rollout implies and announces, committed together with its record.

The pass (reconcile.py) commits ``action.next`` with these changes in one transaction, conditional on
the old revision: version statuses (``DEPLOYING -> LIVE``, the previous version ``STANDBY`` then
``RETIRED``, a failed candidate ``FAILED``), the lock released and the per-rollout alarms forgotten at
the end, the baseline set on completion, and one audit entry per step; the announcements go to the
outbox in the same commit, so each is published once even if the process dies after it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from shepherd.capacity.prices import PriceTable
from shepherd.contracts import Announcement, ModelVersionRetired, RolloutCompleted, RolloutFailed, RolloutTrafficShifted
from shepherd.registry.model import VersionStatus
from shepherd.rollouts import alarm_gate, hold, naming
from shepherd.rollouts.actions import (
    Action,
    Complete,
    CreateEndpoint,
    DeleteEndpoint,
    Fail,
    FinishRollback,
    RecordProgress,
    ResizeVariants,
    ShiftTraffic,
    UpdateEndpoint,
    Wait,
)
from shepherd.rollouts.cost_tracking import cost_report
from shepherd.rollouts.outbox import announced_ids
from shepherd.rollouts.ports import (
    Change,
    EndpointAuditEntry,
    ForgetAlarms,
    ReleaseLock,
    SaveRollout,
    SetLive,
    StoredRollout,
    endpoint_audit,
    version_move,
)
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout


def consequences(
    stored: StoredRollout,
    action: Action,
    now: datetime,
    event_id: str,
    *,
    namespace: str,
    audit_trail: Callable[[str], list[EndpointAuditEntry]],
    prices: Callable[[], PriceTable],
) -> tuple[list[Change], list[Announcement]]:
    """Everything the step to ``action.next`` implies, committed with it in one transaction (the
    version statuses, the lock, the per-rollout alarms, the audit), and what it announces. The
    announcements of an end carry the cost ledger, priced from ``prices`` (read when one is made)."""
    assert not isinstance(action, Wait)
    before, after = stored.rollout, action.next
    changes: list[Change] = [SaveRollout(after, stored.request, before.revision)]
    announcements: list[Announcement] = []
    ids = announced_ids(after)
    detail = getattr(action, "note", None) or getattr(action, "reason", None) or type(action).__name__
    traffic, reached = _traffic(action), _reached_step(before, after)
    changes.append(
        endpoint_audit(after, _audit_action(action), str(detail), now, event_id, traffic=traffic, reached_step=reached)
    )
    if isinstance(action, ShiftTraffic):
        announcements.append(
            RolloutTrafficShifted(**ids, from_percent=action.from_percent, to_percent=action.to_percent)
        )
    announcements += alarm_gate.announcements(action)  # a hold by missing alarms begins
    announcements += hold.gate_announcements(action)  # a manual gate's hold begins, or is announced again
    reached_full = after.phase is Phase.WATCHING and before.phase is not Phase.WATCHING
    first_done = isinstance(action, Complete) and after.is_first_deployment
    if reached_full or first_done:
        changes.append(version_move(after, after.version, (VersionStatus.DEPLOYING,), VersionStatus.LIVE, stored, now))
        if reached_full and after.previous_version is not None:  # it serves nothing now: standby
            changes.append(
                version_move(after, after.previous_version, (VersionStatus.LIVE,), VersionStatus.STANDBY, stored, now)
            )
        watch_until = now + timedelta(seconds=after.post_deploy_watch_seconds) if reached_full else None
        announcements.append(RolloutCompleted(**ids, watch_until=watch_until, cost=cost_report(after, prices(), now)))
    if after.phase.is_terminal:
        changes += [
            ReleaseLock(after.endpoint_name, after.rollout_id),
            ForgetAlarms(naming.rollout_alarm_names(namespace, after.endpoint_name, after.rollout_id)),
        ]
    if isinstance(action, Complete):
        changes.append(SetLive(after.endpoint_name, _live(after)))
        if after.previous_version is not None and after.previous_model_name is not None:
            previous = after.previous_version
            # STANDBY since the candidate reached 100% (LIVE: a rollout that got there before
            # STANDBY existed, whose audit entry then says STANDBY -> RETIRED all the same).
            standby = (VersionStatus.STANDBY, VersionStatus.LIVE)
            changes.append(version_move(after, previous, standby, VersionStatus.RETIRED, stored, now))
            announcements.append(
                ModelVersionRetired(
                    model_name=after.previous_model_name,
                    version=after.previous_version,
                    endpoint_name=after.endpoint_name,
                    rollout_id=after.rollout_id,
                    cost=cost_report(after, prices(), now),
                )
            )
    elif isinstance(action, Fail):
        # A candidate that reached 100% (its watch window began) is LIVE: the audit names the
        # status it really leaves, as the rollback function's abort does.
        failed_from = (VersionStatus.DEPLOYING, VersionStatus.LIVE)
        if before.watch_started_at is not None:
            failed_from = failed_from[::-1]
        changes.append(version_move(after, after.version, failed_from, VersionStatus.FAILED, stored, now))
        if before.watch_started_at is not None and after.previous_version is not None:
            # The restore put the previous version's traffic back: it serves again (LIVE already:
            # a watch window begun before STANDBY existed).
            standby = (VersionStatus.STANDBY, VersionStatus.LIVE)
            changes.append(version_move(after, after.previous_version, standby, VersionStatus.LIVE, stored, now))
        announcements.append(RolloutFailed(**ids, reason=action.reason, cost=cost_report(after, prices(), now)))
    changes += _restored_baseline(action)
    # FinishRollback: the rollback function already marked the candidate ROLLED_BACK with its abort.
    from shepherd.rollouts.flip import rollback_consequences

    owed, announced = rollback_consequences(before, action, audit_trail, now, event_id, prices)
    return changes + owed, announcements + announced


def _restored_baseline(action: Action) -> list[Change]:
    """A restore onto its own config at the fleet's observed count (restore.py): the baseline now."""
    if isinstance(action, (Fail, FinishRollback)) and action.baseline is not None:
        return [SetLive(action.next.endpoint_name, action.baseline)]
    return []


def _live(rollout: Rollout) -> LiveDeployment:
    return LiveDeployment(
        model_name=rollout.model_name,
        version=rollout.version,
        variant=rollout.candidate,
        config_name=rollout.final_config,
    )


def _traffic(action: Action) -> tuple[int, int] | None:
    """The candidate's percent before and after, for the actions that ask for weights: a shift, and a
    first deployment's new endpoint (its only variant takes all the traffic)."""
    if isinstance(action, ShiftTraffic):
        return action.from_percent, action.to_percent
    if isinstance(action, CreateEndpoint):
        return 0, 100
    return None


def _reached_step(before: Rollout, after: Rollout) -> int | None:
    """The step this transition saw reached: the one whose bake clock it started."""
    started = after.step_started_at is not None and after.step_started_at != before.step_started_at
    return after.step_index if started and after.step_index >= 0 else None


def _audit_action(action: Action) -> str:
    if isinstance(action, ShiftTraffic):
        return f"traffic {action.from_percent}% -> {action.to_percent}%"
    if isinstance(action, UpdateEndpoint):
        return f"update endpoint ({action.purpose})"
    if isinstance(action, ResizeVariants):
        sizes = ", ".join(f"{variant} to {count}" for variant, count in action.counts)
        return f"resize for {action.percent}%: {sizes}"
    if isinstance(action, alarm_gate.GateChanged):
        return alarm_gate.audit_action(action)
    if isinstance(action, hold.GateNews):
        return hold.gate_audit_action(action)
    if isinstance(action, RecordProgress) and action.next.phase is Phase.ABORTING:
        # Its own name: it may follow a "progress" in the same tick, and audit keys hold the action.
        return "aborting"
    return {
        CreateEndpoint: "create endpoint",
        DeleteEndpoint: "delete endpoint",
        RecordProgress: "progress",
        Complete: "completed",
        Fail: "failed",
        FinishRollback: "rolled back",
    }[type(action)]
