"""Capacity: a 60-minute 10% canary at the peak of a simulated day, under three ways of sizing it.

One day at 1-minute resolution: diurnal traffic between about 200 and 2,000 requests a second (peak at
14:00, 5% noise, seeded). The live variant is autoscaled by target tracking on InvocationsPerInstance
(70 rps per instance = 4,200 invocations a minute; min 2, max 40): above the target 3 minutes -> scale
out to `tracked_capacity`, new instances serving 5 minutes later; below 90% of it 15 minutes, outside
the 300 s cooldowns -> scale in. At 14:00 a canary takes 10% of the traffic for 60 minutes, then 100%,
then the old variant is removed. Three policies:

* **share** - Shepherd's rules (`shepherd.capacity.sizing`): the candidate has
  `candidate_count(live, 10%)` (headroom 1.2), grown each minute as the live fleet grows; at the end of
  the hour it grows to the live count (5 minutes to provision) before the weights move.
* **full** - a full-size candidate: the live count from the start, following the live fleet.
* **blue/green** - SageMaker's blue/green with canary traffic shifting: a second fleet of the live
  fleet's size, provisioned (5 minutes) before the canary shift, kept for the bake.

In each, removing the old variant after the flip takes 8 minutes (deregister, UpdateEndpoint), during
which both fleets run. Extra instance-hours are what the cost ledger (`shepherd.capacity.cost`) records:
the candidate's instances until it is the live variant, plus live instances held above what autoscaling
chose. Every update writes the live count with `live_count_to_keep`; the "naive" line writes the
endpoint config's count instead, to show what the margin check catches.

    .venv/bin/python bench/capacity.py [--seed 7]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from _support import table

from shepherd.capacity.cost import CostLedger, extra_running
from shepherd.capacity.prices import DEFAULT_PRICES
from shepherd.capacity.sizing import CapacityPlan, live_count_to_keep
from shepherd.capacity.target_tracking import tracked_capacity

MINUTES = 24 * 60
PEAK = 14 * 60
LOW_RPS, HIGH_RPS, NOISE = 200.0, 2000.0, 0.05
TARGET = 70.0 * 60  # invocations per instance per minute
MIN_CAPACITY, MAX_CAPACITY, CONFIGURED = 2, 40, 2
HIGH_MINUTES, LOW_MINUTES, LOW_FRACTION, COOLDOWN = 3, 15, 0.9, 5
PROVISION, REMOVAL = 5, 8  # minutes for new instances to serve; to remove a variant after the flip
CANARY_START, BAKE, SHARE = PEAK, 60, 10
INSTANCE_TYPE = "ml.m5.xlarge"
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def traffic(seed: int) -> np.ndarray:
    """Invocations per minute over the day."""
    minutes = np.arange(MINUTES)
    middle, swing = (HIGH_RPS + LOW_RPS) / 2, (HIGH_RPS - LOW_RPS) / 2
    rps = middle + swing * np.cos(2 * np.pi * (minutes - PEAK) / MINUTES)
    noise = np.random.default_rng(seed).normal(1.0, NOISE, MINUTES).clip(0.5, 1.5)
    return np.asarray(rps * noise * 60)


@dataclass
class Autoscaled:
    """One variant under target tracking: desired moves at once, current follows after provisioning."""

    desired: int
    arriving: list[tuple[int, int]] = field(default_factory=list)  # (minute serving, count)
    current: int = 0
    high: int = 0
    low: int = 0
    last_out: int = -COOLDOWN
    last_in: int = -COOLDOWN
    scale_in_suspended: bool = False

    def __post_init__(self) -> None:
        self.current = self.desired

    def minute(self, minute: int, invocations: float) -> None:
        self.current = max([self.current, *(count for at, count in self.arriving if at <= minute)])
        self.arriving = [(at, count) for at, count in self.arriving if at > minute]
        if invocations <= 0:  # no datum: both runs break, nothing scales (as in AWS)
            self.high = self.low = 0
            return
        metric = invocations / self.current
        self.high = self.high + 1 if metric > TARGET else 0
        self.low = self.low + 1 if metric < LOW_FRACTION * TARGET else 0
        wanted = tracked_capacity(self.current, metric, TARGET, MIN_CAPACITY, MAX_CAPACITY)
        if self.high >= HIGH_MINUTES and wanted > self.desired:
            self.set(minute, wanted)
            self.last_out = minute
        elif (
            self.low >= LOW_MINUTES
            and not self.scale_in_suspended
            and minute - max(self.last_in, self.last_out) >= COOLDOWN
            and wanted < self.desired
        ):
            self.set(minute, wanted)
            self.last_in = minute

    def set(self, minute: int, count: int) -> None:
        """A count written (by scaling or by an update): more instances serve after provisioning."""
        if count > self.current:
            self.arriving.append((minute + PROVISION, count))
        else:
            self.current = count
            self.arriving = []
        self.desired = count


@dataclass
class Run:
    name: str
    bake_hours: float
    total_hours: float
    min_margin: int


def simulate(policy: str, load: np.ndarray, naive: bool = False) -> Run:
    """One day under ``policy``; the margin is the live fleet minus autoscaling's desired count for the
    traffic it serves (a shadow scaler that no update overwrites)."""
    live, shadow = Autoscaled(CONFIGURED), Autoscaled(CONFIGURED)
    plan = CapacityPlan((SHARE, 100))
    candidate, ledger, bake_hours = 0, CostLedger(), 0.0
    launch, bake_end = CANARY_START - PROVISION, CANARY_START + BAKE
    flip = bake_end + (PROVISION if policy == "share" else 0)  # share: grow to the live count first
    done = flip + REMOVAL
    margin = MAX_CAPACITY
    for minute in range(MINUTES):
        share = SHARE / 100 if CANARY_START <= minute < flip else 1.0 if flip <= minute < done else 0.0
        if launch <= minute < done:
            candidate = _candidate(policy, plan, minute, live, candidate, naive, launch, bake_end, flip)
            live.scale_in_suspended = minute >= flip  # the old fleet kept whole for a rollback until removed
            at = DAY + timedelta(minutes=minute)
            running = extra_running(INSTANCE_TYPE, candidate, INSTANCE_TYPE, live.current, shadow.desired)
            ledger = ledger.observe(at, running)
            if minute == bake_end:
                bake_hours = ledger.instance_hours()
        if minute == done:
            ledger = ledger.close(DAY + timedelta(minutes=minute))
        live_load = load[minute] * (1 - share)
        live.minute(minute, live_load)
        shadow.minute(minute, live_load)
        margin = min(margin, live.current - shadow.current)
    label = policy + (" (naive: writes the config's count)" if naive else "")
    return Run(label, bake_hours, ledger.instance_hours(), margin)


def _candidate(
    policy: str,
    plan: CapacityPlan,
    minute: int,
    live: Autoscaled,
    candidate: int,
    naive: bool,
    launch: int,
    bake_end: int,
    flip: int,
) -> int:
    """The candidate's count this minute (and, at launch, the live count the UpdateEndpoint writes)."""
    observed = live_count_to_keep(live.current, live.desired, CONFIGURED)
    if minute == launch:  # UpdateEndpoint adds the candidate, writing the live variant's count with it
        live.set(minute, CONFIGURED if naive else observed)
        return plan.at_step(0, observed) if policy == "share" else observed
    if policy == "share":
        if minute < bake_end:
            return plan.grown_during_step(0, observed, candidate) or candidate
        if minute == bake_end:
            return plan.at_step(1, observed)  # grown to the live count before any weight moves
        return candidate
    if policy == "full" and minute < flip:
        return max(candidate, observed)  # a full-size candidate follows the live fleet up
    return candidate  # blue/green: the green fleet has the blue fleet's size at launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    seed = parser.parse_args().seed
    load = traffic(seed)
    runs = [simulate("share", load), simulate("full", load), simulate("blue/green", load)]
    runs.append(simulate("share", load, naive=True))
    price = DEFAULT_PRICES[INSTANCE_TYPE]
    rows = [
        [
            run.name,
            run.min_margin,
            f"{run.bake_hours:.2f}",
            f"{run.total_hours:.2f}",
            f"${run.total_hours * price:.2f}",
        ]
        for run in runs
    ]
    peak_live = math.ceil(load[PEAK] / TARGET)
    print(f"seed {seed}; live fleet at 14:00 about {peak_live} x {INSTANCE_TYPE} (${price}/h, approximate)")
    print(
        table(
            [
                "policy",
                "live margin vs autoscaling (min)",
                "extra instance-hours, launch + bake",
                "extra instance-hours, whole rollout",
                "estimated cost",
            ],
            rows,
        )
    )
    share, full = runs[0], runs[1]
    print(
        f"share / full: bake {share.bake_hours / full.bake_hours:.1%} (goal <= 15%), "
        f"whole rollout {share.total_hours / full.total_hours:.1%}"
    )


if __name__ == "__main__":
    main()
