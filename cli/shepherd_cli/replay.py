"""`shepherd analysis replay`: judge a past rollout's steps again, minute by minute, under a configuration.

The rollout record keeps the judge's latest verdict per step and at most an hour of a few charted
series: not the counts the judge decides on. CloudWatch keeps one-minute data for 15 days, so a
replay reads the metrics again rather than the record storing them (a day-long bake of 26 series
would take a rollout item past DynamoDB's 400 KB). Each judged step's span comes from the endpoint's
audit trail: from the pass that saw the step reached to the first change after it (the next shift,
a rollback, an abort), or to the record's last pass for a step still baking. Then, per minute, the
look the controller would have made at that minute (`shepherd.analysis.look`: the same queries and
thresholds, which evolve as in the controller) and the decision `step_analysis.analyse` takes from
it (holds included). One GetMetricData per step (two when the tail thresholds are set by the first
look).

Pure but for the `VariantMetrics` port: the CLI passes `CloudWatchVariantMetrics`, tests a fake.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.look import fetch_window, look, queries
from shepherd.analysis.metrics import SeriesQuery
from shepherd.analysis.observations import Observations
from shepherd.analysis.ports import VariantMetrics
from shepherd.rollouts.outbox import announced_ids
from shepherd.rollouts.ports import EndpointAuditEntry
from shepherd.rollouts.record import Rollout
from shepherd.rollouts.step_analysis import StepAnalysis, analyse

MINUTE = timedelta(minutes=1)
# The first entries after a step was reached that end it: a weight request (a shift on), a rollback,
# an abort, the end.
_STEP_ENDS = frozenset({"rollback requested", "aborting", "failed", "rolled back", "completed"})
# Entries written before the audit trail had its fields (`reached_step`, `to_percent`) say it in words.
_OLD_SHIFT = re.compile(r"^traffic \d+% -> \d+%$")


def replay(
    rollout: Rollout, trail: Sequence[EndpointAuditEntry], config: JudgeConfig, metrics: VariantMetrics
) -> dict[str, Any]:
    """Every judged step of ``rollout`` judged again under ``config``: per minute, and against what happened."""
    ours = sorted((entry for entry in trail if entry.rollout_id == rollout.rollout_id), key=lambda entry: entry.at)
    steps = []
    for happened in sorted(rollout.analysis, key=lambda entry: entry.step):
        span = step_span(rollout, ours, happened)
        if span is None:
            steps.append({"step": happened.step, "percent": happened.percent, "skipped": "no start in the audit trail"})
            continue
        steps.append(_replay_step(rollout, config, metrics, happened, *span))
    return {
        **announced_ids(rollout),
        "config": config.model_dump(mode="json"),
        "steps": steps,
    }


def step_span(
    rollout: Rollout, trail: Sequence[EndpointAuditEntry], step: StepAnalysis
) -> tuple[datetime, datetime] | None:
    """When the step was reached (the bake's start) and when it ended, from the audit trail's fields
    (the words of entries written before them)."""
    start = next((e.at for e in trail if _reached(e, step)), None)
    if start is None:
        if rollout.step_index == step.step and rollout.step_started_at is not None:
            start = rollout.step_started_at
        else:
            return None
    end = next((e.at for e in trail if e.at > start and _ends_a_step(e)), None)
    return start, end or rollout.ended_at or rollout.updated_at


def _reached(entry: EndpointAuditEntry, step: StepAnalysis) -> bool:
    if entry.reached_step is not None:
        return entry.reached_step == step.step
    old_words = re.compile(rf"^(reached|caught up with the endpoint at) {step.percent}%")
    return entry.action == "progress" and old_words.match(entry.detail) is not None


def _ends_a_step(entry: EndpointAuditEntry) -> bool:
    return entry.to_percent is not None or entry.action in _STEP_ENDS or _OLD_SHIFT.match(entry.action) is not None


def _replay_step(
    rollout: Rollout,
    config: JudgeConfig,
    metrics: VariantMetrics,
    happened: StepAnalysis,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    from shepherd.analysis.judge import judge

    baseline = rollout.baseline_variant  # the fresh baseline if the judge had one, as in the controller
    assert baseline is not None, "a judged step has a variant to compare with"
    bake_ends_at = start + timedelta(seconds=rollout.plan[happened.step].bake_seconds)
    unavailable = judge(config.judged_metrics(), {}, config.false_rollback_rate)
    read: dict[tuple[SeriesQuery, ...], Observations] = {}
    thresholds: dict[str, float] = {}
    entry: StepAnalysis | None = None
    minutes = []
    at = start + MINUTE
    while at <= end:
        wanted = queries(config, thresholds)
        if wanted not in read:  # one read of the whole step per set of queries
            read[wanted] = metrics.variant_series(
                wanted, rollout.endpoint_name, rollout.candidate.variant_name, baseline.variant_name,
                *fetch_window(start, end + MINUTE),
            )  # fmt: skip
        seen = look(config, read[wanted], step_started_at=start, now=at, thresholds=thresholds)
        thresholds = seen.thresholds
        before = entry.decision if entry else None
        entry = analyse(
            entry,
            step=happened.step,
            percent=happened.percent,
            bake_ends_at=bake_ends_at,
            config=config,
            verdict=seen.verdict,
            unavailable_verdict=unavailable,
            series={},
            now=at,
            thresholds=seen.thresholds,
        )
        minutes.append(
            {
                "at": at.isoformat(),
                "minute": int((at - start).total_seconds() // 60),
                "outcome": seen.verdict.outcome,
                "metrics": {evidence.metric: evidence.outcome for evidence in seen.verdict.metrics},
                "decision": entry.decision,
                "decided_now": entry.decision != before,
            }
        )
        at += MINUTE
    replayed = entry.decision if entry else None
    decided_at = entry.decided_at.isoformat() if entry and entry.decided_at else None
    return {
        "step": happened.step,
        "percent": happened.percent,
        "started_at": start.isoformat(),
        "ended_at": end.isoformat(),
        "happened": {
            "decision": happened.decision,
            "decided_at": happened.decided_at.isoformat() if happened.decided_at else None,
            "advisory": happened.advisory,
            "resumed_by": happened.resumed_by,
        },
        "replayed": {"decision": replayed, "decided_at": decided_at},
        "differs": replayed != happened.decision,
        "minutes": minutes,
    }
