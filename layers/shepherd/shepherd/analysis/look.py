"""One look of the canary judge at a baking step: which minutes count, what to fetch, the verdict.

Pure. A controller pass (``rollouts/judging.py``), the replay command and the detection bench all
look the same way:

1. :func:`fetch_window` and :func:`queries` say what to read (one GetMetricData call): every series
   of the judged metrics from :data:`LOOKBACK` before the step began, and, for each tail metric whose
   threshold is known, the slow-request counts above it.
2. :func:`look` judges what was read:

   - minutes that began less than ``metrics_delay_seconds`` ago are left out (CloudWatch may not have
     published them whole);
   - minutes before the step began only set the tail thresholds (the median of the baseline's
     per-minute p99; after the warm-up for a fresh baseline, which had no traffic before); a
     threshold, once set, is kept for the step;
   - the step's first ``warmup_seconds`` are judged only by the gross-failure guard (errors at
     ``gross_failure_ratio`` times the baseline's, with evidence);
   - the minutes after the warm-up are judged by every metric (``shepherd.analysis.judge``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from statistics import median

from msgspec import Struct

from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.metrics import SeriesQuery, tail_query
from shepherd.analysis.observations import Observations
from shepherd.analysis.verdict import Verdict

LOOKBACK = timedelta(minutes=10)  # the baseline's minutes before the step, read to set thresholds
MINUTE = timedelta(minutes=1)


class Look(Struct, frozen=True):
    """A look's verdict, and the tail thresholds (per metric name) for this step's next looks."""

    verdict: Verdict
    thresholds: dict[str, float]


class Window(Struct, frozen=True):
    """Which minutes (by their start) a look judges: [warmup_from, judged_from) by the guard only,
    [judged_from, until) by every metric."""

    warmup_from: datetime
    judged_from: datetime
    until: datetime


def fetch_window(step_started_at: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The [start, end) of the one GetMetricData call of a look."""
    return step_started_at - LOOKBACK, now


def queries(config: JudgeConfig, thresholds: Mapping[str, float]) -> tuple[SeriesQuery, ...]:
    """The series to fetch: the config's, and each tail metric's slow counts once its threshold is set."""
    tails = tuple(
        tail_query(metric, thresholds[metric.name])
        for metric in config.judged_metrics()
        if metric.kind == "tail" and metric.name in thresholds
    )
    return (*config.series(), *tails)


def window(config: JudgeConfig, step_started_at: datetime, now: datetime) -> Window:
    # The minute the step began in is partial (the candidate had part of it at the new weight): it is
    # the warm-up's, as is every minute that began before the warm-up ended.
    warmup_end = step_started_at + timedelta(seconds=config.warmup_seconds)
    judged_from = _minute(warmup_end) if warmup_end == _minute(warmup_end) else _minute(warmup_end) + MINUTE
    until = _minute(now - timedelta(seconds=config.metrics_delay_seconds)) + MINUTE
    return Window(warmup_from=_minute(step_started_at), judged_from=judged_from, until=until)


def thresholds_from(
    config: JudgeConfig, observations: Observations, span: Window, known: Mapping[str, float]
) -> dict[str, float]:
    """Known thresholds, plus any tail metric's not yet set: the median of the baseline's per-minute
    values of its percentile over the complete minutes before the step, or, for a baseline that had no
    traffic then (a fresh baseline, warming up with the candidate), over the judged minutes after the
    warm-up; not set while there are neither."""
    thresholds = dict(known)
    for metric in config.judged_metrics():
        if metric.kind != "tail" or metric.name in thresholds or metric.threshold_series is None:
            continue
        found = observations.get(metric.threshold_series)
        baseline = found.baseline.items() if found else ()
        before = [value for minute, value in baseline if minute < span.warmup_from and value > 0]
        after = [value for minute, value in baseline if span.judged_from <= minute < span.until and value > 0]
        if before or after:
            thresholds[metric.name] = float(median(before or after))
    return thresholds


def look(
    config: JudgeConfig,
    observations: Observations,
    *,
    step_started_at: datetime,
    now: datetime,
    thresholds: Mapping[str, float],
) -> Look:
    """Judge a step on what one read returned (``observations``, from :func:`queries`)."""
    from shepherd.analysis.judge import judge  # the statistics, loaded by the first look

    span = window(config, step_started_at, now)
    verdict = judge(
        config.judged_metrics(),
        observations,
        config.false_rollback_rate,
        judged=(span.judged_from, span.until),
        warmup=(span.warmup_from, span.judged_from),
        gross_failure_ratio=config.gross_failure_ratio,
        thresholds=thresholds,
    )
    return Look(verdict=verdict, thresholds=thresholds_from(config, observations, span, thresholds))


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)
