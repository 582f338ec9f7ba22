"""A rollback's traffic flip: every request to the live variant, and what an observed flip owes.

The flip is one UpdateEndpointWeightsAndCapacities. SageMaker refuses it while the endpoint is
Updating (a step in flight, another flip): then the endpoint is described again and the flip retried,
for up to `BUSY_WAIT_SECONDS`. A flip counts as observed when SageMaker accepted the call, or when
the endpoint, InService, is seen giving the candidate no traffic; only an observed flip gets a
`flipped_at`, an incident and `Rollout Rolled Back`. Used by the rollback function right after it
records the abort, and by the controller, which flips an aborting rollback the rollback function
could not (the endpoint stayed busy) and flips back at once after a step that lost a race to one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import Enum

import msgspec.structs
from msgspec import Struct

from shepherd.capacity.prices import PriceTable
from shepherd.contracts import Announcement, RolloutRolledBack
from shepherd.kernel.clock import Clock
from shepherd.kernel.errors import ConflictError, TransientError
from shepherd.rollouts.actions import Action, FinishRollback, ResizeVariants, ShiftTraffic, UpdateEndpoint, Wait
from shepherd.rollouts.cost_tracking import cost_report
from shepherd.rollouts.errors import EndpointRequestRefused
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint
from shepherd.rollouts.ports import (
    Change,
    EndpointAuditEntry,
    EndpointControl,
    Incident,
    RecordIncident,
    endpoint_audit,
)
from shepherd.rollouts.record import Phase, Rollout
from shepherd.rollouts.rollback_cause import RollbackCause

logger = logging.getLogger(__name__)

FLIP_ATTEMPTS = 4  # on top of the SDK's own retries: throttling on the flip must not lose the rollback
# A weight change settles in seconds; an endpoint update takes minutes, and then the controller flips.
# The rollback function's timeout (30 s) bounds this, with room for its two writes after the flip.
BUSY_WAIT_SECONDS = 20.0
BUSY_POLL_SECONDS = 1.0

_BUSY = frozenset(
    {EndpointStatus.CREATING, EndpointStatus.UPDATING, EndpointStatus.SYSTEM_UPDATING, EndpointStatus.ROLLING_BACK}
)


class Traffic(Enum):
    """What an observed endpoint means for flipping a rollout's candidate out."""

    OFF = "the candidate has no traffic"
    ON = "the candidate has traffic and can be flipped out"
    BUSY = "the endpoint is changing: SageMaker refuses a flip until it is InService"
    STUCK = "no weight change can take the candidate out (gone, failed, or no live variant left)"


def traffic(rollout: Rollout, observed: ObservedEndpoint | None) -> Traffic:
    if observed is None:
        return Traffic.STUCK
    if observed.status in _BUSY:
        return Traffic.BUSY
    if observed.status is not EndpointStatus.IN_SERVICE:
        return Traffic.STUCK
    if not observed.weight_of(rollout.candidate.variant_name):  # absent, or weight 0
        return Traffic.OFF
    if rollout.live is None or observed.weight_of(rollout.live.variant_name) is None:
        return Traffic.STUCK  # e.g. on the final config: only an UpdateEndpoint (the controller's restore) helps
    return Traffic.ON


class Flipped(Struct, frozen=True):
    """A flip observed: when, and whether this caller's own request made it (SageMaker accepted it)
    rather than a look finding the candidate out already (someone else's flip)."""

    at: datetime
    made: bool


class _Patience(Struct):
    """How much longer a busy endpoint is waited for."""

    sleep: Callable[[float], None]
    seconds_left: float

    def wait(self) -> bool:
        if self.seconds_left <= 0:
            return False
        self.sleep(BUSY_POLL_SECONDS)
        self.seconds_left -= BUSY_POLL_SECONDS
        return True


class TrafficFlip(Struct, frozen=True):
    """Puts the candidate's traffic back on the live variant, waiting out a busy endpoint."""

    endpoints: EndpointControl
    clock: Clock
    sleep: Callable[[float], None]
    busy_wait_seconds: float = BUSY_WAIT_SECONDS

    def back(self, rollout: Rollout) -> Flipped | None:
        """All traffic to `rollout`'s live variant: when that was observed (and by whose hand), or None
        if not in time.

        SHIFTING and WATCHING flip at once (the fast path: no read first). Other phases look first:
        before its first step the candidate may have no traffic at all, and an aborting rollout's
        endpoint may already be flipped, or on a config only the controller's restore can undo.
        A flip SageMaker refuses for good is not retried: None, unless one look shows the candidate
        out already. Raises TransientError if throttling or 5xx outlast `FLIP_ATTEMPTS`.
        """
        patience = _Patience(self.sleep, self.busy_wait_seconds)
        look = rollout.phase not in (Phase.SHIFTING, Phase.WATCHING)
        while True:
            if look:
                seen = self._look(rollout, patience)
                if seen is Traffic.OFF:
                    return Flipped(self.clock(), made=False)
                if seen is not Traffic.ON:
                    logger.warning("flip left to the controller", extra={"rollout_id": rollout.rollout_id})
                    return None
            try:
                if self._set_weights(rollout):
                    return Flipped(self.clock(), made=True)
            except EndpointRequestRefused as refusal:
                # Refused for good (the endpoint deleted outside Shepherd, a permission taken away):
                # asking again gets the same answer, and raising would end the caller (a controller
                # pass, the rollback function) before anyone looks at the endpoint. One look says
                # whether the candidate is out anyway; if not, the controller takes over from what
                # it sees (a gone endpoint finishes the rollout, a refused restore fails it).
                logger.warning(
                    "flip refused; left to the controller",
                    extra={"rollout_id": rollout.rollout_id, "reason": refusal.reason},
                )
                seen = traffic(rollout, self.endpoints.describe(rollout.endpoint_name))
                return Flipped(self.clock(), made=False) if seen is Traffic.OFF else None
            # Refused as in progress. After a look that said InService (a describe lagging behind),
            # wait before the next try, so the loop cannot spin.
            if look and not patience.wait():
                return None
            look = True

    def _look(self, rollout: Rollout, patience: _Patience) -> Traffic:
        """Describe the endpoint, again and again while it is busy and patience lasts."""
        while True:
            seen = traffic(rollout, self.endpoints.describe(rollout.endpoint_name))
            if seen is not Traffic.BUSY or not patience.wait():
                return seen

    def _set_weights(self, rollout: Rollout) -> bool:
        """One flip request, retried on throttling and 5xx; False if refused as in progress."""
        assert rollout.live is not None
        weights = _flipped(rollout)
        for attempt in range(FLIP_ATTEMPTS):
            try:
                self.endpoints.set_weights(rollout.endpoint_name, weights)
                return True
            except ConflictError:  # "Cannot update in-progress endpoint"
                return False
            except TransientError:
                if attempt == FLIP_ATTEMPTS - 1:
                    raise
                self.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")


# --- what an observed flip owes ---------------------------------------------------------------------


def flip_record(
    flipped: Rollout, timeline: list[EndpointAuditEntry], at: datetime, event_id: str, prices: PriceTable
) -> tuple[list[Change], Announcement]:
    """The incident and audit entry of `flipped` (its `rollback.flipped_at` set), and its announcement
    (with the cost ledger as of the flip, priced from `prices`)."""
    cause = flipped.rollback
    assert cause is not None and cause.flipped_at is not None
    assert flipped.live is not None and flipped.previous_version is not None
    incident = Incident(
        endpoint_name=flipped.endpoint_name,
        rollout_id=flipped.rollout_id,
        model_name=flipped.model_name,
        version=flipped.version,
        restored_version=flipped.previous_version,
        trigger=cause.trigger,
        alarm_name=cause.alarm_name,
        state_reason=cause.reason,
        state_reason_data=cause.reason_data,
        alarm_changed_at=cause.requested_at,
        flipped_at=cause.flipped_at,
        seconds_to_flip=cause.seconds_to_flip,
        # The step the rollout asked for: its record may not yet have seen the endpoint reach it.
        weights_before=_asked(flipped),
        weights_after=_flipped(flipped),
        timeline=[entry for entry in timeline if entry.rollout_id == flipped.rollout_id],
        analysis=cause.verdict,
    )
    detail = f"all traffic on version {flipped.previous_version} at {cause.flipped_at.isoformat()}"
    traffic = (flipped.target_percent, 0)  # as weights_before: the step asked for when the alarm came
    audit = endpoint_audit(flipped, "traffic flipped back", detail, at, event_id, cause.trigger, traffic=traffic)
    # The ledger as of `at` (the abort's time, or the pass's): the times the ledger was charged at,
    # whereas `flipped_at` is the flipping function's own clock.
    return [RecordIncident(incident), audit], rolled_back(flipped, cause, prices, at)


def _flipped(rollout: Rollout) -> dict[str, float]:
    """All traffic on the live variant: the candidate, and the fresh baseline if any, at 0 in the same call."""
    assert rollout.live is not None
    weights = {rollout.live.variant_name: 1.0, rollout.candidate.variant_name: 0.0}
    if rollout.fresh_baseline is not None:
        weights[rollout.fresh_baseline.variant_name] = 0.0
    return weights


def _asked(rollout: Rollout) -> dict[str, float]:
    """The weights of the step the rollout is at or moving to."""
    assert rollout.live is not None
    percent, fresh = rollout.target_percent, rollout.fresh_percent
    weights = {rollout.live.variant_name: (100 - percent - fresh) / 100, rollout.candidate.variant_name: percent / 100}
    if rollout.fresh_baseline is not None:
        weights[rollout.fresh_baseline.variant_name] = fresh / 100
    return weights


def rolled_back(rollout: Rollout, cause: RollbackCause, prices: PriceTable, at: datetime) -> RolloutRolledBack:
    """`Rollout Rolled Back`, its cost ledger as of `at` (the flip, or the end when none was seen)."""
    assert rollout.previous_version is not None
    return RolloutRolledBack(
        rollout_id=rollout.rollout_id,
        endpoint_name=rollout.endpoint_name,
        model_name=rollout.model_name,
        version=rollout.version,
        restored_version=rollout.previous_version,
        trigger=cause.trigger,
        reason=cause.reason,
        seconds_to_flip=cause.seconds_to_flip,
        command_id=cause.command_id,  # an operator's request is answered
        cost=cost_report(rollout, prices, at),
    )


# --- the controller's part ---------------------------------------------------------------------------


def moves_forward(action: Action) -> bool:
    """A change an abort would have to undo: a step up, or an endpoint update towards the candidate."""
    if isinstance(action, ShiftTraffic):
        return action.to_percent > action.from_percent
    if isinstance(action, ResizeVariants):
        return True  # capacity for a step up: pointless (and paid for) once a rollback aborted it
    return isinstance(action, UpdateEndpoint) and action.purpose in ("start", "retire")


def observe_flip(action: Action, observed: ObservedEndpoint | None, clock: Clock) -> Action:
    """Stamp an aborting rollback's next record with its flip, if this pass made or saw it first."""
    if isinstance(action, Wait):
        return action
    cause = action.next.rollback
    if cause is None or cause.flipped_at is not None:
        return action
    flipped_now = isinstance(action, ShiftTraffic) and action.to_percent == 0  # carried out: accepted
    if not flipped_now and traffic(action.next, observed) is not Traffic.OFF:
        return action
    return msgspec.structs.replace(
        action, next=action.next.model_copy(update={"rollback": cause.flipped(clock(), "controller")})
    )


def rollback_consequences(
    before: Rollout,
    action: Action,
    trail: Callable[[str], list[EndpointAuditEntry]],
    at: datetime,
    event_id: str,
    prices: Callable[[], PriceTable],
) -> tuple[list[Change], list[Announcement]]:
    """What a controller step owes a rollback: its flip's record, or (ending without one) its announcement."""
    if isinstance(action, Wait):
        return [], []
    after = action.next
    cause = after.rollback
    if cause is None:
        return [], []
    if before.rollback is not None and before.rollback.flipped_at is None and cause.flipped_at is not None:
        changes, announced = flip_record(after, trail(after.endpoint_name), at, event_id, prices())
        return changes, [announced]
    if isinstance(action, FinishRollback) and cause.flipped_at is None:
        return [], [rolled_back(after, cause, prices(), at)]  # ended without a flip ever seen: no seconds_to_flip
    return [], []
