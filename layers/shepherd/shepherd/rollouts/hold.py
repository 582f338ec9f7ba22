"""Gates and resumes: where a step that waits for a person or a verdict is decided.

A step may move on only when its gate opens. :func:`gate` is what `decide` asks before every next
step (the first one too): a judged step waits for its canary analysis to say advance (judging.py
looks each pass; step_analysis.py turns the verdict into a decision). A ``hold`` waits for a PASS, a
FAIL, its deadline (``max_hold_seconds``, then ``on_hold_timeout``) or an operator: :class:`Holds`
resumes it on ``Model Rollout Resume Requested``, answering ``Rollout Resumed`` or ``Rollout Resume
Refused``. While held, ``Rollout Held`` is announced at the start and every ``hold_reminder_seconds``
(:func:`hold_news`). Gating alarms hold every advance as well (alarm_gate.py), with no resume.

A step with a manual gate (``TrafficStep.gate``, e.g. a ``blue_green`` rollout's 100%, the candidate
up at weight 0 meanwhile) is requested only once an operator resumes the rollout. Its hold has the
judge's timing (``analysis.judge``: ``max_hold_seconds``, ``hold_reminder_seconds``,
``on_hold_timeout``, whether the judge is on or not): the gate's start, each reminder and its timeout
are record-only steps (:class:`GateNews`, kept as the record's ``gates``), audited and announced in
their commit (:func:`gate_announcements`). At the deadline ``advance`` opens it; ``rollback`` ends
the rollout ``FAILED`` (a restore, then ``Rollout Failed``): the candidate never took traffic.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from msgspec import Struct

from shepherd.analysis.config import JudgeConfig
from shepherd.contracts import Announcement, RolloutHeld, RolloutResumed, RolloutResumeRefused
from shepherd.kernel.clock import Clock, received_time
from shepherd.kernel.publisher import EventPublisher
from shepherd.rollouts.actions import Action, RecordProgress, Wait
from shepherd.rollouts.outbox import announced_ids, deliver, outbox
from shepherd.rollouts.ports import (
    Announce,
    AnswerCommand,
    Change,
    ChangeRejected,
    RolloutStore,
    SaveRollout,
    StoredRollout,
    endpoint_audit,
)
from shepherd.rollouts.record import ManualGate, Phase, Rollout, to_aborting
from shepherd.rollouts.step_analysis import StepAnalysis

RESUME = "resume"  # the command whose answers are recorded under its event id (`AnswerCommand`)


class ResumeRequest(Struct, frozen=True):
    """An operator's ``Model Rollout Resume Requested``."""

    endpoint_name: str
    rollout_id: str
    requested_by: str
    reason: str
    event_id: str
    requested_at: datetime


class GateNews(RecordProgress, frozen=True):
    """Only a record write: a manual gate's hold began, is announced again, or timed out and opened."""


def gate(rollout: Rollout, now: datetime) -> Wait | RecordProgress | None:
    """What holds the rollout before its next step, once the step it is at is baked (None: nothing,
    it may advance), for `decide`: the step's canary analysis, then the next step's manual gate."""
    judged = _judged_gate(rollout)
    return judged if judged is not None else _manual_gate(rollout, now)


def _judged_gate(rollout: Rollout) -> Wait | None:
    """A judged step moves on only once its canary analysis says advance (judging.py,
    step_analysis.py); any other step has no such gate. In advisory mode the judge only says what it
    would do: the bake and the alarms decide alone.
    """
    config = rollout.strategy.analysis.judge
    if not rollout.judged or config.mode == "advisory":
        return None
    analysis = rollout.step_analysis()
    percent = rollout.target_percent
    if analysis is None or analysis.decision is None:
        outcome = analysis.verdict.outcome if analysis else "no verdict yet"
        return Wait(f"bake of {percent}% extended: canary analysis {outcome}")
    if analysis.decision == "hold":
        # Judged again every pass (judging.py): a FAIL, a PASS or the deadline ends the hold.
        deadline = analysis.hold_deadline(config)
        until = f" until {deadline.isoformat()} (then {config.on_hold_timeout})" if deadline else ""
        return Wait(
            f"held at {percent}% by canary analysis ({analysis.verdict.outcome}){until}: "
            "waiting for a verdict or shepherd resume"
        )
    if analysis.decision == "rollback":
        return Wait(f"rolling back: {analysis.reason}")  # the rollback function aborts the rollout
    return None


def _manual_gate(rollout: Rollout, now: datetime) -> Wait | RecordProgress | None:
    """The next step's manual gate: recorded and announced when it starts holding, announced again
    every ``hold_reminder_seconds``, opened by a resume or by its deadline (module docstring)."""
    step = rollout.step_index + 1
    if step >= len(rollout.plan) or rollout.plan[step].gate != "manual":
        return None
    config = rollout.strategy.analysis.judge
    held = rollout.gate_of(step)
    if held is None:
        started = ManualGate(step=step, held_since=now, announced_at=now)
        return GateNews(_manual_reason(rollout, step), rollout.with_gate(started))
    if held.opened_at is not None:
        return None
    deadline = held.held_since + timedelta(seconds=config.max_hold_seconds)
    if now >= deadline:
        waited = f"no operator resumed the rollout within {config.max_hold_seconds} s of {held.held_since.isoformat()}"
        timed_out = held.model_copy(update={"timed_out": True, "opened_at": now})
        if config.on_hold_timeout == "advance":
            return GateNews(f"{waited}: advancing (on_hold_timeout)", rollout.with_gate(timed_out))
        reason = f"{waited} (on_hold_timeout: rollback)"
        return RecordProgress(
            f"aborting: {reason}", to_aborting(rollout.with_gate(timed_out), reason, Phase.FAILED, now)
        )
    if now >= held.announced_at + timedelta(seconds=config.hold_reminder_seconds):
        reminder = held.model_copy(update={"announcements": held.announcements + 1, "announced_at": now})
        return GateNews(_manual_reason(rollout, step), rollout.with_gate(reminder))
    return Wait(f"{_manual_reason(rollout, step)} (until {deadline.isoformat()}, then {config.on_hold_timeout})")


def _manual_reason(rollout: Rollout, step: int) -> str:
    return (
        f"held at {rollout.target_percent}% by a manual gate: waiting for an operator "
        f"(shepherd resume) to move traffic to {rollout.plan[step].percent}%"
    )


def gate_audit_action(news: GateNews) -> str:
    """The audit entry's action for a manual gate's record-only step."""
    held = news.next.gate_of(news.next.step_index + 1)
    if held is not None and held.timed_out:
        return "hold timed out"
    return "held" if held is None or held.announcements == 1 else "held (reminder)"


def gate_announcements(action: Action) -> list[Announcement]:
    """`Rollout Held` for a manual gate's hold that begins or is announced again; nothing otherwise."""
    if not isinstance(action, GateNews):
        return []
    rollout = action.next
    held = rollout.gate_of(rollout.step_index + 1)
    if held is None or held.opened_at is not None:
        return []
    config = rollout.strategy.analysis.judge
    return [
        RolloutHeld(
            **announced_ids(rollout),
            step=held.step,
            percent=rollout.target_percent,
            held_since=held.held_since,
            deadline=held.held_since + timedelta(seconds=config.max_hold_seconds),
            on_timeout=config.on_hold_timeout,
            reason=action.note,
            announcement=held.announcements,
            gate="manual",
        )
    ]


def hold_news(
    rollout: Rollout, previous: StepAnalysis | None, entry: StepAnalysis, config: JudgeConfig
) -> tuple[list[Announcement], list[tuple[str, str]]]:
    """What a look changed in a hold: its start and each reminder (`Rollout Held`), its time-out."""
    announcements: list[Announcement] = []
    audit: list[tuple[str, str]] = []
    if entry.hold_announcements > (previous.hold_announcements if previous else 0):
        held = _held(rollout, entry, config)
        announcements.append(held)
        if held.announcement == 1:
            audit.append(("held", f"held at {entry.percent}% until {held.deadline.isoformat()}: {held.reason}"))
    if entry.hold_timed_out and not (previous and previous.hold_timed_out):
        audit.append(("hold timed out", f"{entry.reason} -> {entry.decision} (on_hold_timeout)"))
    return announcements, audit


class Holds(Struct):
    """Resumes a step held for an operator (`Model Rollout Resume Requested`)."""

    rollouts: RolloutStore
    events: EventPublisher
    clock: Clock

    def resume(self, request: ResumeRequest) -> str:
        """An operator resumes a rollout the judge or a manual gate holds: it may move on.

        Answered either way (the CLI waits): ``Rollout Resumed`` through the outbox with the record,
        or ``Rollout Resume Refused`` saying why. Either answer is recorded with the command's id
        (`AnswerCommand`, only if it has none), and every later delivery repeats it: a refused resume
        delivered again once the step is held is refused again, never resumed. Returns the answer's
        detail-type.
        """
        answered = self.rollouts.command_answer(request.endpoint_name, RESUME, request.event_id)
        if answered is not None:
            self.events.publish(answered)  # at least once, like the first answer
            return answered.DETAIL_TYPE
        stored = self.rollouts.get_rollout(request.endpoint_name, request.rollout_id)
        done = _resumed_by(stored.rollout, request.event_id) if stored else None
        if stored is not None and done is not None:  # resumed before its answer was recorded
            answer = _resumed(stored.rollout, done, request)
            self.events.publish(answer)
            return answer.DETAIL_TYPE
        entry = stored.rollout.step_analysis() if stored and stored.rollout.judged else None
        manual = _held_gate(stored.rollout) if stored else None
        judge_holds = entry is not None and entry.decision == "hold" and not entry.advisory
        if stored is None or not (judge_holds or manual is not None):
            refusal = RolloutResumeRefused(
                endpoint_name=request.endpoint_name,
                rollout_id=request.rollout_id,
                reason=_not_held(request, stored, entry),
                command_id=request.event_id,
            )
            return self._answer(request, refusal, [])
        rollout = stored.rollout
        at = max(received_time(request.requested_at, self.clock()), rollout.updated_at)
        if manual is not None:
            opened = manual.model_copy(
                update={"opened_at": at, "opened_by": request.requested_by, "resume_command": request.event_id}
            )
            resumed_record = rollout.with_gate(opened)
            held_by = "a manual gate"
        else:
            assert entry is not None
            resumed = entry.model_copy(
                update={"decision": "advance", "resumed_by": request.requested_by, "resume_command": request.event_id}
            )
            resumed_record = rollout.with_step_analysis(resumed)
            held_by = entry.verdict.outcome
        record = resumed_record.model_copy(update={"revision": rollout.revision + 1, "updated_at": at})
        detail = f"resumed at {rollout.target_percent}% ({held_by}): {request.reason}"
        answer = _resumed(record, rollout.target_percent, request)
        owed = outbox(record, answer)
        changes: list[Change] = [
            SaveRollout(record, stored.request, rollout.revision),
            endpoint_audit(record, "resumed", detail, at, request.event_id, request.requested_by),
            owed,
        ]
        # A lost SaveRollout (a tick wrote meanwhile) propagates: the event is retried on the fresh record.
        return self._answer(request, answer, changes, owed)

    def _answer(
        self,
        request: ResumeRequest,
        answer: RolloutResumed | RolloutResumeRefused,
        changes: list[Change],
        owed: Announce | None = None,
    ) -> str:
        """Record the answer with what it answers, then publish it; a delivery that answered first wins."""
        recorded = AnswerCommand(request.endpoint_name, RESUME, request.event_id, answer)
        try:
            self.rollouts.commit([recorded, *changes])
        except ChangeRejected as lost:
            if lost.change != recorded:
                raise
            first = self.rollouts.command_answer(request.endpoint_name, RESUME, request.event_id)
            if first is None:  # answers are never deleted: a lost condition on one that is gone is a bug
                raise
            self.events.publish(first)
            return first.DETAIL_TYPE
        if owed is None:
            self.events.publish(answer)
        else:
            deliver(self.rollouts, self.events, owed)
        return answer.DETAIL_TYPE


def _held_gate(rollout: Rollout) -> ManualGate | None:
    """The manual gate holding the rollout now (recorded, not opened), if one does."""
    if rollout.phase not in (Phase.STARTING, Phase.SHIFTING) or rollout.pending_since is not None:
        return None
    held = rollout.gate_of(rollout.step_index + 1)
    return held if held is not None and held.opened_at is None else None


def _resumed_by(rollout: Rollout, command: str) -> int | None:
    """The candidate's percent when the resume ``command`` opened a hold of this rollout, if it did."""
    judged = next((e.percent for e in rollout.analysis if e.resume_command == command), None)
    if judged is not None:
        return judged
    opened = next((g.step for g in rollout.gates if g.resume_command == command), None)
    return None if opened is None else (rollout.plan[opened - 1].percent if opened > 0 else 0)


def _not_held(request: ResumeRequest, stored: StoredRollout | None, entry: StepAnalysis | None) -> str:
    if stored is None:
        return f"{request.endpoint_name} has no rollout {request.rollout_id}"
    if entry is not None and entry.advisory:
        return f"rollout {request.rollout_id} runs the canary judge in advisory mode: nothing holds it"
    return f"rollout {request.rollout_id} is {stored.rollout.phase}, not held by canary analysis or a manual gate"


def _resumed(rollout: Rollout, percent: int, request: ResumeRequest) -> RolloutResumed:
    return RolloutResumed(
        **announced_ids(rollout),
        percent=percent,
        requested_by=request.requested_by,
        reason=request.reason,
        command_id=request.event_id,
    )


def _held(rollout: Rollout, entry: StepAnalysis, config: JudgeConfig) -> RolloutHeld:
    assert entry.held_since is not None
    deadline = entry.hold_deadline(config)
    assert deadline is not None
    return RolloutHeld(
        **announced_ids(rollout),
        step=entry.step,
        percent=entry.percent,
        held_since=entry.held_since,
        deadline=deadline,
        on_timeout=config.on_hold_timeout,
        outcome=entry.verdict.outcome,
        reason=entry.hold_reason,
        waiting=entry.verdict.waiting,
        announcement=entry.hold_announcements,
    )
