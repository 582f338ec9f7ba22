"""Rollback: an alarm (or an operator) puts an endpoint's traffic back on its last good version.

In this order, so that the flip is fast and what is reported is true:

1. Which rollout (the alarm's registration, else the active rollouts) and its record: two reads for
   a rollout's own alarm.
2. The abort, written conditionally on the record's revision: the rollout ABORTING (outcome
   ROLLED_BACK) with its :class:`RollbackCause`, the candidate version ROLLED_BACK, an audit entry.
   From here on no controller tick moves the candidate forward: a tick re-reads the record before a
   forward change, and one whose step lost the race flips back itself.
3. The flip (:mod:`flip`): one UpdateEndpointWeightsAndCapacities, retried (re-describing) while
   the endpoint is busy, for a bounded time.
4. The observed flip, recorded conditionally on the abort's revision: ``flipped_at``, the incident
   and ``Rollout Rolled Back`` (through the outbox). Only this reports ``rolled_back`` with a
   ``seconds_to_flip``.

If the endpoint stays busy the result is ``flip_pending``: the controller flips as soon as the
endpoint is InService, and records and announces the flip then. A retry of the same event finishes
its own abort; another trigger that finds a rollback under way is a duplicate. The controller then
removes the candidate variant, releases the lock and deletes the per-rollout alarms (ABORTING).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from msgspec import Struct

from shepherd.capacity.prices import PriceTable, built_in
from shepherd.contracts import RollbackSkipped
from shepherd.kernel.clock import Clock
from shepherd.kernel.errors import TransientError
from shepherd.kernel.publisher import EventPublisher
from shepherd.registry.model import VersionStatus
from shepherd.rollouts.alarm_confirmation import confirmed, refused_alarm
from shepherd.rollouts.alarm_targets import alarm_targets
from shepherd.rollouts.flip import Flipped, TrafficFlip, flip_record
from shepherd.rollouts.outbox import deliver, flush, outbox
from shepherd.rollouts.ports import (
    AlarmControl,
    Change,
    ChangeRejected,
    EndpointControl,
    RolloutStore,
    SaveRollout,
    StoredRollout,
    endpoint_audit,
    version_move,
)
from shepherd.rollouts.record import Phase, Rollout, request_abort
from shepherd.rollouts.rollback_cause import RollbackCause

if TYPE_CHECKING:  # a type only: the rollback function imports the promotion service for a redeploy only
    from shepherd.rollouts.promotion import PromotionService

logger = logging.getLogger(__name__)
# How far back an alarm's retry looks for a rollback it already made, before the flip (one page, read
# newest first): Lambda retries an event within hours, and few rollouts start on one endpoint meanwhile.
RECENT = 5

MAX_RACE_ROUNDS = 5


class AlarmStateChange(Struct, frozen=True):
    """One alarm state change, whichever of the three shapes it arrived in."""

    alarm_name: str
    state: str  # ALARM, OK, INSUFFICIENT_DATA
    reason: str
    reason_data: str | None
    changed_at: datetime | None
    # Each metric's dimensions: one for a single-metric alarm, several for metric math (which may
    # watch the candidate and the baseline together: it is about the candidate, see `alarm_targets.py`).
    metric_dimensions: tuple[dict[str, str], ...]
    event_id: str
    # Arrived on a channel others could publish to (SNS): confirmed with CloudWatch before acting.
    needs_confirmation: bool = False

    def variants(self) -> frozenset[tuple[str, str | None]]:
        """(endpoint, variant or None) of every metric that names an endpoint, whatever their order."""
        return frozenset(
            (dimensions["EndpointName"], dimensions.get("VariantName"))
            for dimensions in self.metric_dimensions
            if "EndpointName" in dimensions
        )


class RollbackRequest(Struct, frozen=True):
    """An operator's `Model Rollback Requested`."""

    endpoint_name: str
    reason: str
    requested_by: str
    to_version: int | None
    event_id: str
    requested_at: datetime


RollbackResult = Literal["rolled_back", "flip_pending", "redeploying", "duplicate", "skipped", "ignored"]


class RollbackOutcome(Struct, frozen=True):
    """What one trigger did to one rollout, and why."""

    result: RollbackResult
    reason: str
    endpoint_name: str | None = None
    rollout_id: str | None = None
    seconds_to_flip: float | None = None  # only for a flip this invocation observed and recorded


class RollbackService(Struct):
    """Rolls a rollout back on an alarm, an operator's command or the canary judge's FAIL."""

    rollouts: RolloutStore
    endpoints: EndpointControl
    events: EventPublisher
    clock: Clock
    # The promotion service, built on first use: only a redeploy needs it (an operator's rollback with
    # no rollout to flip back), so an alarm's cold start neither imports nor wires it.
    promotions: Callable[[], PromotionService]
    # CloudWatch, built on first use: only an SNS alarm is confirmed (alarm_confirmation.py).
    alarms: Callable[[], AlarmControl]
    sleep: Callable[[float], None] = time.sleep
    # The cost ledger's prices, read on first use: after the flip, never before it (`Rollout Rolled Back`).
    prices: Callable[[], PriceTable] = built_in

    def handle(self, trigger: AlarmStateChange | RollbackRequest) -> list[RollbackOutcome]:
        """One outcome per rollout acted on (an alarm named by several rollouts acts on each)."""
        if isinstance(trigger, AlarmStateChange):
            return self.handle_alarm(trigger)
        return [self.handle_request(trigger)]

    def handle_alarm(self, change: AlarmStateChange) -> list[RollbackOutcome]:
        if change.state != "ALARM":
            logger.info("alarm state recorded, not acted on", extra={"alarm": change.alarm_name, "state": change.state})
            return [RollbackOutcome("ignored", f"{change.alarm_name} is {change.state}")]
        checked = confirmed(self.alarms(), change)
        if isinstance(checked, str):
            return self._refuse_alarm(change, checked)
        change = checked  # an SNS alarm's dimensions are CloudWatch's, never the message's
        cause = RollbackCause(
            trigger=change.alarm_name,
            alarm_name=change.alarm_name,
            reason=change.reason,
            reason_data=change.reason_data,
            requested_at=self._received(change.changed_at),
            event_id=change.event_id,
        )
        own = self._own_rollout(change.alarm_name)
        if own is not None:  # a rollout's own alarm: one read finds it, and it maps to it alone
            return [self._roll_back(*own, cause)]
        targets, why_not = alarm_targets(self.rollouts, change)
        if not targets:
            logger.info("alarm acts on no rollout", extra={"alarm": change.alarm_name, "reason": why_not})
            return [RollbackOutcome("ignored", why_not)]
        outcomes = []
        for endpoint_name, stored in targets:
            # An alarm promotions name (or one found by its dimensions) may outlive a rollout: Lambda's
            # retry of an event that rolled one back must not roll back the next (one Query).
            earlier = self._acted_before(endpoint_name, change.event_id, stored, RECENT) if stored else None
            if earlier is not None:
                why = f"this alarm event already rolled back rollout {earlier.rollout_id}"
                outcomes.append(RollbackOutcome("duplicate", why, endpoint_name, earlier.rollout_id))
            else:
                outcomes.append(self._roll_back(endpoint_name, stored, cause))
        return outcomes

    def _refuse_alarm(self, change: AlarmStateChange, why: str) -> list[RollbackOutcome]:
        """An unconfirmed alarm: announced (`Rollback Skipped`) and kept with the refusals of each
        rollout it names, so the on-call engineer sees the attempt; nothing else is touched."""
        logger.warning("alarm notification not confirmed", extra={"alarm": change.alarm_name, "reason": why})
        own = self._own_rollout(change.alarm_name)
        targets = [own] if own is not None else alarm_targets(self.rollouts, change)[0]
        outcomes = []
        for endpoint_name, stored in targets:
            if stored is not None:
                self.rollouts.commit([refused_alarm(stored.rollout, change, why, self.clock())])
            outcomes.append(self._skip(endpoint_name, stored, change.alarm_name, why))
        return outcomes or [RollbackOutcome("skipped", why)]

    def _own_rollout(self, alarm_name: str) -> tuple[str, StoredRollout | None] | None:
        """(endpoint, rollout) of a per-rollout alarm (its registration names them), else None."""
        registration = self.rollouts.alarm_registration(alarm_name)
        if registration is None:
            return None
        return registration.endpoint_name, self.rollouts.get_rollout(
            registration.endpoint_name, registration.rollout_id
        )

    def handle_request(self, request: RollbackRequest) -> RollbackOutcome:
        holder = self.rollouts.lock_holder(request.endpoint_name)
        stored = self.rollouts.get_rollout(request.endpoint_name, holder) if holder else None
        acted = self._acted_before(request.endpoint_name, request.event_id, stored)
        if acted is not None:
            # A redelivery of a command already carried out: it must act neither on the rollout that
            # came after (another promotion's) nor, with none, roll the endpoint back once more.
            why = f"this command already rolled back rollout {acted.rollout_id}"
            return RollbackOutcome("duplicate", why, request.endpoint_name, acted.rollout_id)
        if stored is None:
            return self._redeploy(request)
        rollout = stored.rollout
        if stored.request.event_id == request.event_id:
            # This very command started the rollout holding the endpoint (a redeploy, on its first
            # delivery): a redelivery is that redeploy, never a rollback of it. Its answer (Rollout
            # Started) may have been lost with the first delivery: publish what it still owes.
            flush(self.rollouts, self.events, request.endpoint_name)
            return RollbackOutcome("duplicate", "this command's redeploy", request.endpoint_name, rollout.rollout_id)
        if request.to_version is not None and request.to_version != rollout.previous_version:
            if rollout.previous_version is None:
                why = (
                    f"rollout {rollout.rollout_id} is the first deployment of {rollout.model_name} on "
                    f"{request.endpoint_name}: version {request.to_version} can be deployed once it ends"
                )
            else:
                why = (
                    f"rollout {rollout.rollout_id} (version {rollout.version} replacing {rollout.previous_version}) "
                    f"holds {request.endpoint_name}: only its baseline version {rollout.previous_version} can be "
                    f"rolled back to now, not version {request.to_version}"
                )
            return self._skip(request.endpoint_name, stored, request.requested_by, why, request.event_id)
        cause = RollbackCause(
            trigger=request.requested_by,
            alarm_name=None,
            reason=request.reason,
            requested_at=self._received(request.requested_at),
            event_id=request.event_id,
        )
        return self._roll_back(request.endpoint_name, stored, cause)

    def handle_analysis(self, stored: StoredRollout, cause: RollbackCause) -> RollbackOutcome:
        """The canary judge failed the candidate: the same fast path as an alarm (abort, flip, incident)."""
        return self._roll_back(stored.rollout.endpoint_name, stored, cause)

    def _acted_before(
        self, endpoint_name: str, event_id: str, stored: StoredRollout | None, newest: int | None = None
    ) -> Rollout | None:
        """Another rollout than `stored` that this very event already rolled back, if any, among the
        endpoint's (`newest`) rollouts. One Query: on an operator's command (rare), or an alarm that is
        not one rollout's own."""
        for earlier in self.rollouts.rollouts_of(endpoint_name, newest):
            cause = earlier.rollout.rollback
            if cause is not None and cause.event_id == event_id:
                mine = stored is not None and earlier.rollout.rollout_id == stored.rollout.rollout_id
                return None if mine else earlier.rollout
        return None

    def _received(self, sent_at: datetime | None) -> datetime:
        """The sender's time, but never later than ours: a clock ahead (or a forged time) cannot
        make the flip look earlier than the alarm, nor push the record's time into the future."""
        now = self.clock()
        return now if sent_at is None else min(sent_at, now)

    # --- acting on a rollout ---------------------------------------------------------------------

    def _roll_back(self, endpoint_name: str, stored: StoredRollout | None, cause: RollbackCause) -> RollbackOutcome:
        for _ in range(MAX_RACE_ROUNDS):
            if stored is None:
                why = f"no rollout on {endpoint_name} to roll back (its watch window is over)"
                return self._skip(endpoint_name, None, cause.trigger, why, _command_id(cause))
            rollout = stored.rollout
            handled = self._handled_already(endpoint_name, stored, cause)
            if handled is not None:
                return handled
            skipped = _why_not(rollout)
            if skipped is not None:
                return self._skip(endpoint_name, stored, cause.trigger, skipped, _command_id(cause))
            aborting = stored
            if rollout.phase is not Phase.ABORTING:  # else: a retry of this event finishes its own abort
                try:
                    aborting = self._abort(stored, cause)
                except ChangeRejected:
                    # A controller tick (or another alarm) wrote first: decide again from the fresh record.
                    stored = self.rollouts.get_rollout(endpoint_name, rollout.rollout_id)
                    continue
            flipped = TrafficFlip(self.endpoints, self.clock, self.sleep).back(rollout)
            if flipped is None:
                return RollbackOutcome(
                    "flip_pending",
                    f"{endpoint_name} cannot take the flip now; the controller flips it as soon as it is InService",
                    endpoint_name,
                    rollout.rollout_id,
                )
            return self._record_flip(aborting, flipped)
        raise TransientError(f"rollback of {endpoint_name} kept losing races; retrying the event")

    def _handled_already(
        self, endpoint_name: str, stored: StoredRollout, cause: RollbackCause
    ) -> RollbackOutcome | None:
        """The answer when the rollout has ended, or is being aborted for another cause."""
        rollout = stored.rollout
        if rollout.phase not in (Phase.FAILED, Phase.ROLLED_BACK) and not (
            rollout.phase is Phase.ABORTING and not _retry_of(rollout.rollback, cause)
        ):
            return None
        # A repeat of an alarm already acted on, or another one: one rollback, one announcement.
        why = f"rollout {rollout.rollout_id} is {rollout.phase}"
        if rollout.rollback is not None and rollout.rollback.event_id == cause.event_id:
            # Lambda's retry of the invocation that recorded it: publish what it may have lost.
            # Another alarm does not: the recording invocation may be publishing right now, and
            # a second publisher would announce it twice. The next tick flushes every outbox.
            flush(self.rollouts, self.events, endpoint_name)
            # This very event is the rollback: a command is answered `Rollout Rolled Back` (its own
            # announcement), never skipped as if someone else had rolled it back.
            return RollbackOutcome("duplicate", f"{why}: this event's rollback", endpoint_name, rollout.rollout_id)
        if cause.command_id is not None:  # an operator's command is answered even then (the CLI waits)
            return self._skip(endpoint_name, stored, cause.trigger, f"{why} already", cause.event_id)
        return RollbackOutcome("duplicate", why, endpoint_name)

    def _abort(self, stored: StoredRollout, cause: RollbackCause) -> StoredRollout:
        """Commit the abort before touching the endpoint: from now on nothing moves the candidate up."""
        rollout = stored.rollout
        # Every cause made today has its time (as given: a judge's may be a tick's, up to 30 s ahead);
        # the type allows none, and then the abort takes ours.
        aborting = request_abort(rollout, reason=cause.summary, now=cause.requested_at or self.clock())
        aborting = aborting.model_copy(update={"rollback": cause})
        # In the watch window the candidate is LIVE already: audit the transition it really makes.
        live_first = rollout.phase in (Phase.WATCHING, Phase.RETIRING)
        statuses = (VersionStatus.DEPLOYING, VersionStatus.LIVE)
        changes: list[Change] = [
            SaveRollout(aborting, stored.request, rollout.revision),
            version_move(
                aborting,
                rollout.version,
                statuses[::-1] if live_first else statuses,
                VersionStatus.ROLLED_BACK,
                stored,
                aborting.updated_at,
                changes=(("rolled_back_by", cause.trigger), ("rollback_reason", cause.reason)),
                cause=(cause.trigger, cause.event_id),
            ),
            endpoint_audit(
                aborting, "rollback requested", cause.summary, aborting.updated_at, cause.event_id, cause.trigger
            ),
        ]
        if live_first and rollout.previous_version is not None:
            # The version on standby takes the traffic back: LIVE again, in the same commit (LIVE
            # already: a watch window begun before STANDBY existed).
            standby = (VersionStatus.STANDBY, VersionStatus.LIVE)
            changes.append(
                version_move(
                    aborting,
                    rollout.previous_version,
                    standby,
                    VersionStatus.LIVE,
                    stored,
                    aborting.updated_at,
                    cause=(cause.trigger, cause.event_id),
                )
            )
        self.rollouts.commit(changes)
        return StoredRollout(aborting, stored.request)

    def _record_flip(self, stored: StoredRollout, flip: Flipped) -> RollbackOutcome:
        """Record the observed flip, unless the controller recorded one first.

        Who reports the rollback is whoever made the flip, not whoever won the record: a controller
        pass that saw this invocation's accepted flip and recorded it first (its incident and
        announcement stand) leaves this invocation `rolled_back`, with the latency of its own flip (the
        one RollbackLatency metric). An invocation that only looked (a retry; another trigger) and
        finds the flip recorded is a duplicate.
        """
        ours = stored.rollout.rollback
        for _ in range(MAX_RACE_ROUNDS):
            rollout, cause = stored.rollout, stored.rollout.rollback
            if rollout.phase is not Phase.ABORTING or cause is None or cause.flipped_at is not None:
                return self._recorded_by_another(rollout, ours, flip)
            flipped = rollout.model_copy(
                update={"rollback": cause.flipped(flip.at, "rollback"), "revision": rollout.revision + 1}
            )
            changes, announced = flip_record(
                flipped,
                self.rollouts.endpoint_audit_trail(rollout.endpoint_name),
                rollout.updated_at,
                cause.event_id,
                self.prices(),
            )
            owed = outbox(flipped, announced)
            try:
                self.rollouts.commit([SaveRollout(flipped, stored.request, rollout.revision), *changes, owed])
            except ChangeRejected:
                fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
                if fresh is None:
                    raise TransientError(f"rollout {rollout.rollout_id} disappeared") from None
                stored = fresh
                continue
            deliver(self.rollouts, self.events, owed)
            seconds = flipped.rollback.seconds_to_flip if flipped.rollback else None
            return RollbackOutcome("rolled_back", cause.summary, rollout.endpoint_name, rollout.rollout_id, seconds)
        raise TransientError(f"recording the rollback of {stored.rollout.endpoint_name} kept losing races")

    @staticmethod
    def _recorded_by_another(rollout: Rollout, ours: RollbackCause | None, flip: Flipped) -> RollbackOutcome:
        """The answer when the record already holds the flip (or the rollout ended) before ours was written."""
        recorded = rollout.rollback
        if (
            flip.made
            and ours is not None
            and recorded is not None
            and recorded.event_id == ours.event_id
            and recorded.flipped_at is not None
            and recorded.flip_seen_by == "controller"
        ):
            # Our request moved the traffic; the controller only wrote it down first. (Another delivery
            # of the same event that recorded its own flip reported it: this one is a duplicate.)
            seconds = ours.flipped(flip.at, "rollback").seconds_to_flip
            return RollbackOutcome("rolled_back", ours.summary, rollout.endpoint_name, rollout.rollout_id, seconds)
        return RollbackOutcome(
            "duplicate", "the flip was recorded first by another pass", rollout.endpoint_name, rollout.rollout_id
        )

    def _skip(
        self, endpoint_name: str, stored: StoredRollout | None, trigger: str, why: str, command_id: str | None = None
    ) -> RollbackOutcome:
        rollout = stored.rollout if stored else None
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
        from shepherd.rollouts.promotion import PromotionRequest  # a rare path: see `promotions`

        outcome = self.promotions().promote(
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
        if outcome.result == "rejected":  # the operator's command gets its own answer, not only the promotion's
            why = f"redeploying {model_name} version {version} was refused: {outcome.reason}"
            return self._skip(request.endpoint_name, None, request.requested_by, why, request.event_id)
        result: Literal["redeploying", "duplicate"] = "redeploying" if outcome.result == "started" else "duplicate"
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


def _command_id(cause: RollbackCause) -> str | None:
    """The operator's command an answer is for (an alarm or the judge is no command)."""
    return cause.command_id


def _retry_of(underway: RollbackCause | None, cause: RollbackCause) -> bool:
    """A redelivery of the event whose abort is recorded but whose flip is not: it finishes it."""
    return underway is not None and underway.flipped_at is None and underway.event_id == cause.event_id


def _why_not(rollout: Rollout) -> str | None:
    if rollout.phase in (Phase.COMPLETED, Phase.RETIRING):
        return f"the watch window of {rollout.rollout_id} is over: version {rollout.version} is the baseline"
    if rollout.is_first_deployment:
        return f"rollout {rollout.rollout_id} is a first deployment: there is no previous version"
    return None
