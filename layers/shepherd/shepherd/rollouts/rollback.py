"""Rollback: an alarm (or an operator) puts an endpoint's traffic back on its last good version.

Speed first: the traffic flip is one UpdateEndpointWeightsAndCapacities, made after at most two
reads (which rollout, and its record) and before any write that could fail. Then the rollout is
marked ABORTING (outcome ROLLED_BACK) conditionally on the revision that was read, the candidate
version ROLLED_BACK, and an incident recorded; the controller then removes the candidate variant,
releases the lock and deletes the per-rollout alarms (controller.py, ABORTING). A lost race with a
controller tick is repaired by reading again and flipping again, so traffic never stays on the
candidate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from shepherd.contracts import RollbackSkipped, RolloutRolledBack
from shepherd.registry.errors import ConflictError, TransientError
from shepherd.registry.model import VersionStatus
from shepherd.registry.ports import Clock, EventPublisher
from shepherd.rollouts.clock import received_time
from shepherd.rollouts.controller import Phase, Rollout, request_abort
from shepherd.rollouts.ports import (
    ChangeRejected,
    EndpointControl,
    Incident,
    RecordIncident,
    RolloutStore,
    SaveRollout,
    StoredRollout,
    endpoint_audit,
)
from shepherd.rollouts.service import PromotionRequest, RolloutService, outbox, version_move

logger = logging.getLogger(__name__)

FLIP_ATTEMPTS = 4  # on top of the SDK's own retries: throttling on the flip must not lose the rollback
MAX_RACE_ROUNDS = 5


@dataclass(frozen=True)
class AlarmStateChange:
    """One alarm state change, whichever of the three shapes it arrived in."""

    alarm_name: str
    state: str  # ALARM, OK, INSUFFICIENT_DATA
    reason: str
    reason_data: str | None
    changed_at: datetime | None
    dimensions: dict[str, str]
    event_id: str


@dataclass(frozen=True)
class RollbackRequest:
    endpoint_name: str
    reason: str
    requested_by: str
    to_version: int | None
    event_id: str
    requested_at: datetime


@dataclass(frozen=True)
class RollbackOutcome:
    result: Literal["rolled_back", "redeploying", "duplicate", "skipped", "ignored"]
    reason: str
    endpoint_name: str | None = None
    rollout_id: str | None = None
    seconds_to_flip: float | None = None


@dataclass
class RollbackService:
    rollouts: RolloutStore
    endpoints: EndpointControl
    events: EventPublisher
    clock: Clock
    promotions: RolloutService
    sleep: Callable[[float], None] = field(default=time.sleep)

    def handle(self, trigger: AlarmStateChange | RollbackRequest) -> RollbackOutcome:
        if isinstance(trigger, AlarmStateChange):
            if trigger.changed_at is not None:  # a sender's time, never beyond ours (rollouts/clock.py)
                trigger = replace(trigger, changed_at=received_time(trigger.changed_at, self.clock()))
            return self.handle_alarm(trigger)
        return self.handle_request(replace(trigger, requested_at=received_time(trigger.requested_at, self.clock())))

    def handle_alarm(self, change: AlarmStateChange) -> RollbackOutcome:
        if change.state != "ALARM":
            logger.info("alarm state recorded, not acted on", extra={"alarm": change.alarm_name, "state": change.state})
            return RollbackOutcome("ignored", f"{change.alarm_name} is {change.state}")
        target = self._target(change)
        if target is None:
            logger.info("alarm about no endpoint Shepherd manages", extra={"alarm": change.alarm_name})
            return RollbackOutcome("ignored", f"{change.alarm_name} maps to no endpoint Shepherd manages")
        endpoint_name, stored = target
        return self._roll_back(endpoint_name, stored, change.alarm_name, change)

    def handle_request(self, request: RollbackRequest) -> RollbackOutcome:
        holder = self.rollouts.lock_holder(request.endpoint_name)
        stored = self.rollouts.get_rollout(request.endpoint_name, holder) if holder else None
        if stored is not None and request.to_version is None:
            change = AlarmStateChange(
                alarm_name="",
                state="ALARM",
                reason=request.reason,
                reason_data=None,
                changed_at=request.requested_at,
                dimensions={},
                event_id=request.event_id,
            )
            return self._roll_back(request.endpoint_name, stored, request.requested_by, change)
        return self._redeploy(request)

    # --- acting on a rollout ---------------------------------------------------------------------

    def _target(self, change: AlarmStateChange) -> tuple[str, StoredRollout | None] | None:
        """(endpoint, its rollout) by the alarm's registration, else by its EndpointName dimension."""
        registration = self.rollouts.alarm_registration(change.alarm_name)
        if registration is not None:
            stored = self.rollouts.get_rollout(registration.endpoint_name, registration.rollout_id)
            return registration.endpoint_name, stored
        endpoint_name = change.dimensions.get("EndpointName")
        if endpoint_name is None:
            return None
        holder = self.rollouts.lock_holder(endpoint_name)
        if holder is not None:
            return endpoint_name, self.rollouts.get_rollout(endpoint_name, holder)
        if self.rollouts.live(endpoint_name) is None:
            return None
        return endpoint_name, None

    def _roll_back(
        self, endpoint_name: str, stored: StoredRollout | None, trigger: str, change: AlarmStateChange
    ) -> RollbackOutcome:
        for _ in range(MAX_RACE_ROUNDS):
            skipped = self._why_not(endpoint_name, stored)
            if skipped is not None:
                command_id = None if change.alarm_name else change.event_id
                return self._skip(endpoint_name, stored, trigger, skipped, command_id)
            assert stored is not None
            if stored.rollout.phase is Phase.ABORTING:
                self.promotions.flush(endpoint_name)  # the first delivery's announcement, if it was lost
                return RollbackOutcome("duplicate", "already rolling back", endpoint_name, stored.rollout.rollout_id)
            flipped_at = self._flip(stored.rollout)
            try:
                return self._record(stored, trigger, change, flipped_at)
            except ChangeRejected:
                # A controller tick wrote first (maybe shifting traffic after our flip): read, flip again.
                stored = self.rollouts.get_rollout(endpoint_name, stored.rollout.rollout_id)
        raise TransientError(f"rollback of {endpoint_name} kept losing races; retrying the event")

    def _why_not(self, endpoint_name: str, stored: StoredRollout | None) -> str | None:
        if stored is None:
            return f"no rollout on {endpoint_name} to roll back (its watch window is over)"
        rollout = stored.rollout
        if rollout.phase in (Phase.COMPLETED, Phase.RETIRING):
            return f"the watch window of {rollout.rollout_id} is over: version {rollout.version} is the baseline"
        if rollout.phase in (Phase.FAILED, Phase.ROLLED_BACK):
            return f"rollout {rollout.rollout_id} already ended {rollout.phase.value}"
        if rollout.is_first_deployment:
            return f"rollout {rollout.rollout_id} is a first deployment: there is no previous version"
        return None

    def _flip(self, rollout: Rollout) -> datetime:
        """All traffic to the live variant: one call, retried with backoff. Raises if it never lands."""
        assert rollout.live is not None
        if rollout.phase is Phase.STARTING:
            return self.clock()  # the candidate gets no traffic before its first step: nothing to flip
        weights = {rollout.live.variant_name: 1.0, rollout.candidate.variant_name: 0.0}
        for attempt in range(FLIP_ATTEMPTS):
            try:
                self.endpoints.set_weights(rollout.endpoint_name, weights)
                return self.clock()
            except ConflictError:
                # The endpoint is Updating (a step in flight): the controller's restore finishes the job.
                logger.warning("endpoint busy; the controller restores it", extra={"rollout_id": rollout.rollout_id})
                return self.clock()
            except TransientError:
                if attempt == FLIP_ATTEMPTS - 1:
                    raise
                self.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def _record(
        self, stored: StoredRollout, trigger: str, change: AlarmStateChange, flipped_at: datetime
    ) -> RollbackOutcome:
        rollout = stored.rollout
        assert rollout.previous_version is not None and rollout.live is not None
        reason = f"{trigger}: {change.reason}" if change.alarm_name else f"requested by {trigger}: {change.reason}"
        # The record keeps event time, like the controller's ticks (replayable); the incident keeps both.
        event_time = change.changed_at or flipped_at
        aborting = request_abort(rollout, reason=reason, now=max(event_time, rollout.updated_at))
        latency = (flipped_at - change.changed_at).total_seconds() if change.changed_at else None
        incident = Incident(
            endpoint_name=rollout.endpoint_name,
            rollout_id=rollout.rollout_id,
            model_name=rollout.model_name,
            version=rollout.version,
            restored_version=rollout.previous_version,
            trigger=trigger,
            alarm_name=change.alarm_name or None,
            state_reason=change.reason,
            state_reason_data=change.reason_data,
            alarm_changed_at=change.changed_at,
            flipped_at=flipped_at,
            seconds_to_flip=latency,
            # The step the rollout asked for: its record may not yet have seen the endpoint reach it.
            weights_before={
                rollout.live.variant_name: (100 - rollout.target_percent) / 100,
                rollout.candidate.variant_name: rollout.target_percent / 100,
            },
            weights_after={rollout.live.variant_name: 1.0, rollout.candidate.variant_name: 0.0},
            timeline=[
                e
                for e in self.rollouts.endpoint_audit_trail(rollout.endpoint_name)
                if e.rollout_id == rollout.rollout_id
            ],
        )
        from_statuses = (VersionStatus.DEPLOYING, VersionStatus.LIVE)
        announced = outbox(
            aborting,
            RolloutRolledBack(
                rollout_id=rollout.rollout_id,
                endpoint_name=rollout.endpoint_name,
                model_name=rollout.model_name,
                version=rollout.version,
                restored_version=rollout.previous_version,
                trigger=trigger,
                reason=change.reason,
                seconds_to_flip=latency,
                command_id=None if change.alarm_name else change.event_id,  # an operator's request
            ),
        )
        self.rollouts.commit(
            [
                SaveRollout(aborting, stored.request, rollout.revision),
                version_move(
                    aborting,
                    rollout.version,
                    from_statuses,
                    VersionStatus.ROLLED_BACK,
                    stored,
                    aborting.updated_at,
                    changes=(("rolled_back_by", trigger), ("rollback_reason", change.reason)),
                    cause=(trigger, change.event_id),
                ),
                RecordIncident(incident),
                endpoint_audit(aborting, "rolled back", reason, aborting.updated_at, change.event_id, trigger),
                announced,
            ]
        )
        self.promotions.deliver(announced)
        return RollbackOutcome("rolled_back", reason, rollout.endpoint_name, rollout.rollout_id, latency)

    def _skip(
        self, endpoint_name: str, stored: StoredRollout | None, trigger: str, why: str, command_id: str | None = None
    ) -> RollbackOutcome:
        rollout = stored.rollout if stored else None
        ended = rollout is not None and rollout.phase in (Phase.FAILED, Phase.ROLLED_BACK, Phase.ABORTING)
        if rollout is not None and ended and command_id is None:
            # A repeat of an alarm already acted on: one rollback, one announcement. (An operator's
            # command is answered even then: the CLI waits for the answer.)
            return RollbackOutcome("duplicate", why, endpoint_name, rollout.rollout_id)
        self.events.publish(
            RollbackSkipped(
                endpoint_name=endpoint_name,
                trigger=trigger,
                reason=why,
                rollout_id=rollout.rollout_id if rollout else None,
                model_name=rollout.model_name if rollout else None,
                version=rollout.version if rollout else None,
                command_id=command_id,
            )
        )
        return RollbackOutcome("skipped", why, endpoint_name, rollout.rollout_id if rollout else None)

    # --- redeploying an earlier version -------------------------------------------------------------

    def _redeploy(self, request: RollbackRequest) -> RollbackOutcome:
        """No rollout to flip back: redeploy `to_version` (default: the one live before) all at once."""
        target = self._previous(request.endpoint_name, request.to_version)
        if target is None:
            why = f"{request.endpoint_name} has no earlier version to roll back to"
            return self._skip(request.endpoint_name, None, request.requested_by, why, request.event_id)
        model_name, version = target
        outcome = self.promotions.promote(
            PromotionRequest(
                model_name=model_name,
                version=version,
                endpoint_name=request.endpoint_name,
                strategy={"type": "all_at_once"},
                alarms=(),
                instance_type=None,
                initial_instance_count=None,
                requested_by=request.requested_by,
                reason=f"rollback: {request.reason}",
                event_id=request.event_id,
                requested_at=request.requested_at,
                is_rollback=True,
            )
        )
        result: Literal["redeploying", "duplicate", "skipped"] = (
            "skipped" if outcome.result == "rejected" else "redeploying" if outcome.result == "started" else "duplicate"
        )
        return RollbackOutcome(
            result, outcome.reason or f"redeploying {model_name} v{version}", request.endpoint_name, outcome.rollout_id
        )

    def _previous(self, endpoint_name: str, to_version: int | None) -> tuple[str, int] | None:
        live = self.rollouts.live(endpoint_name)
        if live is None:
            return None
        if to_version is not None:
            return live.model_name, to_version
        for stored in self.rollouts.rollouts_of(endpoint_name):
            rollout = stored.rollout
            completed = rollout.phase is Phase.COMPLETED and rollout.version == live.version
            if completed and rollout.previous_version is not None and rollout.previous_model_name is not None:
                return rollout.previous_model_name, rollout.previous_version
        return None
