"""Gates and resumes: where a step that waits for a person or a verdict is decided.

A step may move on only when its gate opens. :func:`gate` is what `decide` asks of a step whose bake
is over: a judged step waits for its canary analysis to say advance (judging.py looks each pass;
step_analysis.py turns the verdict into a decision). A ``hold`` waits for a PASS, a FAIL, its deadline
(``max_hold_seconds``, then ``on_hold_timeout``) or an operator: :class:`Holds` resumes it on
``Model Rollout Resume Requested``, answering ``Rollout Resumed`` or ``Rollout Resume Refused``.
While held, ``Rollout Held`` is announced at the start and every ``hold_reminder_seconds``
(:func:`hold_news`). Gating alarms hold every advance as well (alarm_gate.py), with no resume.
"""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct

from shepherd.analysis.config import JudgeConfig
from shepherd.contracts import Announcement, RolloutHeld, RolloutResumed, RolloutResumeRefused
from shepherd.kernel.clock import Clock, received_time
from shepherd.kernel.publisher import EventPublisher
from shepherd.rollouts.actions import Wait
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
from shepherd.rollouts.record import Rollout
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


def gate(rollout: Rollout) -> Wait | None:
    """What holds a step whose bake is over (None: nothing, it may advance), for `decide`.

    A judged step moves on only once its canary analysis says advance (judging.py, step_analysis.py);
    any other step has no gate. In advisory mode the judge only says what it would do: the bake and
    the alarms decide alone.
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
        """An operator resumes a rollout the judge held: its step's decision becomes advance.

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
        done = (
            next((e for e in stored.rollout.analysis if e.resume_command == request.event_id), None) if stored else None
        )
        if stored is not None and done is not None:  # resumed before its answer was recorded
            answer = _resumed(stored.rollout, done.percent, request)
            self.events.publish(answer)
            return answer.DETAIL_TYPE
        entry = stored.rollout.step_analysis() if stored and stored.rollout.judged else None
        if stored is None or entry is None or entry.decision != "hold" or entry.advisory:
            refusal = RolloutResumeRefused(
                endpoint_name=request.endpoint_name,
                rollout_id=request.rollout_id,
                reason=_not_held(request, stored, entry),
                command_id=request.event_id,
            )
            return self._answer(request, refusal, [])
        rollout = stored.rollout
        resumed = entry.model_copy(
            update={"decision": "advance", "resumed_by": request.requested_by, "resume_command": request.event_id}
        )
        at = max(received_time(request.requested_at, self.clock()), rollout.updated_at)
        record = rollout.with_step_analysis(resumed).model_copy(
            update={"revision": rollout.revision + 1, "updated_at": at}
        )
        detail = f"resumed at {rollout.target_percent}% ({entry.verdict.outcome}): {request.reason}"
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


def _not_held(request: ResumeRequest, stored: StoredRollout | None, entry: StepAnalysis | None) -> str:
    if stored is None:
        return f"{request.endpoint_name} has no rollout {request.rollout_id}"
    if entry is not None and entry.advisory:
        return f"rollout {request.rollout_id} runs the canary judge in advisory mode: nothing holds it"
    return f"rollout {request.rollout_id} is {stored.rollout.phase}, not held by canary analysis"


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
