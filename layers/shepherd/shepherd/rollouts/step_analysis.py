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

Once decided, a step's analysis does not change (the announcement is made once); ``hold`` changes to
``advance`` only by an operator's resume. The record keeps one entry per judged step, the latest
verdict with at most :data:`MAX_SERIES_MINUTES` minutes of :data:`MAX_CHARTED_METRICS` metrics, so
that a rollout item stays far below DynamoDB's 400 KB (:func:`bounded`).
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.observations import VariantSeries
from shepherd.analysis.verdict import Verdict

Decision = Literal["advance", "rollback", "hold"]

MAX_SERIES_MINUTES = 60  # the most recent minutes charted per metric
MAX_CHARTED_METRICS = 6  # the paired metrics charted (built-in latencies first)
# A plan may have 99 judged steps and a judge 24 metrics: only the latest steps keep every metric's
# evidence (and only the latest two their charts); earlier ones keep their outcome and decision.
DETAILED_STEPS = 5
CHARTED_STEPS = 2


class MinuteSeries(BaseModel):
    """One compared series per minute (oldest first), for charting baseline against candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built on first use

    minutes: tuple[AwareDatetime, ...]
    baseline: tuple[float | None, ...]
    candidate: tuple[float | None, ...]


class StepAnalysis(BaseModel):
    """The judge's latest verdict on one step, and the decision once the step's analysis made it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built on first use

    step: int = Field(ge=0)
    percent: int = Field(ge=1, le=100)
    judged_at: AwareDatetime
    verdict: Verdict
    decision: Decision | None = None
    decided_at: AwareDatetime | None = None
    extended_seconds: int = Field(default=0, ge=0)
    metrics_unavailable: int = Field(default=0, ge=0)  # ticks whose metrics could not be read
    resumed_by: str | None = None  # the operator who resumed a held step
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
        return f"canary analysis inconclusive at {self.percent}% after {self.extended_seconds} s of extension"


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
    if previous is not None and previous.decision is not None:
        return previous  # decided: the announcement was made, the rollout acts on it
    unavailable = verdict is None
    seen = verdict or (previous.verdict if previous is not None else unavailable_verdict)
    if unavailable and seen.outcome != "INCONCLUSIVE":
        seen = unavailable_verdict  # stale evidence must not decide: no new data is INCONCLUSIVE
    extended = max(0, int((now - bake_ends_at).total_seconds()))
    decision: Decision | None = None
    if seen.critical_failure:
        decision = "rollback"
    elif now >= bake_ends_at:
        if seen.outcome == "PASS":
            decision = "advance"
        elif seen.outcome == "FAIL":
            decision = "rollback"
        elif now >= bake_ends_at + timedelta(seconds=config.max_extension_seconds):
            decision = config.on_inconclusive
            if unavailable and decision == "rollback":
                decision = "hold"  # an outage of the metrics is no evidence against the candidate
    return StepAnalysis(
        step=step,
        percent=percent,
        judged_at=now,
        verdict=seen,
        decision=decision,
        decided_at=now if decision else None,
        extended_seconds=min(extended, config.max_extension_seconds),
        metrics_unavailable=(previous.metrics_unavailable if previous else 0) + int(unavailable),
        resumed_by=None,
        series=series or (previous.series if previous else {}),
        thresholds=dict(thresholds) if thresholds is not None else (previous.thresholds if previous else {}),
    )


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
