"""The canary judge on synthetic traffic: A/A passes, regressions fail, looks are free, bursts are not
regressions.

The canaries are simulated request by request, as CloudWatch would aggregate them: each minute a
shared load factor moves the request count and both variants' latency; requests split by weight;
latency is log-normal per request; a minute's p50 and p99 are the nearest-rank percentiles of that
minute's requests, its slow count the number above a threshold (``TC(threshold:)``). Errors are drawn
per request. scipy checks the closed forms of the sequential statistics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from boto3.dynamodb.types import TypeDeserializer
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from shepherd.adapters.dynamodb import item_of, model_of, serialize
from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.judge import VariantSeries, judge
from shepherd.analysis.look import look, queries
from shepherd.analysis.metrics import JudgedMetric
from shepherd.analysis.rates import MinuteCounts, compare_rates, estimate_dispersion
from shepherd.analysis.sequential import (
    PAIRED_PRIOR_EFFECT_VARIANCE,
    RATE_PRIOR_ERRORS,
    LogRatioSummary,
    paired_log_ratio_interval,
    poisson_rate_upper,
    rate_ratio_interval,
)
from shepherd.analysis.verdict import Verdict
from shepherd.contracts import CanaryAnalysisCompleted

START = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
DEFAULTS = JudgeConfig()
DESERIALIZER = TypeDeserializer()
MEDIAN_US = 100_000.0  # ModelLatency is in microseconds
LOG_SD = 0.5
TRUE_P99 = MEDIAN_US * math.exp(LOG_SD * 2.3263)


@dataclass
class Canary:
    """Simulated requests per minute of both variants; ``observations(minutes)`` is what CloudWatch
    would answer for the judge's series (the p99 threshold is the baseline's true p99)."""

    counts: dict[str, tuple[np.ndarray, np.ndarray]]  # invocations, 5xx, 4xx per minute
    latencies: tuple[list[np.ndarray], list[np.ndarray]]  # per minute, each request's latency
    threshold: float = TRUE_P99
    cache: dict[int, dict[str, VariantSeries]] = field(default_factory=dict)

    def observations(self, minutes: int, tolerance: float = 0.1) -> dict[str, VariantSeries]:
        at = [START + timedelta(minutes=m) for m in range(minutes)]
        columns: dict[str, tuple[list[float], list[float]]] = {
            name: ([float(v) for v in c[:minutes]], [float(v) for v in b[:minutes]])
            for name, (c, b) in self.counts.items()
        }
        candidate, baseline = self.latencies
        for name, statistic in (
            ("model_latency_p50", lambda v: _nearest_rank(v, 0.5)),
            ("model_latency_p99", lambda v: _nearest_rank(v, 0.99)),
            ("model_latency_count", len),
        ):
            columns[name] = ([statistic(v) for v in candidate[:minutes]], [statistic(v) for v in baseline[:minutes]])
        columns["model_latency_p99_slow"] = (
            [float(np.sum(v > self.threshold * (1 + tolerance))) for v in candidate[:minutes]],
            [float(np.sum(v > self.threshold)) for v in baseline[:minutes]],
        )
        return {
            name: VariantSeries(
                {a: v for a, v in zip(at, c, strict=True) if not math.isnan(v)},
                {a: v for a, v in zip(at, b, strict=True) if not math.isnan(v)},
            )
            for name, (c, b) in columns.items()
        }


def _nearest_rank(values: np.ndarray, q: float) -> float:
    if values.size == 0:
        return math.nan
    return float(np.sort(values)[max(0, math.ceil(q * values.size) - 1)])


def canary(
    seed: int,
    minutes: int = 60,
    *,
    errors_x: float = 1.0,
    latency_x: float = 1.0,
    tail_x: float = 1.0,
    rps: float = 50,
    share: float = 0.1,
) -> Canary:
    """``tail_x`` stretches the candidate's latency above its median so that its p99 is ``tail_x``
    times the baseline's and its median unchanged."""
    rng = np.random.default_rng(seed)
    load = np.exp(rng.normal(0, 0.15, minutes))
    total = rng.poisson(rps * 60 * load)
    candidate = rng.binomial(total, share)
    requests = (candidate, total - candidate)
    burst = np.exp(rng.normal(0, 0.3, minutes))
    counts = {
        "invocations": requests,
        "invocation_5xx_errors": (
            rng.binomial(requests[0], np.minimum(1, 0.01 * burst * errors_x)),
            rng.binomial(requests[1], np.minimum(1, 0.01 * burst)),
        ),
        "invocation_4xx_errors": (rng.binomial(requests[0], 0.02), rng.binomial(requests[1], 0.02)),
    }
    stretch = 1 + math.log(tail_x) / (LOG_SD * 2.3263)
    latencies: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for minute in range(minutes):
        for side, n in enumerate((requests[0][minute], requests[1][minute])):
            z = rng.normal(0, 1, n)
            if side == 0:
                z = np.where(z > 0, z * stretch, z)
            factor = latency_x if side == 0 else 1.0
            latencies[side].append(MEDIAN_US * factor * math.sqrt(load[minute]) * np.exp(LOG_SD * z))
    return Canary(counts, latencies)


def verdict_after(data: Canary, minutes: int, config: JudgeConfig = DEFAULTS):
    observations = data.observations(minutes, config.default_metrics.latency_p99.tolerance or 0.1)
    return judge(
        config.judged_metrics(), observations, config.false_rollback_rate, thresholds={"latency_p99": data.threshold}
    )


def by_metric(verdict):
    return {evidence.metric: evidence for evidence in verdict.metrics}


# --- A/A and A/B ----------------------------------------------------------------------------------


def test_identical_variants_pass_with_the_evidence_of_each_metric():
    verdict = verdict_after(canary(seed=1, rps=500, minutes=30), minutes=30)

    assert verdict.outcome == "PASS", [(m.metric, m.rule) for m in verdict.metrics]
    assert verdict.minutes == 30 and verdict.waiting is None
    evidence = by_metric(verdict)
    assert list(evidence) == ["errors_5xx", "errors_4xx", "latency_p50", "latency_p99"]
    errors = evidence["errors_5xx"]
    assert errors.samples > errors.min_samples == 500  # requests to the candidate
    assert errors.candidate == pytest.approx(0.01, rel=0.3) and errors.baseline == pytest.approx(0.01, rel=0.2)
    low, high = errors.interval
    assert low is not None and high is not None and low < 0 < high < 0.25  # PASS: the bound is inside +25%
    assert errors.confidence == pytest.approx(1 - 0.01 / 4)
    latency = evidence["latency_p50"]
    assert latency.samples == 30  # paired minutes
    assert latency.relative_effect == pytest.approx(0, abs=0.05)
    assert "no regression" in latency.rule
    tail = evidence["latency_p99"]
    assert tail.kind == "tail" and tail.threshold == pytest.approx(TRUE_P99)
    assert tail.baseline == pytest.approx(0.01, rel=0.2)  # the share above the baseline's p99


def test_identical_variants_at_low_traffic_are_inconclusive_and_say_how_long_a_decision_takes():
    verdict = verdict_after(canary(seed=1, rps=5, minutes=30), minutes=30)

    assert verdict.outcome == "INCONCLUSIVE"
    assert verdict.waiting is not None and "req/s to the candidate" in verdict.waiting
    assert "would be decided in about" in verdict.waiting
    assert all(m.decision_minutes for m in verdict.metrics if m.outcome == "INCONCLUSIVE")


def test_five_times_the_errors_fails_critically_within_minutes():
    data = canary(seed=2, errors_x=5)

    first_fail = next(m for m in range(1, 61) if verdict_after(data, m).critical_failure)
    verdict = verdict_after(data, first_fail)

    assert first_fail <= 8  # at least 5 minutes with errors: one bursty minute is not evidence
    assert verdict.outcome == "FAIL"
    assert verdict.failing() == verdict.failing(critical_only=True) == ("errors_5xx",)
    errors = by_metric(verdict)["errors_5xx"]
    assert errors.relative_effect == pytest.approx(4, rel=0.5)
    assert errors.interval[0] is not None and errors.interval[0] > 0.25
    assert "lies above 1.25" in errors.rule


def test_a_doubling_of_errors_fails_within_fifteen_minutes_at_500_requests_per_second():
    data = canary(seed=3, errors_x=2, rps=500, minutes=15)

    assert verdict_after(data, 15).failing() == ("errors_5xx",)


def test_half_again_the_latency_fails_on_both_percentiles():
    verdict = verdict_after(canary(seed=4, latency_x=1.5, minutes=15), 15)

    assert set(verdict.failing(critical_only=True)) == {"latency_p50", "latency_p99"}
    assert by_metric(verdict)["latency_p50"].relative_effect == pytest.approx(0.5, abs=0.05)


def test_a_regression_of_the_tail_alone_fails_on_p99_and_not_on_p50():
    verdict = verdict_after(canary(seed=12, tail_x=1.5, rps=50, minutes=15), 15)

    assert verdict.failing() == ("latency_p99",)
    assert by_metric(verdict)["latency_p50"].outcome != "FAIL"


def test_a_slowdown_within_the_tolerance_passes():
    verdict = verdict_after(canary(seed=5, latency_x=1.04, rps=200, minutes=30), 30)  # +4%, tolerance +10%

    assert by_metric(verdict)["latency_p50"].outcome == "PASS"
    assert by_metric(verdict)["latency_p50"].relative_effect == pytest.approx(0.04, abs=0.02)
    assert by_metric(verdict)["latency_p99"].outcome == "PASS"


def test_a_faster_candidate_never_fails_when_only_higher_is_worse():
    verdict = verdict_after(canary(seed=6, latency_x=0.5, rps=500, minutes=30), 30)

    assert "FAIL" not in {m.outcome for m in verdict.metrics}
    assert by_metric(verdict)["latency_p99"].outcome == "PASS"


def test_too_little_traffic_is_inconclusive_not_pass():
    # 0.5 request/s: about 3 requests a minute to the candidate, far below 500 in 10 minutes.
    verdict = verdict_after(canary(seed=7, rps=0.5), 10)

    assert verdict.outcome == "INCONCLUSIVE"
    errors = by_metric(verdict)["errors_5xx"]
    assert errors.outcome == "INCONCLUSIVE" and errors.samples < 500
    assert "< min_samples 500" in errors.rule


def test_a_candidate_whose_errors_are_surely_negligible_passes_without_errors_to_compare():
    minutes = [MinuteCounts(0, 3000, 0, 27000) for _ in range(30)]

    compared = compare_rates(minutes, 0.0025)

    assert compared is not None and compared.interval.upper == math.inf
    assert compared.candidate_rate_upper(0.0025, 0.001) < 0.001  # 90,000 requests without an error


def test_no_data_at_all_is_inconclusive_with_unbounded_intervals():
    verdict = judge(DEFAULTS.judged_metrics(), {}, 0.01)

    assert verdict.outcome == "INCONCLUSIVE"
    assert verdict.minutes == 0
    assert all(item.interval == (None, None) and item.relative_effect is None for item in verdict.metrics)


def test_a_non_critical_failure_is_a_fail_without_critical_failure():
    config = JudgeConfig.model_validate({"default_metrics": {"errors_5xx": {"critical": False}}})

    verdict = verdict_after(canary(seed=2, errors_x=5), 10, config)

    assert verdict.outcome == "FAIL" and not verdict.critical_failure
    assert verdict.failing() == ("errors_5xx",) and verdict.failing(critical_only=True) == ()


@pytest.mark.parametrize(
    ("direction", "ratio", "outcome"),
    [
        ("lower_is_worse", 0.9, "FAIL"),  # accuracy -10%, tolerance 2%
        ("lower_is_worse", 1.1, "PASS"),
        ("higher_is_worse", 0.9, "PASS"),
        ("either", 0.9, "FAIL"),
        ("either", 1.1, "FAIL"),
        ("either", 1.0, "PASS"),
    ],
)
def test_a_user_kpi_is_judged_in_its_direction(direction, ratio, outcome):
    config = JudgeConfig.model_validate(
        {
            "default_metrics": {name: {"enabled": False} for name in ("errors_5xx", "errors_4xx", "latency_p99")},
            "metrics": [
                {
                    "name": "accuracy",
                    "namespace": "Acme/Quality",
                    "metric_name": "Accuracy",
                    "statistic": "Average",
                    "direction": direction,
                    "tolerance": 0.02,
                }
            ],
        }
    )
    rng = np.random.default_rng(8)
    shared = 0.9 + rng.normal(0, 0.02, 30)  # the day's data is harder or easier for both variants
    at = [START + timedelta(minutes=m) for m in range(30)]
    accuracy = VariantSeries(
        dict(zip(at, shared * ratio * np.exp(rng.normal(0, 0.002, 30)), strict=True)),
        dict(zip(at, shared * np.exp(rng.normal(0, 0.002, 30)), strict=True)),
    )
    observations = canary(seed=9, minutes=30).observations(30) | {"accuracy": accuracy}

    verdict = judge(config.judged_metrics(), observations, config.false_rollback_rate)

    assert [m.metric for m in verdict.metrics] == ["latency_p50", "accuracy"]
    assert by_metric(verdict)["accuracy"].outcome == outcome


def test_minutes_are_paired_and_minutes_missing_on_one_side_are_skipped():
    metric = JudgedMetric("kpi", "paired", "kpi", "higher_is_worse", 0.0, True, 3)
    at = [START + timedelta(minutes=m) for m in range(4)]
    series = VariantSeries({at[0]: 10.0, at[1]: 12.0, at[2]: 11.0, at[3]: 0.0}, {at[0]: 10.0, at[1]: 12.0})

    evidence = judge((metric,), {"kpi": series}, 0.01).metrics[0]

    assert evidence.samples == 2  # at[2] has no baseline; at[3] cannot be a ratio
    assert evidence.outcome == "INCONCLUSIVE"


def test_the_verdict_round_trips_through_json():
    verdict = verdict_after(canary(seed=2, errors_x=5), 8)

    assert type(verdict).model_validate_json(verdict.model_dump_json()) == verdict


# --- one look: warm-up, unfinished minutes, thresholds ---------------------------------------------


def test_a_look_skips_the_warm_up_and_the_minutes_cloudwatch_may_not_have_finished():
    data = canary(seed=1, rps=50, minutes=30)
    observations = data.observations(30)
    step_started_at = START + timedelta(seconds=20)  # mid-minute: minute 0 is partial

    seen = look(DEFAULTS, observations, step_started_at=step_started_at, now=START + timedelta(minutes=20, seconds=30),
                thresholds={})  # fmt: skip

    # Judged: minutes 4 (after 3 minutes of warm-up from 07:00:20) to 18 (minute 19 began 90 s ago).
    assert seen.verdict.minutes == 15
    assert seen.thresholds["latency_p99"] == pytest.approx(TRUE_P99, rel=0.15)  # the baseline's p99, per minute
    assert by_metric(seen.verdict)["latency_p99"].outcome == "INCONCLUSIVE"  # no slow counts read yet
    assert [q.id for q in queries(DEFAULTS, seen.thresholds)][-1] == "model_latency_p99_slow"


def test_a_fresh_baseline_sets_the_tail_threshold_after_its_warm_up_not_during_it():
    # A fresh baseline had no traffic before the step and warms up with the candidate: its slow
    # first minutes must not raise the threshold (which would blunt the tail test).
    observations = canary(seed=1, rps=50, minutes=20).observations(20)
    p99 = observations["model_latency_p99"]
    warm = {
        minute: value * (3 if minute < START + timedelta(minutes=4) else 1) for minute, value in p99.baseline.items()
    }
    observations["model_latency_p99"] = VariantSeries(p99.candidate, warm)

    seen = look(DEFAULTS, observations, step_started_at=START, now=START + timedelta(minutes=7), thresholds={})

    assert seen.thresholds["latency_p99"] == pytest.approx(TRUE_P99, rel=0.15)


def test_a_blip_of_errors_in_the_warm_up_is_not_judged_but_a_gross_failure_is():
    data = canary(seed=1, rps=50, minutes=20)
    blip = data.counts["invocation_5xx_errors"][0].copy()
    blip[0] += int(0.03 * data.counts["invocations"][0][0])  # +3% 5xx in the step's first minute
    data.counts["invocation_5xx_errors"] = (blip, data.counts["invocation_5xx_errors"][1])
    now = START + timedelta(minutes=12)

    blipped = look(DEFAULTS, data.observations(20), step_started_at=START, now=now, thresholds={})
    assert blipped.verdict.outcome != "FAIL"

    broken = canary(seed=1, rps=50, minutes=20, errors_x=30)  # 30% errors from the first minute
    soon = START + timedelta(minutes=5)  # still in the warm-up's reach: minutes 0-2 are complete
    failed = look(DEFAULTS, broken.observations(20), step_started_at=START, now=soon, thresholds={})
    assert failed.verdict.critical_failure
    assert by_metric(failed.verdict)["errors_5xx"].gross_failure


# --- bursts: overdispersed errors, against scipy ---------------------------------------------------


def test_the_dispersion_estimate_finds_the_beta_binomial_inflation():
    # Beta-binomial shares with intra-minute correlation rho inflate a binomial variance by
    # 1 + (N - 1) rho; Pearson's statistic over its df estimates it (the widening is taken out).
    rng = np.random.default_rng(21)
    n, rho, p = 200, 0.02, 0.1
    a = p * (1 - rho) / rho
    b = (1 - p) * (1 - rho) / rho
    x = stats.betabinom.rvs(n, a, b, size=400, random_state=rng)
    minutes = [MinuteCounts(float(c), 300.0, float(n - c), 2700.0) for c in x]

    df = len(minutes) - 1
    raw = estimate_dispersion(minutes, float(x.sum()), 300.0 * len(x), float(n * len(x) - x.sum()), 2700.0 * len(x))
    from shepherd.analysis.rates import DISPERSION_WIDENING

    assert raw / (1 + DISPERSION_WIDENING / df) == pytest.approx(1 + (n - 1) * rho, rel=0.15)


def test_bursty_errors_on_identical_variants_are_not_rolled_back_over_sixty_looks():
    # Negative binomial errors per variant (minute-to-minute CV 0.7 on each) at 2,000 requests/s: the
    # pooled Poisson interval falsely excludes "no change" in most bakes; the overdispersed one keeps
    # its level (alpha = 0.0025 per metric; with 150 bakes, 2 false failures would already be rare).
    rng = np.random.default_rng(31)
    trials, looks, alpha, cv = 150, 60, 0.0025, 0.7
    shape = 1 / cv**2
    pooled_fails = dispersed_fails = 0
    for _ in range(trials):
        c_req = np.full(looks, 12_000.0)
        b_req = np.full(looks, 108_000.0)
        shock = stats.gamma.rvs(1 / 0.5**2, scale=0.5**2, size=looks, random_state=rng)
        x = stats.nbinom.rvs(shape, shape / (shape + 120 * shock), random_state=rng)
        y = stats.nbinom.rvs(shape, shape / (shape + 1080 * shock), random_state=rng)
        minutes = [MinuteCounts(float(x[i]), c_req[i], float(y[i]), b_req[i]) for i in range(looks)]
        pooled = dispersed = False
        for n in range(1, looks + 1):
            naive = rate_ratio_interval(float(x[:n].sum()), c_req[:n].sum(), float(y[:n].sum()), b_req[:n].sum(), alpha)
            pooled |= naive is not None and naive.lower > 1.25
            compared = compare_rates(minutes[:n], alpha)
            dispersed |= compared is not None and compared.decidable and compared.interval.lower > 1.25
        pooled_fails += pooled
        dispersed_fails += dispersed

    assert pooled_fails / trials > 0.3
    assert dispersed_fails <= 2


def test_the_rate_upper_bound_is_where_the_gamma_poisson_mixture_reaches_one_over_alpha():
    events, exposure, alpha, prior = 3.0, 20_000.0, 0.01, 0.001
    bound = poisson_rate_upper(events, exposure, alpha, prior)

    mixture, _ = integrate.quad(
        lambda mu: stats.poisson.pmf(events, mu * exposure) * stats.expon.pdf(mu, scale=prior), 0, 1, points=[bound]
    )

    assert bound > events / exposure
    assert mixture / stats.poisson.pmf(events, bound * exposure) == pytest.approx(1 / alpha, rel=1e-3)


# --- repeated looks: one a minute for 60 minutes ------------------------------------------------


def test_false_rollback_rate_under_one_look_a_minute_for_an_hour():
    # 100 A/A bakes at 50 requests/s, the judge looking every minute: a false rollback is any FAIL
    # at any look.
    trials, looks = 100, 60
    metrics = DEFAULTS.judged_metrics()
    false_rollbacks = 0
    for seed in range(trials):
        observations = canary(seed=1000 + seed).observations(looks)
        thresholds = {"latency_p99": TRUE_P99}
        spans = [(START, START + timedelta(minutes=minute)) for minute in range(1, looks + 1)]
        if any(
            judge(metrics, observations, 0.01, judged=span, thresholds=thresholds).outcome == "FAIL" for span in spans
        ):
            false_rollbacks += 1

    # 1% allowed: 1 expected at most; 4 or more has probability below 2% if the rate holds.
    assert false_rollbacks <= 3


@pytest.mark.parametrize("kind", ["paired", "rate"])
def test_the_sequences_hold_their_level_where_a_naive_test_repeated_every_minute_does_not(kind):
    # At alpha = 0.1 the level is measurable with few trials. Under the null (no difference), count
    # bakes in which the always-valid interval ever excludes 1, and bakes in which a fixed-sample 90%
    # interval, recomputed every minute, ever does: the first stays under 10%, the second does not.
    rng = np.random.default_rng(11)
    trials, looks, alpha = 400, 60, 0.1
    z = stats.norm.ppf(1 - alpha / 2)
    t_quantile = stats.t.ppf(1 - alpha / 2, np.arange(1, looks + 1))  # by degrees of freedom - 1
    sequential_misses = naive_misses = 0
    for _ in range(trials):
        if kind == "paired":
            d = rng.normal(0, 0.05, looks)
            sums, squares = np.cumsum(d), np.cumsum(d * d)
        else:
            candidate = rng.poisson(3, looks).cumsum()
            baseline = rng.poisson(27, looks).cumsum()
        ever_sequential = ever_naive = False
        for n in range(2, looks + 1):
            if kind == "paired":
                mean = sums[n - 1] / n
                sd = math.sqrt(max(0.0, (squares[n - 1] - n * mean * mean) / (n - 1)))
                interval = paired_log_ratio_interval(LogRatioSummary(n, mean, sd), alpha)
                half = t_quantile[n - 2] * sd / math.sqrt(n)
                naive_excludes = abs(mean) > half
            else:
                x, y = float(candidate[n - 1]), float(baseline[n - 1])
                interval = rate_ratio_interval(x, 300.0 * n, y, 2700.0 * n, alpha)
                # The usual fixed-sample interval of a log rate ratio (Wald), recomputed every minute.
                naive_excludes = x > 0 and y > 0 and abs(math.log(x / y / (300 / 2700))) > z * math.sqrt(1 / x + 1 / y)
            ever_sequential |= not interval.lower <= 1 <= interval.upper
            ever_naive |= naive_excludes
        sequential_misses += ever_sequential
        naive_misses += ever_naive

    assert sequential_misses / trials <= alpha
    assert naive_misses / trials > 2 * alpha


# --- the closed forms, checked numerically with scipy -------------------------------------------


def test_the_paired_bound_is_where_the_sequential_t_bayes_factor_reaches_one_over_alpha():
    n, alpha = 8, 0.01
    summary = LogRatioSummary(count=n, mean=0.3, sd=0.1)
    interval = paired_log_ratio_interval(summary, alpha)
    t_at_bound = (summary.mean - math.log(interval.lower)) * math.sqrt(n) / summary.sd

    def bayes_factor(t: float) -> float:
        g, nu = PAIRED_PRIOR_EFFECT_VARIANCE, n - 1
        alternative, _ = integrate.quad(
            lambda delta: stats.nct.pdf(t, nu, delta * math.sqrt(n)) * stats.norm.pdf(delta, 0, math.sqrt(g)),
            -np.inf,
            np.inf,
        )
        return alternative / stats.t.pdf(t, nu)

    assert bayes_factor(t_at_bound) == pytest.approx(1 / alpha, rel=1e-3)


def test_the_rate_bound_is_where_the_beta_binomial_mixture_reaches_one_over_alpha():
    x, y, alpha = 40, 200, 0.01
    interval = rate_ratio_interval(x, 3000, y, 27000, alpha)
    r = 3000 / 27000
    p_even = r / (1 + r)
    a, b = RATE_PRIOR_ERRORS * p_even, RATE_PRIOR_ERRORS * (1 - p_even)
    for ratio in (interval.lower, interval.upper):
        p0 = ratio * r / (ratio * r + 1)
        mixture, _ = integrate.quad(lambda p: stats.binom.pmf(x, x + y, p) * stats.beta.pdf(p, a, b), 0, 1, points=[p0])

        assert mixture / stats.binom.pmf(x, x + y, p0) == pytest.approx(1 / alpha, rel=1e-4)


def test_a_verdict_is_announced_as_canary_analysis_completed():
    verdict = verdict_after(canary(seed=2, errors_x=5), 5)

    announcement = CanaryAnalysisCompleted(
        rollout_id="20261129T070000Z-3fa9c1d2e4",
        endpoint_name="churn-prod",
        model_name="churn",
        version=4,
        previous_version=3,
        step=0,
        percent=10,
        outcome=verdict.outcome,
        decision="rollback",
        critical_failure=verdict.critical_failure,
        minutes=verdict.minutes,
        metrics=list(verdict.metrics),
    )

    detail = json.loads(announcement.model_dump_json())
    assert (detail["metrics"][0]["metric"], detail["metrics"][0]["outcome"]) == ("errors_5xx", "FAIL")
    assert CanaryAnalysisCompleted.model_validate(detail) == announcement


def test_the_verdict_survives_the_rollout_records_dynamodb_encoding():
    # The rollout record is stored through item_of/model_of (floats as Decimals, None as NULL).
    verdict = verdict_after(canary(seed=7, rps=0.5), 3)  # INCONCLUSIVE, some bounds unbounded (None)

    item = serialize(item_of(verdict))

    assert model_of({name: DESERIALIZER.deserialize(value) for name, value in item.items()}, Verdict) == verdict


# --- properties of the intervals ----------------------------------------------------------------

counts = st.integers(min_value=0, max_value=5_000)
requests = st.integers(min_value=1, max_value=100_000)


@settings(max_examples=150, deadline=None)
@given(x=counts, n_c=requests, y=counts, n_b=requests, alpha=st.sampled_from([0.0025, 0.01, 0.1]))
def test_a_rate_interval_holds_its_estimate_and_swapping_the_variants_inverts_it(x, n_c, y, n_b, alpha):
    assume(x <= n_c and y <= n_b)
    interval = rate_ratio_interval(x, n_c, y, n_b, alpha)
    swapped = rate_ratio_interval(y, n_b, x, n_c, alpha)

    assert interval.lower <= interval.estimate <= interval.upper
    # The prior is centred on "no change", so the test does not care which variant is which.
    assert swapped.lower == pytest.approx(1 / interval.upper if interval.upper else math.inf, rel=1e-6)
    assert swapped.upper == pytest.approx(1 / interval.lower if interval.lower else math.inf, rel=1e-6)


@settings(max_examples=100, deadline=None)
@given(x=st.integers(0, 500), n_c=st.integers(600, 5_000), y=st.integers(0, 5_000))
def test_more_candidate_errors_never_lower_the_bounds(x, n_c, y):
    fewer = rate_ratio_interval(x, n_c, y, 30_000, 0.01)
    more = rate_ratio_interval(x + 1, n_c, y, 30_000, 0.01)

    assert more.lower >= fewer.lower * (1 - 1e-9)
    assert more.upper >= fewer.upper * (1 - 1e-9)


@settings(max_examples=100, deadline=None)
@given(
    log_ratios=st.lists(st.floats(-2, 2, allow_nan=False), min_size=2, max_size=120),
    looser=st.sampled_from([0.05, 0.1]),
)
def test_a_paired_interval_is_centred_and_narrows_with_a_stricter_alpha(log_ratios, looser):
    summary = LogRatioSummary.of(log_ratios)
    strict = paired_log_ratio_interval(summary, 0.001)
    loose = paired_log_ratio_interval(summary, looser)

    assert loose.lower <= loose.estimate <= loose.upper
    assert strict.lower <= loose.lower and loose.upper <= strict.upper
    if math.isfinite(loose.upper) and loose.lower > 0:
        # Symmetric on the log scale around the geometric-mean ratio.
        assert math.log(loose.upper) - summary.mean == pytest.approx(summary.mean - math.log(loose.lower), abs=1e-9)
