"""The gating alarms as a controller pass reads them: firing, or missing (issue 20, point 6).

Fail closed: an alarm a rollout is gated by that CloudWatch does not return (deleted, or never
created) holds the rollout exactly as a firing one does, never counts as "not firing". The hold is
level-triggered like any alarm's: re-read at every pass, it ends when the alarm exists again and is
not in ALARM. It is said once, when it starts (or the set of missing alarms changes): the record keeps
the missing names, an audit entry says so and `Gating Alarms Missing` is announced in the same commit;
their return is audited too ("gating alarms back").
"""

from __future__ import annotations

import logging
from datetime import datetime

from msgspec import Struct

from shepherd.contracts import Announcement, GatingAlarmsMissing
from shepherd.rollouts.actions import Action, RecordProgress
from shepherd.rollouts.outbox import announced_ids
from shepherd.rollouts.ports import AlarmControl
from shepherd.rollouts.record import Phase, Rollout

logger = logging.getLogger(__name__)


class AlarmGate(Struct, frozen=True):
    firing: frozenset[str]
    missing: frozenset[str]

    @property
    def holding(self) -> frozenset[str]:
        """Every alarm that holds an advance: what the controller's decision takes as firing."""
        return self.firing | self.missing


class GateChanged(RecordProgress, frozen=True):
    """Only a record write: the rollout's missing gating alarms changed (a hold starts or ends)."""


def read_gate(alarms: AlarmControl, names: tuple[str, ...]) -> AlarmGate:
    """One DescribeAlarms (per 100 names): a name it does not return is a missing alarm."""
    if not names:
        return AlarmGate(frozenset(), frozenset())
    states = alarms.alarm_states(names)
    firing = frozenset(name for name, state in states.items() if state == "ALARM")
    return AlarmGate(firing, frozenset(names) - states.keys())


def gate_changed(rollout: Rollout, gate: AlarmGate, now: datetime) -> GateChanged | None:
    """The record write that says a hold by missing alarms began, changed or ended; None if nothing did.

    Only where alarms gate anything: not once an abort began (alarms hold only advances), nor for a
    first deployment (no alarm gate), nor on a stale tick (the decision waits it out)."""
    gated = rollout.phase is not Phase.ABORTING and not rollout.is_first_deployment
    missing = tuple(sorted(gate.missing)) if gated else ()
    if missing == rollout.missing_alarms or now < rollout.updated_at or rollout.phase.is_terminal:
        return None
    if missing:
        logger.warning("gating alarms missing: the rollout holds", extra={"rollout_id": rollout.rollout_id})
    update = {"missing_alarms": missing, "revision": rollout.revision + 1, "updated_at": now, "failing_since": None}
    return GateChanged(_note(rollout, missing), rollout.model_copy(update=update))


def audit_action(change: GateChanged) -> str:
    return "held" if change.next.missing_alarms else "gating alarms back"


def announcements(change: Action) -> list[Announcement]:
    """`Gating Alarms Missing` for a hold that begins (or changes), nothing for any other action."""
    if not isinstance(change, GateChanged) or not change.next.missing_alarms:
        return []
    rollout = change.next
    return [
        GatingAlarmsMissing(
            **announced_ids(rollout),
            percent=rollout.target_percent,
            missing_alarms=list(rollout.missing_alarms),
            reason=change.note,
        )
    ]


def _note(rollout: Rollout, missing: tuple[str, ...]) -> str:
    if not missing:
        back = ", ".join(rollout.missing_alarms)
        return f"gating alarms exist again: {back}; the rollout goes on when none is in ALARM"
    which = (
        f"gating alarm {missing[0]} is missing"
        if len(missing) == 1
        else f"gating alarms {', '.join(missing)} are missing"
    )
    return (
        f"held at {rollout.target_percent}%: {which} (deleted, or never created), and a missing alarm "
        "cannot say the candidate is healthy; recreate it to go on, or roll back"
    )
