"""The canary judge in a pass: look at a baking step's metrics, record the verdict, and roll the
candidate back when it says so.

The verdict is the pure `analysis.judge` on one GetMetricData read; what a verdict means for the step
is `step_analysis.analyse`; what holds the step until then, and an operator's resume, is hold.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from msgspec import Struct

from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.observations import Observations
from shepherd.analysis.ports import MetricsUnavailable, VariantMetrics
from shepherd.contracts import Announcement, CanaryAnalysisCompleted
from shepherd.kernel.clock import Clock
from shepherd.kernel.errors import TransientError
from shepherd.kernel.publisher import EventPublisher
from shepherd.rollouts.hold import hold_news
from shepherd.rollouts.outbox import announced_ids, deliver_or_keep, outbox
from shepherd.rollouts.ports import Change, ChangeRejected, RolloutStore, SaveRollout, StoredRollout, endpoint_audit
from shepherd.rollouts.record import Rollout
from shepherd.rollouts.rollback_cause import ANALYSIS_TRIGGER, RollbackCause
from shepherd.rollouts.step_analysis import StepAnalysis, analyse, charted

logger = logging.getLogger(__name__)

# What an INCONCLUSIVE verdict says when the look could not read the metrics at all.
UNREADABLE = "the metrics could not be read from CloudWatch: nothing can be decided until they can"


class CanaryJudge(Struct):
    """Judges the baking step of each judged rollout, once per pass (reconcile.py)."""

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


def _news(
    rollout: Rollout, previous: StepAnalysis | None, entry: StepAnalysis, config: JudgeConfig
) -> tuple[list[Announcement], list[tuple[str, str]]]:
    """What a look changed that is announced and audited: a decision, a hold's start, a reminder."""
    announcements: list[Announcement] = []
    audit: list[tuple[str, str]] = []
    if entry.decision != (previous.decision if previous else None):
        announcements.append(_analysis_completed(rollout, entry))
        audit.append(("canary analysis", _analysis_text(entry)))
    held, hold_audit = hold_news(rollout, previous, entry, config)
    return announcements + held, audit + hold_audit


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
