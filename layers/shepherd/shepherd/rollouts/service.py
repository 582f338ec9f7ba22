"""The controller: move every active rollout forward (promotion.py starts them).

The controller's decisions are the pure `controller.decide`; this module observes (DescribeEndpoint,
alarm states), carries each action out, and commits the next record together with the version
statuses, the lock and the audit trail it implies, then announces. Act first, then write: a crash
in between is repaired on the next tick, which sees the endpoint already changed. Each rollout's pass
is isolated from the others' failures; SageMaker refusing a call for good fails that rollout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import msgspec
from msgspec import Struct

from shepherd.contracts import (
    Announcement,
    ModelVersionRetired,
    RolloutCompleted,
    RolloutFailed,
    RolloutTrafficShifted,
)
from shepherd.kernel.clock import Clock, received_time
from shepherd.kernel.errors import TransientError
from shepherd.kernel.publisher import EventPublisher
from shepherd.registry.model import VersionStatus
from shepherd.rollouts import alarm_gate, naming
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
from shepherd.rollouts.canary import CanaryJudge
from shepherd.rollouts.concurrent_passes import FAILED, Pass, run_passes
from shepherd.rollouts.decide import decide
from shepherd.rollouts.errors import EndpointRequestRefused, EndpointStillUpdating
from shepherd.rollouts.failures import failing_too_long, recovered, refused, still_failing
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint
from shepherd.rollouts.outbox import announced_ids, deliver_or_keep, flush, outbox, publish_owed
from shepherd.rollouts.ports import (
    AlarmControl,
    Change,
    ChangeRejected,
    EndpointControl,
    ForgetAlarms,
    ReleaseLock,
    RolloutStore,
    SaveRollout,
    SetLive,
    StoredRollout,
    endpoint_audit,
    version_move,
)
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout

logger = logging.getLogger(__name__)

# Decisions per rollout per tick: enough to record a reached step and request the next one
# without waiting a scheduler minute, bounded so one rollout cannot starve the others.
MAX_DECISIONS_PER_TICK = 6


class TickReport(Struct, frozen=True):
    """What one controller pass did to each rollout."""

    results: dict[str, str]  # rollout id -> what its pass did last ("error" when it failed)
    errors: int  # rollouts whose pass failed (logged); the next tick tries them again


class _RecordMoved(Exception):
    """Before a forward change the record was found written by someone else (a rollback's abort)."""

    def __init__(self, fresh: StoredRollout) -> None:
        super().__init__(fresh.rollout.rollout_id)
        self.fresh = fresh


class RolloutService(Struct):
    """Moves every active rollout forward (the controller); promotion.py starts them."""

    rollouts: RolloutStore
    endpoints: EndpointControl
    alarms: AlarmControl
    events: EventPublisher
    clock: Clock
    namespace: str  # the stack's: its per-rollout alarms' prefix (naming.rollout_alarm_names)
    canary: CanaryJudge  # judges a judged rollout's baking step at the start of its pass (canary.py)
    sleep: Callable[[float], None] = time.sleep  # waiting for a busy endpoint to flip back
    concurrency: int = 1  # endpoints served at once in a tick (CONTROLLER_CONCURRENCY in Lambda)
    unpublished: int = 0  # this tick's publishes that failed (kept in the outbox): counted with its errors
    counting: threading.Lock = msgspec.field(default_factory=threading.Lock)  # guards `unpublished`

    def tick(self, now: datetime, event_id: str) -> TickReport:
        """One controller pass over every active rollout, each isolated from the others' failures.

        Endpoints are served `concurrency` at a time, each one's passes in order (concurrent_passes.py).
        """
        now = received_time(now, self.clock())
        errors = 0
        with self.counting:
            self.unpublished = 0
        # Announcements a finished rollout still owes first (its endpoint may never be ticked again),
        # then every active rollout, then the clean-up finished rollouts still need.
        try:
            owed = self.rollouts.endpoints_owed_announcements()
        except Exception:  # the outbox never stops a decision: each active rollout's pass publishes its own
            logger.exception("could not list the outbox; the next tick tries again")
            owed, errors = [], 1
        passes = [
            Pass(f"outbox {endpoint}", endpoint, partial(self.flush_announcements, endpoint)) for endpoint in owed
        ]
        passes += [
            Pass(s.rollout.rollout_id, s.rollout.endpoint_name, partial(self._reconcile, s, now, event_id))
            for s in self.rollouts.active_rollouts()
        ]
        passes += [
            Pass(f"clean-up {s.rollout.rollout_id}", s.rollout.endpoint_name, partial(self._clean_up, s.rollout))
            for s in self.rollouts.rollouts_to_clean_up()
        ]
        outcomes = run_passes(passes, self.concurrency)
        results = {
            name: outcome
            for name, outcome in outcomes
            if not name.startswith(("outbox ", "clean-up ")) or outcome == FAILED
        }
        return TickReport(results, errors + sum(outcome == FAILED for _name, outcome in outcomes) + self.unpublished)

    def flush(self, endpoint_name: str) -> None:
        """Publish what earlier commits on this endpoint still owe (a publish that failed after them)."""
        flush(self.rollouts, self.events, endpoint_name)

    def flush_announcements(self, endpoint_name: str) -> str:
        self.flush(endpoint_name)
        return "published"

    def _reconcile(self, stored: StoredRollout, now: datetime, event_id: str) -> str:
        """One rollout's pass; whatever fails in it is timed on the record (`_failed`) and raised."""
        try:
            return self._pass(stored, now, event_id)
        except Exception as failure:  # any failure, at any call of the pass: see _failed
            self._failed(stored, now, event_id, failure)
            raise

    def _pass(self, stored: StoredRollout, now: datetime, event_id: str) -> str:
        # What earlier commits owe is published when it can be; a failure keeps it in the outbox (the
        # tick's outbox pass counts it) and never keeps the rollout from its decision.
        self._published(publish_owed(self.rollouts, self.events, stored.rollout.endpoint_name))
        outcome = "waiting"
        if stored.rollout.judged:
            stored, judged = self.canary.judge(stored, now, event_id)
            outcome = judged or outcome
        for _ in range(MAX_DECISIONS_PER_TICK):
            rollout = stored.rollout
            try:
                action = self._next_action(stored, now)
            except _RecordMoved as moved:
                stored, outcome = moved.fresh, "raced"
                continue
            if action is None:
                return "raced"
            if isinstance(action, Wait):
                logger.info("rollout waits", extra={"rollout_id": rollout.rollout_id, "reason": action.reason})
                if rollout.failing_since is not None:  # this pass failed nothing: the failure clock stops
                    self._save_quietly(stored, recovered(rollout, now))
                return outcome
            changes, announcements = self._consequences(stored, action, now, event_id)
            owed = outbox(action.next, *announcements)
            changes.append(owed)
            try:
                self.rollouts.commit(changes)
            except ChangeRejected:
                # Another writer (a rollback, a concurrent tick) changed the record since it was read:
                # decide again from the fresh record, which undoes anything this action got wrong.
                logger.info("lost a race for the rollout record", extra={"rollout_id": rollout.rollout_id})
                fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
                if fresh is None:
                    return "raced"
                self._undo_lost_step(action, fresh.rollout)
                stored = fresh
                outcome = "raced"
                continue
            self._published(deliver_or_keep(self.rollouts, self.events, owed))
            outcome = type(action).__name__
            stored = StoredRollout(action.next, stored.request)
            if action.next.phase.is_terminal:
                self._clean_up(action.next)
                return outcome
        return outcome

    # --- acting on a rollout ----------------------------------------------------------------------

    def _next_action(self, stored: StoredRollout, now: datetime) -> Action | None:
        """The action taken (its SageMaker calls made); None when another writer is changing the endpoint."""
        rollout = stored.rollout
        try:
            return self._decide_and_act(rollout, now)
        except EndpointStillUpdating as busy:
            # SageMaker refused because the endpoint is already changing: another writer acted.
            logger.info("endpoint busy; deciding again next tick", extra={"reason": str(busy)})
            return None
        except EndpointRequestRefused as refusal:
            # Asking again gives the same answer: the rollout fails (and restores) with SageMaker's reason.
            logger.warning(
                "SageMaker refused a call", extra={"rollout_id": rollout.rollout_id, "reason": refusal.reason}
            )
            return refused(rollout, now, refusal.reason)
        # Anything else (throttling, 5xx, a connection error, a refusal no adapter names, a defect)
        # leaves the pass: _reconcile times it.

    def _decide_and_act(self, rollout: Rollout, now: datetime) -> Action:
        """Observe, decide, and make the action's SageMaker call(s); the caller records the outcome."""
        # The controller's path only (as below): start_rollout's cold start does not import the flip.
        from shepherd.rollouts.flip import moves_forward, observe_flip

        try:
            observed = self.endpoints.describe(rollout.endpoint_name)
        except EndpointRequestRefused as refusal:
            if rollout.phase is Phase.ABORTING:  # unseen, the candidate may still serve: as below
                raise TransientError(f"endpoint unseen while restoring: {refusal}") from refusal
            raise
        # Alarms only hold an advance: a restore (or a rollout still being set up) must not wait on
        # reading them (CloudWatch refusing DescribeAlarms would otherwise keep the candidate serving).
        holding: frozenset[str] = frozenset()
        if rollout.gating_alarms and rollout.phase not in (Phase.ABORTING, Phase.PREPARING):
            gate = alarm_gate.read_gate(self.alarms, rollout.gating_alarms)  # a missing alarm holds (fail closed)
            said = alarm_gate.gate_changed(rollout, gate, now)
            if said is not None:
                return said  # recorded and announced first; the next decision holds on it
            holding = gate.holding
        action = decide(rollout, observed, holding, now)
        if isinstance(action, Wait):
            return action
        if moves_forward(action) and (fresh := self._written_since(rollout)) is not None:
            raise _RecordMoved(fresh)  # decide again from it: it may be a rollback's abort
        try:
            self._carry_out(action)
        except EndpointRequestRefused as refusal:
            if (
                rollout.phase is Phase.ABORTING
                and observed is not None
                and observed.weight_of(rollout.candidate.variant_name)
            ):
                # Ending the abort now would release the endpoint with traffic on the rolled-back
                # candidate: tried again like a throttle (a permission can be fixed), until the deadline;
                # with the candidate out, it ends at once (the endpoint is safe as it is).
                raise TransientError(f"restore refused while the candidate serves: {refusal}") from refusal
            raise
        return observe_flip(action, observed, self.clock)  # an aborting rollback's flip, made or seen

    def _published(self, published: bool) -> None:
        with self.counting:  # passes run on several threads (concurrent_passes.py)
            self.unpublished += not published

    def _failed(self, stored: StoredRollout, now: datetime, event_id: str, failure: Exception) -> None:
        """A pass failed, wherever (a read before the decision, the judge, a SageMaker call, a commit):
        start the clock on the record (kept from the first failure), or, once the failures have lasted
        `update_timeout_seconds`, end the rollout as SageMaker refusing for good would: it aborts,
        its candidate loses its traffic, and `Rollout Failed` says why. A canary that cannot be
        watched or moved must not keep its traffic, nor hold the endpoint, for ever (I2).

        Best effort: if even this cannot be written (the store is down), the next pass tries again.
        """
        try:
            fresh = self.rollouts.get_rollout(stored.rollout.endpoint_name, stored.rollout.rollout_id)
            if fresh is None or fresh.rollout.phase.is_terminal:
                return
            rollout = fresh.rollout
            if not failing_too_long(rollout, now):
                if rollout.failing_since is None:
                    self._save_quietly(fresh, still_failing(rollout, now))
                return
            reason = f"still failing after {rollout.update_timeout_seconds} s: {failure}"
            logger.warning("rollout gives up", extra={"rollout_id": rollout.rollout_id, "reason": reason})
            action = refused(rollout, now, reason)
            if isinstance(action, Wait):
                return
            changes, announcements = self._consequences(fresh, action, now, event_id)
            owed = outbox(action.next, *announcements)
            self.rollouts.commit([*changes, owed])
            self._published(deliver_or_keep(self.rollouts, self.events, owed))
        except Exception:  # the pass's own failure is what the tick reports; this one is only logged
            logger.exception("could not record the failure", extra={"rollout_id": stored.rollout.rollout_id})

    def _save_quietly(self, stored: StoredRollout, record: Rollout) -> None:
        """A record-only bookkeeping write; losing it to another writer is harmless (it re-decides)."""
        try:
            self.rollouts.commit([SaveRollout(record, stored.request, stored.rollout.revision)])
        except ChangeRejected:
            logger.info("record changed meanwhile", extra={"rollout_id": record.rollout_id})

    def _written_since(self, rollout: Rollout) -> StoredRollout | None:
        """The record again, if someone (a rollback's abort) wrote it since `rollout` was read.

        Read before every forward change, so a tick never steps forward on a record a rollback has
        already aborted; a rollback that writes between this read and the change is undone by
        `_undo_lost_step`.
        """
        fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
        return fresh if fresh is not None and fresh.rollout.revision != rollout.revision else None

    def _undo_lost_step(self, action: Action, fresh: Rollout) -> None:
        """Our forward step landed, but a rollback aborted the rollout meanwhile: flip back at once."""
        from shepherd.rollouts.flip import TrafficFlip, moves_forward

        stepped_up = isinstance(action, ShiftTraffic) and moves_forward(action)
        if stepped_up and fresh.phase is Phase.ABORTING and fresh.live is not None:
            TrafficFlip(self.endpoints, self.clock, self.sleep).back(fresh)

    def _carry_out(self, action: Action) -> None:
        if isinstance(action, CreateEndpoint):
            self.endpoints.ensure_config(action.config)
            self.endpoints.create_endpoint(action.endpoint_name, action.config.name)
        elif isinstance(action, UpdateEndpoint):
            if action.create_config is not None:
                self.endpoints.ensure_config(action.create_config)
            self.endpoints.update_endpoint(action.endpoint_name, action.config_name)
        elif isinstance(action, ShiftTraffic):
            self.endpoints.set_weights(action.endpoint_name, action.weights())
        elif isinstance(action, DeleteEndpoint):
            self.endpoints.delete_endpoint(action.endpoint_name)
        # RecordProgress, Complete, Fail and FinishRollback only change records.

    def _consequences(
        self, stored: StoredRollout, action: Action, now: datetime, event_id: str
    ) -> tuple[list[Change], list[Announcement]]:
        assert not isinstance(action, Wait)
        before, after = stored.rollout, action.next
        changes: list[Change] = [SaveRollout(after, stored.request, before.revision)]
        announcements: list[Announcement] = []
        ids = announced_ids(after)
        detail = getattr(action, "note", None) or getattr(action, "reason", None) or type(action).__name__
        traffic, reached = _traffic(action), _reached_step(before, after)
        changes.append(
            endpoint_audit(
                after, _audit_action(action), str(detail), now, event_id, traffic=traffic, reached_step=reached
            )
        )
        if isinstance(action, ShiftTraffic):
            announcements.append(
                RolloutTrafficShifted(**ids, from_percent=action.from_percent, to_percent=action.to_percent)
            )
        announcements += alarm_gate.announcements(action)  # a hold by missing alarms begins
        reached_full = after.phase is Phase.WATCHING and before.phase is not Phase.WATCHING
        first_done = isinstance(action, Complete) and after.is_first_deployment
        if reached_full or first_done:
            changes.append(
                version_move(after, after.version, (VersionStatus.DEPLOYING,), VersionStatus.LIVE, stored, now)
            )
            if reached_full and after.previous_version is not None:  # it serves nothing now: standby
                changes.append(
                    version_move(
                        after, after.previous_version, (VersionStatus.LIVE,), VersionStatus.STANDBY, stored, now
                    )
                )
            watch_until = now + timedelta(seconds=after.post_deploy_watch_seconds) if reached_full else None
            announcements.append(RolloutCompleted(**ids, watch_until=watch_until))
        if after.phase.is_terminal:
            changes += [
                ReleaseLock(after.endpoint_name, after.rollout_id),
                ForgetAlarms(_own_alarms(self.namespace, after)),
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
            announcements.append(RolloutFailed(**ids, reason=action.reason))
        # FinishRollback: the rollback function already marked the candidate ROLLED_BACK with its abort.
        from shepherd.rollouts.flip import rollback_consequences

        owed, announced = rollback_consequences(before, action, self.rollouts.endpoint_audit_trail, now, event_id)
        return changes + owed, announcements + announced

    def _clean_up(self, rollout: Rollout) -> str:
        """Delete the per-rollout alarms, and the configs and models nothing uses any more.

        Re-runnable: a finished rollout stays listed by `rollouts_to_clean_up` until this completes,
        so a failure half-way is finished by a later tick. What the endpoint runs now (described, not
        assumed from the outcome) and the endpoint's recorded baseline are never deleted.
        """
        self.alarms.delete_alarms(_own_alarms(self.namespace, rollout))
        observed = self.endpoints.describe(rollout.endpoint_name)
        if observed is not None and observed.status not in (EndpointStatus.IN_SERVICE, EndpointStatus.FAILED):
            # A change still under way may land on any of this rollout's configs: delete none yet.
            return f"clean-up waits: endpoint is {observed.status}"
        live = self.rollouts.live(rollout.endpoint_name)
        if self._left_on_its_configs(rollout, observed, live):
            # The abort ended before the endpoint was back as recorded (its restore gave up, or a
            # change landed after it ended): finish the restore, so endpoint and records agree again.
            # A first deployment that did not complete leaves no endpoint (as its abort deletes one).
            if self.rollouts.lock_holder(rollout.endpoint_name) is not None:
                # Not while another rollout holds the endpoint; nor done without it: that rollout may
                # end without changing the endpoint (its update rolled back by SageMaker), leaving it
                # here for good. Either it moves the endpoint off these configs, or this finishes then.
                return "clean-up waits: another rollout holds the endpoint, left on this rollout's config"
            if live is None:
                self.endpoints.delete_endpoint(rollout.endpoint_name)
            else:
                self.endpoints.update_endpoint(rollout.endpoint_name, live.config_name)
            return "clean-up finishes the restore"
        in_use = {observed.config_name if observed else None, live.config_name if live else None}
        for config in {rollout.shift_config, rollout.final_config, rollout.previous_config} - in_use - {None}:
            assert config is not None
            self.endpoints.delete_config(config)
        retired = rollout.live if rollout.phase is Phase.COMPLETED else rollout.candidate
        running = {variant.name for variant in observed.variants} if observed else set()
        if (
            retired is not None
            and not _variants_running(rollout, retired.model_resource_name) & running
            and not self.rollouts.endpoints_serving(retired.model_resource_name)
        ):
            self.endpoints.delete_model(retired.model_resource_name)
        self.rollouts.cleaned_up(rollout.endpoint_name, rollout.rollout_id)
        return "cleaned up"

    def _left_on_its_configs(
        self, rollout: Rollout, observed: ObservedEndpoint | None, live: LiveDeployment | None
    ) -> bool:
        """The endpoint serves a config of this ended (not completed) rollout instead of its recorded
        baseline (or none, for a first deployment). A restore SageMaker rolled back is tried again at
        the next pass, as the controller's restore is."""
        return (
            rollout.phase is not Phase.COMPLETED
            and observed is not None
            and observed.status is EndpointStatus.IN_SERVICE
            and (live is not None or rollout.is_first_deployment)
            and observed.config_name in {rollout.shift_config, rollout.final_config} - {live and live.config_name}
        )


def _variants_running(rollout: Rollout, model_resource_name: str) -> set[str]:
    """The rollout's variants that run this model: the fresh baseline runs the live variant's."""
    variants = (rollout.candidate, rollout.live, rollout.fresh_baseline)
    return {v.variant_name for v in variants if v is not None and v.model_resource_name == model_resource_name}


def _own_alarms(namespace: str, rollout: Rollout) -> tuple[str, str]:
    return naming.rollout_alarm_names(namespace, rollout.endpoint_name, rollout.rollout_id)


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
    if isinstance(action, alarm_gate.GateChanged):
        return alarm_gate.audit_action(action)
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
