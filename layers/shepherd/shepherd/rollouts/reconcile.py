"""One rollout's pass: observe, decide, act, commit, announce.

The decision is the pure `decide.decide`; this module observes (DescribeEndpoint, the gating alarms),
carries the action out (actions.py says what each one asks of SageMaker), commits the next record with
everything the step implies (consequences.py), then announces through the outbox. The canary judge
(judging.py) looks first at a judged rollout's baking step.

Order matters: act first, then write. If the process dies between the two, the next pass sees the
endpoint already changed and answers with a `RecordProgress` catch-up instead of a second change. The
write is conditional on the record's ``revision``; a lost condition means another writer (a rollback,
a concurrent pass) changed it: the pass re-reads and decides again, undoing a forward step a
rollback's abort overtook. A pass loops (observe, decide, act) up to `MAX_DECISIONS_PER_TICK` times, so
a step that needs a record-only update does not cost a scheduler minute. Whatever fails in a pass is
timed on the record (failures.py); SageMaker refusing a call for good fails that rollout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from msgspec import Struct

from shepherd.capacity.errors import ScalingRequestRefused
from shepherd.capacity.ports import VariantAutoScaling
from shepherd.capacity.prices import PriceTable, built_in
from shepherd.capacity.sizing import ScalingNotCarried
from shepherd.contracts import Announcement
from shepherd.kernel.clock import Clock
from shepherd.kernel.errors import TransientError
from shepherd.kernel.publisher import EventPublisher
from shepherd.rollouts import alarm_gate
from shepherd.rollouts.actions import (
    Action,
    Complete,
    CreateEndpoint,
    DeleteEndpoint,
    Fail,
    FinishRollback,
    ResizeVariants,
    ShiftTraffic,
    UpdateEndpoint,
    Wait,
)
from shepherd.rollouts.clean_up import clean_up
from shepherd.rollouts.consequences import consequences
from shepherd.rollouts.cost_tracking import charge
from shepherd.rollouts.decide import decide
from shepherd.rollouts.errors import EndpointRequestRefused, EndpointStillUpdating
from shepherd.rollouts.failures import failing_too_long, recovered, refused, still_failing
from shepherd.rollouts.judging import CanaryJudge
from shepherd.rollouts.observed import ObservedEndpoint
from shepherd.rollouts.outbox import deliver_or_keep, outbox, publish_owed
from shepherd.rollouts.ports import (
    AlarmControl,
    Change,
    ChangeRejected,
    EndpointControl,
    RolloutStore,
    SaveRollout,
    StoredRollout,
)
from shepherd.rollouts.record import Phase, Rollout
from shepherd.rollouts.scaling_handover import carry_to, hand_back, record, recounted, settle

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Decisions per rollout per tick: enough to record a reached step and request the next one
# without waiting a scheduler minute, bounded so one rollout cannot starve the others.
MAX_DECISIONS_PER_TICK = 6


class _RecordMoved(Exception):
    """Before a forward change the record was found written by someone else (a rollback's abort), or
    written by this pass first (the live variant's scaling kept before the retire): decide again."""

    def __init__(self, fresh: StoredRollout, outcome: str = "raced") -> None:
        super().__init__(fresh.rollout.rollout_id)
        self.fresh, self.outcome = fresh, outcome


class RolloutPass(Struct):
    """One rollout's pass (`run`), wired by the tick (tick.py) with its ports."""

    rollouts: RolloutStore
    endpoints: EndpointControl
    alarms: AlarmControl
    events: EventPublisher
    clock: Clock
    namespace: str  # the stack's: its per-rollout alarms' prefix (naming.rollout_alarm_names)
    canary: CanaryJudge  # judges a judged rollout's baking step at the start of its pass (judging.py)
    scaling: VariantAutoScaling  # the variants' auto scaling, carried over at a retire (scaling_handover.py)
    sleep: Callable[[float], None]  # waiting for a busy endpoint to flip back
    published: Callable[[bool], None]  # counts a publish that failed (kept in the outbox) in the tick's errors
    prices: Callable[[], PriceTable] = built_in  # the cost ledger's prices, in the announcements of an end

    def run(self, stored: StoredRollout, now: datetime, event_id: str) -> str:
        """One rollout's pass; whatever fails in it is timed on the record (`_failed`) and raised."""
        try:
            return self._pass(stored, now, event_id)
        except Exception as failure:  # any failure, at any call of the pass: see _failed
            self._failed(stored, now, event_id, failure)
            raise

    def _pass(self, stored: StoredRollout, now: datetime, event_id: str) -> str:
        # What earlier commits owe is published when it can be; a failure keeps it in the outbox (the
        # tick's outbox pass counts it) and never keeps the rollout from its decision.
        self.published(publish_owed(self.rollouts, self.events, stored.rollout.endpoint_name))
        outcome = "waiting"
        if stored.rollout.judged:
            stored, judged = self.canary.judge(stored, now, event_id)
            outcome = judged or outcome
        for _ in range(MAX_DECISIONS_PER_TICK):
            rollout = stored.rollout
            try:
                action = self._next_action(stored, now)
            except _RecordMoved as moved:
                stored, outcome = moved.fresh, moved.outcome
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
            self.published(deliver_or_keep(self.rollouts, self.events, owed))
            outcome = type(action).__name__
            stored = StoredRollout(action.next, stored.request)
            if action.next.phase.is_terminal:
                self.run_clean_up(action.next)
                return outcome
        return outcome

    def _next_action(self, stored: StoredRollout, now: datetime) -> Action | None:
        """The action taken (its SageMaker calls made); None when another writer is changing the endpoint."""
        rollout = stored.rollout
        try:
            return self._decide_and_act(stored, now)
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

    def _decide_and_act(self, stored: StoredRollout, now: datetime) -> Action:
        """Observe, decide, and make the action's SageMaker call(s); the caller records the outcome."""
        rollout = stored.rollout
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
            self._keep_retired_scaling(stored, action, observed, now)
            self._carry_out(action, observed)
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
        # An aborting rollback's flip, made or seen; the cost ledger charged with what this pass saw.
        return charge(observe_flip(action, observed, self.clock), observed, now)

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
            self.published(deliver_or_keep(self.rollouts, self.events, owed))
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

    def _carry_out(self, action: Action, observed: ObservedEndpoint | None) -> None:
        if isinstance(action, CreateEndpoint):
            self.endpoints.ensure_config(action.config)
            self.endpoints.create_endpoint(action.endpoint_name, action.config.name)
        elif isinstance(action, UpdateEndpoint):
            self._hand_over_scaling(action, observed)  # before: SageMaker refuses to remove a registered variant
            # Never rewritten while the endpoint runs it (ensure_config replaces a stale one): an update
            # onto the config it already runs (its weights edited outside) keeps that config as it is.
            if action.create_config is not None and (observed is None or observed.config_name != action.config_name):
                self.endpoints.ensure_config(action.create_config)
            self.endpoints.update_endpoint(action.endpoint_name, action.config_name)
        elif isinstance(action, ShiftTraffic):
            self.endpoints.set_weights(action.endpoint_name, action.weights())
        elif isinstance(action, ResizeVariants):
            self.endpoints.set_capacities(action.endpoint_name, action.requested())
        elif isinstance(action, DeleteEndpoint):
            self.endpoints.delete_endpoint(action.endpoint_name)
        elif isinstance(action, Complete | Fail | FinishRollback):
            self._settle_scaling(action.next, observed)

    def _settle_scaling(self, ended: Rollout, observed: ObservedEndpoint | None) -> None:
        """Whatever ends the rollout, the variant serving afterwards carries the scaling: a restore
        observed done gives the old variant its recorded registration before the rollout ends. On an
        endpoint still changing, the clean-up does it once it is stable (clean_up.py)."""
        self._scaling(settle, ended, observed)

    def _keep_retired_scaling(
        self, stored: StoredRollout, action: Action, observed: ObservedEndpoint | None, now: datetime
    ) -> None:
        """Before the retire's first hand-over, keep the live variant's registration and count on the
        record (scaling_handover.py): written before anything is deregistered, so a restore can give it
        back whenever the pass that deregisters it dies; the count kept up to date while the variant
        is on the endpoint (a retire tried again after autoscaling moved it). Decides again from the
        written record."""
        rollout = stored.rollout
        if not (isinstance(action, UpdateEndpoint) and action.purpose == "retire") or observed is None:
            return
        if rollout.retired_scaling is None:
            recorded = self._scaling(record, rollout, observed)
        else:
            recorded = recounted(rollout, observed)
        if recorded is None:
            return  # not autoscaled (nothing to hand over), or recorded as it is
        kept = rollout.model_copy(
            update={
                "retired_scaling": recorded,
                "revision": rollout.revision + 1,
                "updated_at": max(now, rollout.updated_at),
            }
        )
        try:
            self.rollouts.commit([SaveRollout(kept, stored.request, rollout.revision)])
        except ChangeRejected:
            fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
            if fresh is None:
                raise
            raise _RecordMoved(fresh) from None
        raise _RecordMoved(StoredRollout(kept, stored.request), "kept the live variant's scaling")

    def _hand_over_scaling(self, action: UpdateEndpoint, observed: ObservedEndpoint | None) -> None:
        """A retire carries the recorded scaling to the candidate; a restore deregisters the candidate
        it removes, and gives the old variant its own scaling back if it is on the endpoint."""
        rollout = action.next
        if action.purpose == "start" or rollout.live is None:
            return
        if action.purpose == "retire":
            self._scaling(carry_to, rollout, rollout.candidate.variant_name)
        else:
            self._scaling(hand_back, rollout, observed)

    def _scaling(self, call: Callable[..., _T], *args: object) -> _T:
        """An auto scaling step; a refusal fails the rollout as SageMaker's would (throttling: next pass)."""
        try:
            return call(self.scaling, *args)
        except ScalingRequestRefused as refusal:
            raise EndpointRequestRefused(refusal.code, f"auto scaling not carried over ({refusal.reason})") from refusal
        except ScalingNotCarried as refusal:
            raise EndpointRequestRefused("ScalingNotCarried", refusal.reason) from refusal

    def _consequences(
        self, stored: StoredRollout, action: Action, now: datetime, event_id: str
    ) -> tuple[list[Change], list[Announcement]]:
        return consequences(
            stored,
            action,
            now,
            event_id,
            namespace=self.namespace,
            audit_trail=self.rollouts.endpoint_audit_trail,
            prices=self.prices,
        )

    def run_clean_up(self, rollout: Rollout) -> str:
        return clean_up(
            rollout,
            rollouts=self.rollouts,
            endpoints=self.endpoints,
            alarms=self.alarms,
            scaling=self.scaling,
            namespace=self.namespace,
        )
