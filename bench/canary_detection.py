"""Canary detection: Shepherd's judge against static alarms and a Kayenta-style judge, on the same data.

Without AWS, simulates many canaries at 10% of 50 requests/s (300 requests a minute to the candidate,
2,700 to the live variant) for a 60-minute bake, under A/A (identical models) and A/B (5xx errors x2
and x5 from a 1% base; latency +20% and +50%), and runs three judges on the same per-minute data:

- **Shepherd**: ``shepherd.analysis.judge`` with the default strategy's configuration, looking once a
  minute; a critical FAIL rolls back at once, a non-critical FAIL at the end of the bake.
- **Static alarms** as SageMaker's deployment guardrails use them: the candidate's 5xx rate above 5%
  or its p99 latency above 300 ms in 3 of 3 one-minute periods.
- **Kayenta-style**: every minute, a two-sided Mann-Whitney test at 98% confidence of the candidate's
  per-minute series against the baseline's (5xx rate, 4xx rate, p50, p99), unpaired; a metric fails
  when it differs significantly in the bad direction (higher), and any failing metric rolls back.
  Also at 99.8%, to compare detection at a false-rollback rate nearer Shepherd's.

The data: a shared load factor per minute (AR(1) on the log scale, stationary sd 0.17) drives the
request count (Poisson) and both variants' latency; requests split binomially 10/90. Per-request
latency is log-normal (median 100 ms x load^0.5, log-sd 0.35: p99 about 225 ms); each variant's
minute also has its own small noise (log-sd 0.03, its instances) and both share a per-minute jitter
(log-sd 0.05). A variant's per-minute p50 and p99 are the nearest-rank order statistics of its
requests that minute, drawn exactly through the Beta distribution of uniform order statistics
instead of generating every request. 5xx: 1% per request times a shared per-minute factor (log-sd
0.3: error bursts hit both variants); 4xx: 2% the same way, never changed by the candidate.

    .venv/bin/python bench/canary_detection.py [--trials 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from _support import table
from scipy import special, stats

from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.judge import VariantSeries, judge

MINUTES = 60
RPS = 50
CANARY_SHARE = 0.10
BASE_5XX = 0.01
BASE_4XX = 0.02
MEDIAN_MS = 100.0
LATENCY_LOG_SD = 0.35
ALARM_ERROR_PERCENT = 5.0
ALARM_P99_MS = 300.0
ALARM_PERIODS = 3
KAYENTA_ALPHA = 0.02
KAYENTA_FIRST_MINUTE = 3
DETECT_WITHIN = 15

# Same tolerance as the other two judges (none), to show what the default +10% costs.
LATENCY_TOLERANCE_0 = JudgeConfig.model_validate(
    {"default_metrics": {"latency_p50": {"tolerance": 0}, "latency_p99": {"tolerance": 0}}}
)

SCENARIOS = {
    "A/A": (1.0, 1.0),
    "errors x2": (2.0, 1.0),
    "errors x5": (5.0, 1.0),
    "latency +20%": (1.0, 1.2),
    "latency +50%": (1.0, 1.5),
}


@dataclass
class Canaries:
    """Per-minute series of many simulated canaries: arrays of shape (trials, MINUTES)."""

    requests: dict[str, np.ndarray]
    errors_5xx: dict[str, np.ndarray]
    errors_4xx: dict[str, np.ndarray]
    p50: dict[str, np.ndarray]
    p99: dict[str, np.ndarray]


def simulate(rng: np.random.Generator, trials: int, error_factor: float, latency_factor: float) -> Canaries:
    shape = (trials, MINUTES)
    log_load = np.zeros(shape)
    innovation = rng.normal(0, 0.1, shape)
    log_load[:, 0] = rng.normal(0, 0.1 / math.sqrt(1 - 0.8**2), trials)
    for minute in range(1, MINUTES):
        log_load[:, minute] = 0.8 * log_load[:, minute - 1] + innovation[:, minute]
    load = np.exp(log_load)
    total = rng.poisson(RPS * 60 * load)
    candidate = rng.binomial(total, CANARY_SHARE)
    requests = {"candidate": candidate, "baseline": total - candidate}
    shared_jitter = rng.normal(0, 0.05, shape)
    error_burst = np.exp(rng.normal(0, 0.3, shape))
    client_burst = np.exp(rng.normal(0, 0.3, shape))
    errors_5xx, errors_4xx, p50, p99 = {}, {}, {}, {}
    for variant, n in requests.items():
        factor_e, factor_l = (error_factor, latency_factor) if variant == "candidate" else (1.0, 1.0)
        errors_5xx[variant] = rng.binomial(n, np.minimum(1.0, BASE_5XX * error_burst * factor_e))
        errors_4xx[variant] = rng.binomial(n, np.minimum(1.0, BASE_4XX * client_burst))
        median = MEDIAN_MS * factor_l * np.sqrt(load) * np.exp(shared_jitter + rng.normal(0, 0.03, shape))
        n_safe = np.maximum(n, 2)
        k99 = np.ceil(0.99 * n_safe)
        k50 = np.ceil(0.50 * n_safe)
        # Uniform order statistics: U(k99) ~ Beta(k99, n + 1 - k99); U(k50) / U(k99) ~ Beta(k50, k99 - k50).
        u99 = rng.beta(k99, n_safe + 1 - k99)
        u50 = u99 * rng.beta(k50, k99 - k50)
        p99[variant] = median * np.exp(LATENCY_LOG_SD * special.ndtri(u99))
        p50[variant] = median * np.exp(LATENCY_LOG_SD * special.ndtri(u50))
    return Canaries(requests, errors_5xx, errors_4xx, p50, p99)


# --- the three judges: each returns the minute of the rollback (1-based) per trial, or 0 for none ---


def shepherd_judge(data: Canaries, config: JudgeConfig) -> tuple[np.ndarray, float]:
    metrics = config.judged_metrics()
    trials = data.requests["candidate"].shape[0]
    rollback = np.zeros(trials, dtype=int)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    calls, spent = 0, 0.0
    columns = {
        "invocations": data.requests,
        "invocation_5xx_errors": data.errors_5xx,
        "invocation_4xx_errors": data.errors_4xx,
        "model_latency_p50": data.p50,
        "model_latency_p99": data.p99,
    }
    for trial in range(trials):
        observations = {name: VariantSeries({}, {}) for name in columns}
        failed_at = 0
        for minute in range(MINUTES):
            at = start + timedelta(minutes=minute)
            for name, values in columns.items():
                observations[name].candidate[at] = float(values["candidate"][trial, minute])  # type: ignore[index]
                observations[name].baseline[at] = float(values["baseline"][trial, minute])  # type: ignore[index]
            began = time.perf_counter()
            verdict = judge(metrics, observations, config.false_rollback_rate)
            spent += time.perf_counter() - began
            calls += 1
            if verdict.critical_failure:
                rollback[trial] = minute + 1
                break
            if verdict.outcome == "FAIL" and not failed_at:
                failed_at = MINUTES  # a non-critical FAIL rolls back at the end of the bake
        else:
            rollback[trial] = failed_at
    return rollback, spent / max(calls, 1)


def static_alarms(data: Canaries) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        error_percent = np.nan_to_num(100 * data.errors_5xx["candidate"] / data.requests["candidate"])
    # Two alarms, each 3 of 3 one-minute periods; either one firing rolls back.
    return np.minimum(_first_run(error_percent > ALARM_ERROR_PERCENT), _first_run(data.p99["candidate"] > ALARM_P99_MS))


def _first_run(breach: np.ndarray) -> np.ndarray:
    """Minute (1-based) ending the first run of ALARM_PERIODS breaching minutes, or a large number."""
    run = np.zeros(breach.shape[0], dtype=int)
    first = np.full(breach.shape[0], 10**6)
    for minute in range(MINUTES):
        run = np.where(breach[:, minute], run + 1, 0)
        first = np.where((run >= ALARM_PERIODS) & (first == 10**6), minute + 1, first)
    return first


def kayenta_style(data: Canaries, alpha: float = KAYENTA_ALPHA) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        series = {
            "5xx": (
                np.nan_to_num(data.errors_5xx["candidate"] / data.requests["candidate"]),
                np.nan_to_num(data.errors_5xx["baseline"] / data.requests["baseline"]),
            ),
            "4xx": (
                np.nan_to_num(data.errors_4xx["candidate"] / data.requests["candidate"]),
                np.nan_to_num(data.errors_4xx["baseline"] / data.requests["baseline"]),
            ),
            "p50": (data.p50["candidate"], data.p50["baseline"]),
            "p99": (data.p99["candidate"], data.p99["baseline"]),
        }
    trials = data.requests["candidate"].shape[0]
    first = np.full(trials, 10**6)
    for minute in range(KAYENTA_FIRST_MINUTE, MINUTES + 1):
        failing = np.zeros(trials, dtype=bool)
        for candidate, baseline in series.values():
            c, b = candidate[:, :minute], baseline[:, :minute]
            p_value = stats.mannwhitneyu(c, b, axis=1, alternative="two-sided", method="asymptotic").pvalue
            higher = np.median(c, axis=1) > np.median(b, axis=1)
            failing |= (p_value < alpha) & higher
        first = np.where(failing & (first == 10**6), minute, first)
    return first


# --- the table --------------------------------------------------------------------------------


def summarise(rollback_minute: np.ndarray) -> tuple[float, float, float | None]:
    """(share rolled back within the bake, share within DETECT_WITHIN minutes, median minute of those)."""
    detected = (rollback_minute >= 1) & (rollback_minute <= MINUTES)
    within = detected & (rollback_minute <= DETECT_WITHIN)
    minutes = rollback_minute[detected]
    return float(detected.mean()), float(within.mean()), float(statistics.median(minutes)) if minutes.size else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000, help="canaries per scenario (A/A gets 4 times as many)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    look_seconds: list[float] = []

    def shepherd_defaults(data: Canaries) -> np.ndarray:
        rollback, per_look = shepherd_judge(data, JudgeConfig())
        look_seconds.append(per_look)
        return rollback

    judges: dict[str, Callable[[Canaries], np.ndarray]] = {
        "Shepherd judge (defaults)": shepherd_defaults,
        "Shepherd judge, latency tolerance 0%": lambda data: shepherd_judge(data, LATENCY_TOLERANCE_0)[0],
        "static alarms (5%, 300 ms, 3 of 3)": static_alarms,
        "Kayenta-style (Mann-Whitney 98%, every minute)": kayenta_style,
        # The same at a stricter level, to compare detection at a false-rollback rate nearer Shepherd's.
        "Kayenta-style at 99.8%": lambda data: kayenta_style(data, 0.002),
    }
    results: dict[str, dict[str, tuple[float, float, float | None]]] = {name: {} for name in judges}
    began = time.perf_counter()
    for scenario, (error_factor, latency_factor) in SCENARIOS.items():
        trials = args.trials * 4 if scenario == "A/A" else args.trials
        data = simulate(rng, trials, error_factor, latency_factor)
        for name, run in judges.items():
            results[name][scenario] = summarise(run(data))
    headers = ["judge", f"false rollbacks, A/A ({args.trials * 4} bakes)"]
    headers += [
        f"{scenario}: detected / within {DETECT_WITHIN} min / median min" for scenario in SCENARIOS if scenario != "A/A"
    ]
    rows = []
    for name, by_scenario in results.items():
        row = [name, f"{by_scenario['A/A'][0]:.2%}"]
        for scenario in SCENARIOS:
            if scenario == "A/A":
                continue
            detected, within, median_minute = by_scenario[scenario]
            row.append(f"{detected:.0%} / {within:.0%} / {'-' if median_minute is None else f'{median_minute:g}'}")
        rows.append(row)
    print(
        f"{args.trials} canaries per regression, {args.trials * 4} A/A; {RPS} requests/s, {CANARY_SHARE:.0%} to the "
        f"candidate, {MINUTES}-minute bake, seed {args.seed} ({time.perf_counter() - began:.0f} s)\n"
    )
    print(table(headers, rows))
    print(f"\nShepherd's judge: {statistics.mean(look_seconds) * 1e6:.0f} µs per look (4 metrics, pure Python)")


if __name__ == "__main__":
    main()
