"""Canary detection on realistic traffic: Shepherd's judge beside static alarms and a Kayenta-style
judge, on the same simulated steps.

    .venv/bin/python bench/canary_detection.py [--quick] [--trials 1000] [--regression-trials 100]
                                               [--seed 7] [--only TEXT]

Each condition is a traffic level (1, 5, 50, 500, 2,000 requests/s in total), a step (the candidate
at 10%, or an 80% step) and a mess (``canary_traffic``'s docstring states every assumption):

- ``clean``: independent requests, steady traffic, identical instances, no warm-up: the judge's own
  assumptions, for reference;
- ``realistic``: the candidate on 1 instance against a baseline on 3 (fixed per-host differences),
  negative-binomial errors (per-variant minute-to-minute CV 0.3), common noise and shocks, a diurnal
  load, a typical warm-up (2-5 minutes, up to 3x latency, up to +2% 5xx in minute one);
- ``bursty CV 0.7``: realistic, with errors' per-variant CV 0.7;
- ``warm-up 3x +2% 5xx``: realistic, with the worst warm-up (5 minutes from 3x latency, +2% 5xx in
  minute one);
- ``steep ramp``: realistic, with the traffic doubling over the step.

Every condition's latency is heavy-tailed (lognormal sigma 1, 0.1% of requests 10x slower). For each,
A/A (an identical model) and five regressions: 5xx x1.5, x2, x5 (from 1%), and tail-only p99 +20%,
+50% (median unchanged). A step bakes 60 minutes; the judges look once a minute (``canary_judges``).
Printed per judge and condition: false rollbacks on A/A (per judged step, with a 95% Wilson
interval) and holds (Shepherd: the step ended INCONCLUSIVE and ``on_inconclusive`` held it; how many
holds said how long a decision would take, ``Verdict.waiting``), and per regression the share rolled
back within 15 minutes (by the look at 15 min 20 s) / within the bake (by the look at 60 min 20 s) /
advanced anyway. Then Shepherd's CPU per look and its GetMetricData call.

Seeded: each (condition, change) has its own stream, so ``--only`` and the trial counts of others do
not change its numbers. The simulation's cost does not depend on the traffic (see ``canary_traffic``),
so every condition gets the same trials.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter

import numpy as np
from _support import table
from canary_judges import BAKE_MINUTES, Outcomes, ShepherdOutcomes, kayenta_style, shepherd_judge, static_alarms
from canary_traffic import Change, Condition, Mess, simulate, true_ratios

from shepherd.analysis.config import JudgeConfig

DETECT_WITHIN = 15
CLEAN = Mess("clean")
REALISTIC = Mess("realistic", error_cv=0.3, hosts=True, common=True, load="diurnal", warmup="typical")
BURSTY = Mess("bursty CV 0.7", error_cv=0.7, hosts=True, common=True, load="diurnal", warmup="typical")
WARMUP = Mess("warm-up 3x +2% 5xx", error_cv=0.3, hosts=True, common=True, load="diurnal", warmup="worst")
STEEP = Mess("steep ramp", error_cv=0.3, hosts=True, common=True, load="steep", warmup="typical")

CONDITIONS = (
    Condition(CLEAN, 50, 10),
    Condition(CLEAN, 2000, 80),
    *(Condition(REALISTIC, rps, percent) for percent in (10, 80) for rps in (1, 5, 50, 500, 2000)),
    Condition(BURSTY, 50, 10),
    Condition(BURSTY, 2000, 10),
    Condition(BURSTY, 2000, 80),
    Condition(BURSTY, 5, 80),
    Condition(WARMUP, 50, 10),
    Condition(WARMUP, 2000, 10),
    Condition(WARMUP, 5, 80),
    Condition(STEEP, 500, 10),
)
AA = Change("A/A")
CHANGES = (
    AA,
    Change("5xx x1.5", error_factor=1.5),
    Change("5xx x2", error_factor=2.0),
    Change("5xx x5", error_factor=5.0),
    Change("p99 +20%", p99_factor=1.2),
    Change("p99 +50%", p99_factor=1.5),
)
REGRESSIONS = CHANGES[1:]

Results = dict[str, dict[Condition, dict[str, Outcomes]]]  # judge -> condition -> change -> outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000, help="A/A steps per condition")
    parser.add_argument("--regression-trials", type=int, default=100, help="steps per condition and regression")
    parser.add_argument("--quick", action="store_true", help="60 A/A and 20 per regression: a smoke run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default="", help="run the conditions whose name contains this text")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.regression_trials = 60, 20
    chosen = [condition for condition in CONDITIONS if args.only in condition.name]
    config = JudgeConfig()
    began = time.perf_counter()
    results: Results = {"Shepherd (defaults)": {}, "static alarms (5%, 300 ms, 3 of 3)": {}, "Kayenta-style (98%)": {}}
    for condition in chosen:
        index = CONDITIONS.index(condition)
        for change_index, change in enumerate(CHANGES):
            trials = args.trials if change is AA else args.regression_trials
            seed = (args.seed, index, change_index)
            batch = simulate(condition, change, trials, np.random.default_rng(seed))
            by_judge = {
                "Shepherd (defaults)": shepherd_judge(batch, config, seed),
                "static alarms (5%, 300 ms, 3 of 3)": static_alarms(batch),
                "Kayenta-style (98%)": kayenta_style(batch),
            }
            for name, outcomes in by_judge.items():
                results[name].setdefault(condition, {})[change.name] = outcomes
        print(f"{condition.name}: done at {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    report(results, args, time.perf_counter() - began)


def report(results: Results, args: argparse.Namespace, seconds: float) -> None:
    print(
        f"{args.trials} A/A steps and {args.regression_trials} per regression in every condition, seed {args.seed}, "
        f"{seconds:.0f} s (the same trials at every traffic: the simulation's cost does not depend on it). "
        f"A {BAKE_MINUTES}-minute bake, one look a minute. Cells of a regression: rolled back within "
        f"{DETECT_WITHIN} min / within the bake / advanced anyway (the rest were held)."
    )
    checks = ", ".join(
        f"{change.name}: p50 x{p50:.3f}, p99 x{p99:.3f}"
        for change in REGRESSIONS
        if change.p99_factor != 1
        for p50, p99 in [true_ratios(change)]
    )
    print(f"Model check, true candidate/baseline on one instance: {checks}.\n")
    for name, by_condition in results.items():
        print(f"### {name}\n")
        print(_judge_table(name, by_condition))
        print()
    _shepherd_notes(results["Shepherd (defaults)"])
    _against_the_goals(results["Shepherd (defaults)"])


def _judge_table(name: str, by_condition: dict[Condition, dict[str, Outcomes]]) -> str:
    is_shepherd = name.startswith("Shepherd")
    headers = ["condition", "false rollbacks, A/A [95%]"]
    if is_shepherd:
        headers.append("holds, A/A (waiting said)")
    headers += [change.name for change in REGRESSIONS]
    rows = []
    for condition, by_change in by_condition.items():
        aa = by_change[AA.name]
        rolled = int((aa.decision == "rollback").sum())
        low, high = wilson(rolled, aa.decision.size)
        row = [condition.name, f"{rolled / aa.decision.size:.2%} [{low:.2%}, {high:.2%}]"]
        if is_shepherd:
            assert isinstance(aa, ShepherdOutcomes)
            holds = int((aa.decision == "hold").sum())
            said = sum(1 for waiting in aa.waiting if waiting)
            row.append(f"{holds / aa.decision.size:.1%} ({said}/{holds})" if holds else "0%")
        row += [_detection(by_change[change.name]) for change in REGRESSIONS]
        rows.append(row)
    return table(headers, rows)


def _detection(outcomes: Outcomes) -> str:
    within = _within(outcomes)
    in_bake = ((outcomes.decision == "rollback") & (outcomes.look <= BAKE_MINUTES)).mean()
    advanced = (outcomes.decision == "advance").mean()
    return f"{within:.0%} / {in_bake:.0%} / {advanced:.0%}"


def _shepherd_notes(by_condition: dict[Condition, dict[str, Outcomes]]) -> None:
    looks: list[int] = []
    queries = datapoints = 0
    causes = []
    unsaid: Counter[str] = Counter()
    for condition, by_change in by_condition.items():
        for change, outcomes in by_change.items():
            assert isinstance(outcomes, ShepherdOutcomes)
            looks += outcomes.look_ns
            queries, datapoints = max(queries, outcomes.most_queries), max(datapoints, outcomes.most_datapoints)
            for decision, waiting in zip(outcomes.decision, outcomes.waiting, strict=True):
                if decision == "hold" and not waiting:
                    unsaid[f"{condition.name}, {change}"] += 1
        aa = by_change[AA.name]
        assert isinstance(aa, ShepherdOutcomes)
        failing = Counter(metric for metrics in aa.failing for metric in metrics)
        if failing:
            causes.append(f"{condition.name}: " + ", ".join(f"{metric} {count}" for metric, count in failing.items()))
    if causes:
        print("Shepherd's false rollbacks on A/A, by failing metric: " + "; ".join(causes) + ".")
    if unsaid:
        listed = ", ".join(f"{where}: {count}" for where, count in unsaid.items())
        print(f"Holds without Verdict.waiting: {sum(unsaid.values())} ({listed}).")
    ordered = sorted(looks)
    print(
        f"Shepherd's judge, CPU per look (queries() and look(), {len(looks):,} looks): mean "
        f"{statistics.fmean(looks) / 1000:.0f} µs, p99 {ordered[int(0.99 * (len(ordered) - 1))] / 1000:.0f} µs, "
        f"max {ordered[-1] / 1000:.0f} µs (a pause of the garbage collector of this long process). One "
        f"GetMetricData call per look: at most {queries} queries (limit 500) and {datapoints:,} datapoints "
        "(limit 100,800)."
    )


def _against_the_goals(by_condition: dict[Condition, dict[str, Outcomes]]) -> None:
    """The measured numbers each goal is about (Shepherd's judge), without judging them."""
    false_rates = {}
    for condition, by_change in by_condition.items():
        aa = by_change[AA.name]
        rolled = int((aa.decision == "rollback").sum())
        false_rates[condition] = (rolled / aa.decision.size, wilson(rolled, aa.decision.size)[1])
    above = [condition.name for condition, (rate, _) in false_rates.items() if rate > 0.01]
    worst = max(false_rates, key=lambda condition: false_rates[condition][0])
    lines = [
        f"false rollbacks per judged step (goal <= 1%): highest {false_rates[worst][0]:.2%} ({worst.name}); "
        f"{len(above)} of {len(false_rates)} conditions above 1%"
        + (f"; every condition's 95% upper bound <= 1%: {all(high <= 0.01 for _, high in false_rates.values())}")
    ]
    for change in ("5xx x2", "p99 +50%"):
        shares = {
            condition: _within(by_change[change])
            for condition, by_change in by_condition.items()
            if condition.rps >= 50
        }
        if shares:
            lowest = min(shares, key=lambda condition: shares[condition])
            lines.append(
                f"{change} rolled back within {DETECT_WITHIN} min at >= 50 rps (goal >= 90%): lowest "
                f"{shares[lowest]:.0%} ({lowest.name}); {sum(share < 0.9 for share in shares.values())} of "
                f"{len(shares)} conditions below 90%"
            )
    holds = [
        waiting
        for by_change in by_condition.values()
        for outcomes in by_change.values()
        if isinstance(outcomes, ShepherdOutcomes)
        for decision, waiting in zip(outcomes.decision, outcomes.waiting, strict=True)
        if decision == "hold"
    ]
    lines.append(
        f"holds that say how long a decision would take (Verdict.waiting): {sum(map(bool, holds))} of {len(holds)}"
    )
    print("\nAgainst the goals (Shepherd's judge, as measured here):\n" + "\n".join(f"- {line}" for line in lines))


def _within(outcomes: Outcomes) -> float:
    return float(((outcomes.decision == "rollback") & (outcomes.look <= DETECT_WITHIN)).mean())


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a binomial proportion (sound at 0 of n, unlike the Wald one)."""
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


if __name__ == "__main__":
    main()
