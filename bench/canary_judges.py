"""Three canary judges on the same simulated steps (``canary_traffic.Batch``), each deciding per trial.

- **Shepherd**: the controller's own pure code path, once a minute at hh:mm:20 from the step's start:
  ``queries`` -> the per-minute answers of one GetMetricData call (``SimulatedCloudWatch``) -> ``look``
  -> ``step_analysis.analyse``. A critical FAIL rolls back at once; at the end of the bake PASS
  advances, FAIL rolls back, INCONCLUSIVE extends the bake (``max_extension_seconds``) and then does
  what ``on_inconclusive`` says (default: hold).
- **Static alarms** as SageMaker's deployment guardrails use them: the candidate's 5xx rate above 5%,
  or its p99 ModelLatency above 300 ms, in 3 of 3 one-minute periods (a missing minute breaks the
  run), during the bake; either alarm rolls back. No holds.
- **Kayenta-style**: at every look after a 3-minute warm-up (Spinnaker's ``beginCanaryAnalysisAfterMins``,
  as Shepherd's default ``warmup_seconds``), a two-sided Mann-Whitney test (asymptotic, tie-corrected,
  with continuity correction, as SciPy's) at 98% of the candidate's per-minute series against the
  baseline's, unpaired, for the 5xx rate, the 4xx rate, p50 and p99; a metric fails when it differs
  and the candidate's values tend to be higher (U above its mean); any failing metric rolls back. No
  holds: a bake that ends without failing advances.

Every judge sees minute m of the step from the look at m + 2 minutes 20 s (CloudWatch publishes a
minute late; Shepherd's default ``metrics_delay_seconds`` is 120): decisions are timed in looks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from canary_traffic import LOOKBACK_MINUTES, STEP_MINUTES, Batch, Side, SimulatedCloudWatch
from scipy import special

# look() imports the judge on its first call: imported here, so that no look is charged for it.
import shepherd.analysis.judge  # noqa: F401
from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.look import fetch_window, look, queries
from shepherd.analysis.metrics import SeriesQuery
from shepherd.analysis.observations import VariantSeries
from shepherd.rollouts.step_analysis import StepAnalysis, analyse

BAKE_MINUTES = 60
STEP_STARTED_AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LOOK_SECOND = 20
DATA_DELAY_LOOKS = 2  # minute m is first seen by the look at m + 2 min 20 s
ALARM_ERROR_PERCENT = 5.0
ALARM_P99_US = 300_000.0
ALARM_PERIODS = 3
KAYENTA_ALPHA = 0.02
KAYENTA_BEGIN_AFTER = 3
KAYENTA_MIN_MINUTES = 3
GET_METRIC_DATA_QUERIES = 500  # per call
GET_METRIC_DATA_DATAPOINTS = 100_800  # per call


@dataclass
class Outcomes:
    """Per trial: the step's decision (rollback, advance, hold) and the look that made it (minutes
    after the step began)."""

    decision: np.ndarray
    look: np.ndarray


@dataclass
class ShepherdOutcomes(Outcomes):
    waiting: list[str | None] = field(default_factory=list)  # a hold's Verdict.waiting
    failing: list[tuple[str, ...]] = field(default_factory=list)  # a rollback's failing metrics
    look_ns: list[int] = field(default_factory=list)  # CPU per look: queries() and look()
    most_queries: int = 0  # MetricDataQueries in one GetMetricData call (both variants)
    most_datapoints: int = 0


def look_time(look_index: int) -> datetime:
    return STEP_STARTED_AT + timedelta(minutes=look_index, seconds=LOOK_SECOND)


# --- Shepherd --------------------------------------------------------------------------------------


def shepherd_judge(batch: Batch, config: JudgeConfig, seed: tuple[int, ...]) -> ShepherdOutcomes:
    outcomes = ShepherdOutcomes(np.empty(batch.trials, dtype=object), np.zeros(batch.trials, dtype=int))
    for trial in range(batch.trials):
        cloudwatch = SimulatedCloudWatch(batch, trial, np.random.default_rng([*seed, trial]))
        step = _ShepherdStep(config, batch.condition.percent, cloudwatch, outcomes)
        entry, look_index = step.run()
        outcomes.decision[trial], outcomes.look[trial] = entry.decision, look_index
        outcomes.waiting.append(getattr(entry.verdict, "waiting", None) if entry.decision == "hold" else None)
        outcomes.failing.append(entry.verdict.failing() if entry.decision == "rollback" else ())
    return outcomes


class _ShepherdStep:
    """One judged step, looked at once a minute as the controller does."""

    def __init__(self, config: JudgeConfig, percent: int, cloudwatch: SimulatedCloudWatch, into: ShepherdOutcomes):
        self._config, self._percent, self._cloudwatch, self._into = config, percent, cloudwatch, into
        start, _ = fetch_window(STEP_STARTED_AT, look_time(1))
        assert start == STEP_STARTED_AT - timedelta(minutes=LOOKBACK_MINUTES), "fetch_window moved: see canary_traffic"
        self._minutes = [start + timedelta(minutes=i) for i in range(LOOKBACK_MINUTES + STEP_MINUTES)]
        self._answered: dict[tuple[str, str, Side], dict[datetime, float]] = {}
        self._filled: dict[tuple[str, str, Side], int] = {}

    def run(self) -> tuple[StepAnalysis, int]:
        config = self._config
        thresholds: dict[str, float] = {}
        entry: StepAnalysis | None = None
        bake_ends_at = STEP_STARTED_AT + timedelta(minutes=BAKE_MINUTES)
        for look_index in range(1, STEP_MINUTES + 1):
            now = look_time(look_index)
            began = time.process_time_ns()
            wanted = queries(config, thresholds)
            spent = time.process_time_ns() - began
            observations = {query.id: self._read(query, LOOKBACK_MINUTES + look_index) for query in wanted}
            began = time.process_time_ns()
            seen = look(config, observations, step_started_at=STEP_STARTED_AT, now=now, thresholds=thresholds)
            self._into.look_ns.append(spent + time.process_time_ns() - began)
            self._count_call(wanted, observations)
            thresholds = seen.thresholds
            entry = analyse(
                entry,
                step=0,
                percent=self._percent,
                bake_ends_at=bake_ends_at,
                config=config,
                verdict=seen.verdict,
                unavailable_verdict=seen.verdict,
                series={},
                now=now,
                thresholds=thresholds,
            )
            if entry.decision is not None:
                return entry, look_index
        raise AssertionError("a step is decided by the end of its longest extension")

    def _read(self, query: SeriesQuery, complete: int) -> VariantSeries:
        """Both variants' datapoints of every minute from the fetch window's start that has ended."""
        return VariantSeries(
            candidate=self._answer(query, "candidate", complete), baseline=self._answer(query, "baseline", complete)
        )

    def _answer(self, query: SeriesQuery, side: Side, complete: int) -> dict[datetime, float]:
        statistic = query.statistic_of(side)
        key = (query.id, statistic, side)
        series = self._answered.setdefault(key, {})
        for minute in range(self._filled.get(key, 0), complete):
            value = self._cloudwatch.datapoint(query.metric_name, statistic, side, minute)
            if value is not None:
                series[self._minutes[minute]] = value
        self._filled[key] = complete
        return series

    def _count_call(self, wanted: tuple[SeriesQuery, ...], observations: dict[str, VariantSeries]) -> None:
        datapoints = sum(len(series.candidate) + len(series.baseline) for series in observations.values())
        self._into.most_queries = max(self._into.most_queries, 2 * len(wanted))
        self._into.most_datapoints = max(self._into.most_datapoints, datapoints)


# --- static alarms ---------------------------------------------------------------------------------


def static_alarms(batch: Batch) -> Outcomes:
    candidate = batch.candidate
    bake = slice(LOOKBACK_MINUTES, LOOKBACK_MINUTES + BAKE_MINUTES)
    requests = candidate.requests[:, bake]
    with np.errstate(divide="ignore", invalid="ignore"):
        error_percent = np.where(requests > 0, 100 * candidate.errors_5xx[:, bake] / requests, np.nan)
    # NaN (no datapoint) compares False: a missing minute breaks a run.
    breaching = (error_percent > ALARM_ERROR_PERCENT) | (candidate.p99[:, bake] > ALARM_P99_US)
    run = np.zeros(batch.trials, dtype=int)
    fired = np.zeros(batch.trials, dtype=int)  # the look that saw the alarm fire, 0: never
    for minute in range(BAKE_MINUTES):
        run = np.where(breaching[:, minute], run + 1, 0)
        seen_at = minute + DATA_DELAY_LOOKS
        fired = np.where((run >= ALARM_PERIODS) & (fired == 0) & (seen_at <= BAKE_MINUTES), seen_at, fired)
    return _rollback_or_advance(fired)


def _rollback_or_advance(fired: np.ndarray) -> Outcomes:
    decision = np.where(fired > 0, "rollback", "advance").astype(object)
    return Outcomes(decision, np.where(fired > 0, fired, BAKE_MINUTES))


# --- Kayenta-style ---------------------------------------------------------------------------------


def kayenta_style(batch: Batch, alpha: float = KAYENTA_ALPHA) -> Outcomes:
    series = _kayenta_series(batch)
    tests = [_MannWhitney(batch.trials, BAKE_MINUTES) for _ in series]
    fired = np.zeros(batch.trials, dtype=int)
    for minute in range(KAYENTA_BEGIN_AFTER, BAKE_MINUTES - DATA_DELAY_LOOKS + 1):
        failing = np.zeros(batch.trials, dtype=bool)
        for (candidate, baseline), test in zip(series, tests, strict=True):
            test.add(candidate[:, minute], baseline[:, minute])
            if minute - KAYENTA_BEGIN_AFTER + 1 >= KAYENTA_MIN_MINUTES:
                p_value, higher = test.two_sided()
                failing |= (p_value < alpha) & higher
        fired = np.where(failing & (fired == 0), minute + DATA_DELAY_LOOKS, fired)
    return _rollback_or_advance(fired)


def _kayenta_series(batch: Batch) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-minute 5xx rate, 4xx rate, p50, p99 of each variant over the step (NaN: no datapoint)."""
    step = slice(LOOKBACK_MINUTES, None)
    pairs = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for metric in ("errors_5xx", "errors_4xx"):
            pairs.append(
                tuple(
                    np.where(v.requests[:, step] > 0, getattr(v, metric)[:, step] / v.requests[:, step], np.nan)
                    for v in (batch.candidate, batch.baseline)
                )
            )
    pairs.append((batch.candidate.p50[:, step], batch.baseline.p50[:, step]))
    pairs.append((batch.candidate.p99[:, step], batch.baseline.p99[:, step]))
    return pairs  # type: ignore[return-value]


class _MannWhitney:
    """Mann-Whitney U of two growing samples per trial, updated one minute at a time (NaN omitted).

    U counts the (candidate, baseline) pairs where the candidate's value is higher, ties one half; the
    tie correction sums t^3 - t over groups of equal values, and grows by 3t^2 + 3t when a value joins
    a group of t.
    """

    def __init__(self, trials: int, capacity: int) -> None:
        self.candidate = np.full((trials, capacity), np.nan)
        self.baseline = np.full((trials, capacity), np.nan)
        self.size = 0
        self.u = np.zeros(trials)
        self.ties = np.zeros(trials)

    def add(self, candidate: np.ndarray, baseline: np.ndarray) -> None:
        seen_c, seen_b = self.candidate[:, : self.size], self.baseline[:, : self.size]
        c, b = candidate[:, None], baseline[:, None]
        # Comparisons with NaN are False: a missing value pairs with nothing.
        self.u += ((c > seen_b) + 0.5 * (c == seen_b)).sum(axis=1)
        self.u += ((seen_c > b) + 0.5 * (seen_c == b)).sum(axis=1)
        self.u += (candidate > baseline) + 0.5 * (candidate == baseline)
        t = (seen_c == c).sum(axis=1) + (seen_b == c).sum(axis=1)
        self.ties += np.where(np.isnan(candidate), 0, 3 * t**2 + 3 * t)
        t = (seen_c == b).sum(axis=1) + (seen_b == b).sum(axis=1) + (candidate == baseline)
        self.ties += np.where(np.isnan(baseline), 0, 3 * t**2 + 3 * t)
        self.candidate[:, self.size], self.baseline[:, self.size] = candidate, baseline
        self.size += 1

    def two_sided(self) -> tuple[np.ndarray, np.ndarray]:
        """(p-value, candidate tends higher) per trial; p = 1 without values on both sides."""
        n_c = (~np.isnan(self.candidate[:, : self.size])).sum(axis=1)
        n_b = (~np.isnan(self.baseline[:, : self.size])).sum(axis=1)
        n = n_c + n_b
        mean = n_c * n_b / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = n_c * n_b / 12 * ((n + 1) - self.ties / (n * (n - 1)))
            z = (np.abs(self.u - mean) - 0.5) / np.sqrt(variance)
            p_value = np.where((n_c > 0) & (n_b > 0) & (variance > 0), np.minimum(1.0, 2 * special.ndtr(-z)), 1.0)
        return p_value, self.u > mean
