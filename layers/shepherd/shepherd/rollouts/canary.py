"""The canary judge in a controller pass: look at a baking step's metrics, record the verdict, and
roll the candidate back when it says so; and an operator's resume of a step the judge held.

The verdict is the pure `analysis.judge` on one GetMetricData read; what a verdict means for the step
is `step_analysis.analyse`; the controller (service.py) then advances only on `advance`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from msgspec import Struct

from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.observations import Observations
from shepherd.analysis.ports import MetricsUnavailable, VariantMetrics
from shepherd.contracts import Announcement, CanaryAnalysisCompleted, RolloutHeld, RolloutResumed, RolloutResumeRefused
from shepherd.kernel.clock import Clock, received_time
from shepherd.kernel.errors import TransientError
from shepherd.kernel.publisher import EventPublisher
from shepherd.rollouts.outbox import announced_ids, deliver, deliver_or_keep, outbox
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
from shepherd.rollouts.rollback_cause import ANALYSIS_TRIGGER, RollbackCause
from shepherd.rollouts.step_analysis import StepAnalysis, analyse, charted

logger = logging.getLogger(__name__)

# What an INCONCLUSIVE verdict says when the look could not read the metrics at all.
RESUME = "resume"  # the command whose answers are recorded under its event id (`AnswerCommand`)
UNREADABLE = "the metrics could not be read from CloudWatch: nothing can be decided until they can"


class ResumeRequest(Struct, frozen=True):
    """An operator's ``Model Rollout Resume Requested``."""

    endpoint_name: str
    rollout_id: str
    requested_by: str
    reason: str
    event_id: str
    requested_at: datetime


class CanaryJudge(Struct):
    """Judges the baking step of each judged rollout, once per controller pass, and resumes held ones."""

    rollouts: RolloutStore
    events: EventPublisher
    clock: Clock
    # Both variants' per-minute metrics (None: never readable, as in an outage).
    metrics: VariantMetrics | None = None
    # The rollback function's fast path, for a verdict that fails the candidate: a callable, so that
    # the rollback service is built (by bootstrap) only when a verdict asks for it.
    analysis_rollback: Callable[[StoredRollout, RollbackCause], object] | None = None
    metrics_failures: int = 0  # GetMetricData failures seen by this process (logged each time)

    def judge(self, stored: StoredRollout, now: datetime, event_id: str) -> tuple[StoredRollout, str | None]:
        """Look at the baking (or held) step's metrics, record the verdict, and roll back if it says so.

        The record the controller then decides from holds the step's decision: it advances only on
        ``advance`` and waits otherwise (step_analysis.py). A lost race just keeps the fresh record.
        A change of decision, a hold's start and each of its reminders are announced in the same
        commit (the outbox), so each is announced once even if the process dies after the commit.
        """
        rollout = stored.rollout
        previous = rollout.step_analysis()
        entry = previous
        if previous is None or previous.judging:
            entry = self._look(rollout, previous, now)
            record = rollout.with_step_analysis(entry).model_copy(
                update={"revision": rollout.revision + 1, "updated_at": max(now, rollout.updated_at)}
            )
            config = rollout.strategy.analysis.judge
            announcements, audit = _news(record, previous, entry, config)
            owed = outbox(record, *announcements)
            changes: list[Change] = [SaveRollout(record, stored.request, rollout.revision), owed]
            changes += [endpoint_audit(record, action, detail, now, event_id) for action, detail in audit]
            try:
                self.rollouts.commit(changes)
            except ChangeRejected:
                fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
                return (fresh or stored), "raced"
            deliver_or_keep(self.rollouts, self.events, owed)  # a failed publish waits in the outbox
            stored = StoredRollout(record, stored.request)
        assert entry is not None
        if entry.decision != "rollback" or entry.advisory or self.analysis_rollback is None:
            return stored, None
        cause = RollbackCause(
            trigger=ANALYSIS_TRIGGER,
            alarm_name=None,
            reason=entry.reason,
            requested_at=entry.decided_at or now,
            # The same id on every try, so a retry finishes its own abort rather than being a duplicate.
            event_id=f"{rollout.rollout_id}-analysis-{entry.step}",
            verdict=entry.verdict,
        )
        self.analysis_rollback(stored, cause)
        fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
        return (fresh or stored), "rolled back by analysis"

    def _look(self, rollout: Rollout, previous: StepAnalysis | None, now: datetime) -> StepAnalysis:
        """The judge's verdict on everything since the step began (one GetMetricData call)."""
        # Imported by the first step judged, not at every cold start: most ticks judge nothing, and the
        # rollback and start_rollout functions never do.
        from shepherd.analysis.judge import judge
        from shepherd.analysis.look import fetch_window, look, queries

        config = rollout.strategy.analysis.judge
        metrics = config.judged_metrics()
        baseline = rollout.baseline_variant  # the fresh baseline if the judge asked for one, else the live variant
        assert baseline is not None and rollout.step_started_at is not None and rollout.bake_ends_at is not None
        thresholds = previous.thresholds if previous is not None else {}
        start, end = fetch_window(rollout.step_started_at, now)
        observations: Observations | None
        try:
            if self.metrics is None:
                raise TransientError("no metrics reader is configured")
            observations = self.metrics.variant_series(
                queries(config, thresholds),
                rollout.endpoint_name,
                rollout.candidate.variant_name,
                baseline.variant_name,
                start,
                end,
            )
        except (TransientError, MetricsUnavailable) as failure:
            # No new data, not a verdict: the bake is extended, and an outage never rolls back.
            self.metrics_failures += 1
            logger.warning(
                "canary metrics unavailable; judged as no new data",
                extra={"rollout_id": rollout.rollout_id, "reason": str(failure), "failures": self.metrics_failures},
            )
            observations = None
        seen = (
            look(config, observations, step_started_at=rollout.step_started_at, now=now, thresholds=thresholds)
            if observations is not None
            else None
        )
        charted_series = tuple(metric.charted_series for metric in metrics if metric.kind in ("paired", "tail"))
        return analyse(
            previous,
            step=rollout.step_index,
            percent=rollout.target_percent,
            bake_ends_at=rollout.bake_ends_at,
            config=config,
            verdict=seen.verdict if seen is not None else None,
            unavailable_verdict=judge(metrics, {}, config.false_rollback_rate).model_copy(
                update={"waiting": UNREADABLE}
            ),
            series=charted(observations or {}, charted_series),
            thresholds=seen.thresholds if seen is not None else thresholds,
            now=now,
        )

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


def _news(
    rollout: Rollout, previous: StepAnalysis | None, entry: StepAnalysis, config: JudgeConfig
) -> tuple[list[Announcement], list[tuple[str, str]]]:
    """What a look changed that is announced and audited: a decision, a hold's start, a reminder."""
    announcements: list[Announcement] = []
    audit: list[tuple[str, str]] = []
    if entry.decision != (previous.decision if previous else None):
        announcements.append(_analysis_completed(rollout, entry))
        audit.append(("canary analysis", _analysis_text(entry)))
    if entry.hold_announcements > (previous.hold_announcements if previous else 0):
        held = _held(rollout, entry, config)
        announcements.append(held)
        if held.announcement == 1:
            audit.append(("held", f"held at {entry.percent}% until {held.deadline.isoformat()}: {held.reason}"))
    if entry.hold_timed_out and not (previous and previous.hold_timed_out):
        audit.append(("hold timed out", f"{entry.reason} -> {entry.decision} (on_hold_timeout)"))
    return announcements, audit


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


def _analysis_completed(rollout: Rollout, entry: StepAnalysis) -> CanaryAnalysisCompleted:
    assert entry.decision is not None
    return CanaryAnalysisCompleted(
        **announced_ids(rollout),
        step=entry.step,
        percent=entry.percent,
        outcome=entry.verdict.outcome,
        decision=entry.decision,
        critical_failure=entry.verdict.critical_failure,
        minutes=entry.verdict.minutes,
        extended_seconds=entry.extended_seconds,
        metrics=list(entry.verdict.metrics),
        waiting=entry.verdict.waiting,
        advisory=entry.advisory,
    )


def _analysis_text(entry: StepAnalysis) -> str:
    table = ", ".join(f"{item.metric} {item.outcome}" for item in entry.verdict.metrics)
    advisory = " (advisory: not acted on)" if entry.advisory else ""
    return f"{entry.verdict.outcome} at {entry.percent}% -> {entry.decision}{advisory} ({table})"
