"""The canary analysis of one traffic step, as the rollout record keeps it, and what it decides.

Pure: :func:`analyse` turns the judge's latest verdict on the baking step (``None`` when the metrics
could not be read this tick) into the step's :class:`StepAnalysis`, whose ``decision`` is what the
rollout does:

- a critical FAIL: ``rollback`` at once (the rollback function's fast path, trigger ``analysis``);
- the bake not over yet: no decision (the judge looks again next tick);
- the bake over: PASS -> ``advance``; FAIL -> ``rollback``; INCONCLUSIVE -> no decision while the
  bake is extended (up to ``max_extension_seconds``), then ``on_inconclusive`` (hold, advance,
  rollback). Metrics that cannot be read count as INCONCLUSIVE, except that they never roll back by
  themselves: ``rollback`` becomes ``hold`` then, so an outage of CloudWatch waits for an operator.

Holding is not forgetting: a ``hold`` is judged again at every look. A FAIL rolls back; a PASS
advances (``held_step_advances``, true by default: the hold was for want of evidence, which has
now come); anything else stays held until ``max_hold_seconds`` after ``held_since``, when
``on_hold_timeout`` decides (``rollback`` by default). Metrics that cannot be read during a hold are
no evidence either way, but do not stop the deadline: its rollback is the strategy's decision, taken
for want of a verdict, not because of the outage. While held, the hold is announced again every
``hold_reminder_seconds`` (``hold_announcements`` counts them, so each is announced once). An
operator's resume turns ``hold`` into ``advance``.

In ``advisory`` mode the decision is only what the judge *would* do: it is recorded and announced,
never acted on, and made once (a would-be hold is not judged again). The rollout moves on by its
bakes and alarms, so the bake is never extended: an INCONCLUSIVE at the end of the bake is reported
as what ``on_inconclusive`` would then do.

Any other decided step's analysis does not change. The record keeps one entry per judged step, the
latest verdict with at most :data:`MAX_SERIES_MINUTES` minutes of :data:`MAX_CHARTED_METRICS`
metrics, so that a rollout item stays far below DynamoDB's 400 KB (:func:`bounded`).
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, Field

from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.observations import VariantSeries
from shepherd.analysis.verdict import Verdict
from shepherd.kernel.frozen import Frozen

Decision = Literal["advance", "rollback", "hold"]

MAX_SERIES_MINUTES = 60  # the most recent minutes charted per metric
MAX_CHARTED_METRICS = 6  # the paired metrics charted (built-in latencies first)
# A plan may have 99 judged steps and a judge 24 metrics: only the latest steps keep every metric's
# evidence (and only the latest two their charts); earlier ones keep their outcome and decision.
DETAILED_STEPS = 5
CHARTED_STEPS = 2


class MinuteSeries(Frozen):
    """One compared series per minute (oldest first), for charting baseline against candidate."""

    minutes: tuple[AwareDatetime, ...]
    baseline: tuple[float | None, ...]
    candidate: tuple[float | None, ...]


class StepAnalysis(Frozen):
    """The judge's latest verdict on one step, and the decision once the step's analysis made it."""

    step: int = Field(ge=0)
    percent: int = Field(ge=1, le=100)
    judged_at: AwareDatetime
    verdict: Verdict
    decision: Decision | None = None
    decided_at: AwareDatetime | None = None
    extended_seconds: int = Field(default=0, ge=0)
    metrics_unavailable: int = Field(default=0, ge=0)  # ticks whose metrics could not be read
    resumed_by: str | None = None  # the operator who resumed a held step
    resume_command: str | None = None  # the event id of that resume (a duplicate is answered alike)
    advisory: bool = False  # mode advisory: the decision is what the judge would do, never acted on
    held_since: AwareDatetime | None = None  # when the decision became hold (kept once it ends)
    hold_announcements: int = Field(default=0, ge=0)  # Rollout Held announced so far for this hold
    hold_announced_at: AwareDatetime | None = None  # the latest of them
    hold_timed_out: bool = False  # the hold reached max_hold_seconds and on_hold_timeout decided
    series: dict[str, MinuteSeries] = Field(default_factory=dict)
    # The tail metrics' latency thresholds (the baseline's p50 and p99, per metric name), set by the
    # step's first look with baseline data and kept for the step (shepherd.analysis.look).
    thresholds: dict[str, float] = Field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The rollback reason: which metrics failed, or why the judge could not decide."""
        failing = self.verdict.failing()
        if failing:
            return f"canary analysis failed at {self.percent}%: {', '.join(failing)}"
        if self.hold_timed_out and self.held_since is not None and self.decided_at is not None:
            held = int((self.decided_at - self.held_since).total_seconds())
            return f"canary analysis held at {self.percent}% for {held} s without a decision"
        return f"canary analysis inconclusive at {self.percent}% after {self.extended_seconds} s of extension"

    @property
    def judging(self) -> bool:
        """The judge still looks at this step: nothing decided yet, or held (and not in advisory mode)."""
        return self.decision is None or (self.decision == "hold" and not self.advisory)

    def hold_deadline(self, config: JudgeConfig) -> datetime | None:
        """When a hold ends by ``on_hold_timeout`` if nothing decides it before."""
        if self.held_since is None:
            return None
        return self.held_since + timedelta(seconds=config.max_hold_seconds)

    @property
    def hold_reason(self) -> str:
        """Why the step is held, in words (the Rollout Held announcement's ``reason``)."""
        why = f"canary analysis {self.verdict.outcome} at {self.percent}% after {self.extended_seconds} s of extension"
        if self.metrics_unavailable:
            why += f"; the metrics could not be read {self.metrics_unavailable} times"
        return why


def analyse(
    previous: StepAnalysis | None,
    *,
    step: int,
    percent: int,
    bake_ends_at: datetime,
    config: JudgeConfig,
    verdict: Verdict | None,
    unavailable_verdict: Verdict,
    series: dict[str, MinuteSeries],
    now: datetime,
    thresholds: Mapping[str, float] | None = None,
) -> StepAnalysis:
    """The step's analysis after this tick's look (``verdict`` None: the metrics could not be read)."""
    if previous is not None and not previous.judging:
        return previous  # decided: the announcement was made, the rollout acts on it
    unavailable = verdict is None
    seen = verdict or (previous.verdict if previous is not None else unavailable_verdict)
    if unavailable and seen.outcome != "INCONCLUSIVE":
        seen = unavailable_verdict  # stale evidence must not decide: no new data is INCONCLUSIVE
    unreadable = (previous.metrics_unavailable if previous else 0) + int(unavailable)
    charts = series or (previous.series if previous else {})
    kept = dict(thresholds) if thresholds is not None else (previous.thresholds if previous else {})
    if previous is not None and previous.decision == "hold":
        looked = _with_hold_start(previous).model_copy(
            update={
                "judged_at": now,
                "verdict": seen,
                "metrics_unavailable": unreadable,
                "series": charts,
                "thresholds": kept,
            }
        )
        return _still_held(looked, config, seen, now)
    advisory = config.mode == "advisory"
    extended = max(0, int((now - bake_ends_at).total_seconds()))
    decision: Decision | None = None
    if seen.critical_failure:
        decision = "rollback"
    elif now >= bake_ends_at:
        if seen.outcome == "PASS":
            decision = "advance"
        elif seen.outcome == "FAIL":
            decision = "rollback"
        elif advisory or now >= bake_ends_at + timedelta(seconds=config.max_extension_seconds):
            decision = config.on_inconclusive
            if unavailable and decision == "rollback":
                decision = "hold"  # an outage of the metrics is no evidence against the candidate
    held = decision == "hold" and not advisory
    return StepAnalysis(
        step=step,
        percent=percent,
        decision=decision,
        decided_at=now if decision else None,
        extended_seconds=min(extended, 0 if advisory else config.max_extension_seconds),
        resumed_by=None,
        advisory=advisory,
        held_since=now if held else None,
        hold_announcements=1 if held else 0,
        hold_announced_at=now if held else None,
        judged_at=now,
        verdict=seen,
        metrics_unavailable=unreadable,
        series=charts,
        thresholds=kept,
    )


def _with_hold_start(held: StepAnalysis) -> StepAnalysis:
    """A hold recorded by a version of Shepherd that did not keep its start began when the step was
    decided, and was announced then (else it would have no deadline, and hold the lock for ever)."""
    if held.held_since is not None:
        return held
    began = held.decided_at or held.judged_at
    return held.model_copy(
        update={
            "held_since": began,
            "hold_announcements": max(1, held.hold_announcements),
            "hold_announced_at": held.hold_announced_at or began,
        }
    )


def _still_held(held: StepAnalysis, config: JudgeConfig, seen: Verdict, now: datetime) -> StepAnalysis:
    """A held step judged again: a FAIL rolls back, a PASS may advance, the deadline decides the rest."""
    deadline = held.hold_deadline(config)
    assert deadline is not None, "a hold records when it began"
    if seen.outcome == "FAIL":
        return held.model_copy(update={"decision": "rollback", "decided_at": now})
    if seen.outcome == "PASS" and config.held_step_advances:
        return held.model_copy(update={"decision": "advance", "decided_at": now})
    if now >= deadline:
        return held.model_copy(update={"decision": config.on_hold_timeout, "decided_at": now, "hold_timed_out": True})
    last = held.hold_announced_at or deadline
    if now >= last + timedelta(seconds=config.hold_reminder_seconds):
        return held.model_copy(update={"hold_announcements": held.hold_announcements + 1, "hold_announced_at": now})
    return held


def bounded(entries: tuple[StepAnalysis, ...]) -> tuple[StepAnalysis, ...]:
    """The entries in step order, the older ones summarised so the record stays small (<< 400 KB)."""
    ordered = sorted(entries, key=lambda entry: entry.step)
    kept = []
    for age, entry in enumerate(reversed(ordered)):
        if age >= CHARTED_STEPS and entry.series:
            entry = entry.model_copy(update={"series": {}})
        if age >= DETAILED_STEPS and entry.verdict.metrics:
            entry = entry.model_copy(update={"verdict": entry.verdict.model_copy(update={"metrics": ()})})
        kept.append(entry)
    return tuple(reversed(kept))


def charted(observations: Mapping[str, VariantSeries], series_ids: tuple[str, ...]) -> dict[str, MinuteSeries]:
    """The last minutes of the first few paired series, both variants on the same minutes."""
    charts: dict[str, MinuteSeries] = {}
    for series_id in series_ids[:MAX_CHARTED_METRICS]:
        found = observations.get(series_id)
        if found is None:
            continue
        minutes = sorted({*found.baseline, *found.candidate})[-MAX_SERIES_MINUTES:]
        if minutes:
            charts[series_id] = MinuteSeries(
                minutes=tuple(minutes),
                baseline=tuple(_rounded(found.baseline.get(minute)) for minute in minutes),
                candidate=tuple(_rounded(found.candidate.get(minute)) for minute in minutes),
            )
    return charts


def _rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.5g}")
