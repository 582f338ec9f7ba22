"""The cost ledger: the extra instance-hours a rollout ran, and their estimated price (issue 23, rule 5).

"Extra" is what the rollout adds to the endpoint autoscaling would otherwise run: every candidate
instance while the candidate is not yet the live variant (role ``candidate``), the fresh baseline's
(role ``fresh-baseline``: a judge's second copy of the live model), and live instances held
above the count autoscaling would have chosen, e.g. while scale-in is suspended (role ``live-held``).

The ledger integrates observations: the counts seen at one time are taken to run until the next
observation (a step function, like SageMaker's per-second billing between two reads). It is a frozen
value: each observation returns a new ledger, to be stored on the rollout record by the engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

import msgspec

CANDIDATE = "candidate"
FRESH_BASELINE = "fresh-baseline"  # the live model again beside the candidate, for the judge (rollouts/record.py)
LIVE_HELD = "live-held"
SECONDS_PER_HOUR = 3600.0


class Running(msgspec.Struct, frozen=True):
    """Extra instances seen running at one observation."""

    role: str
    instance_type: str
    count: int


class Usage(msgspec.Struct, frozen=True):
    """Instance-seconds accumulated for one (role, instance type)."""

    role: str
    instance_type: str
    instance_seconds: float


def extra_running(
    candidate_type: str, candidate_count: int, live_type: str, live_count: int, autoscaling_desired: int | None
) -> tuple[Running, ...]:
    """What one observation of a rollout adds: the candidate's instances, and live ones above what
    autoscaling would have chosen (``autoscaling_desired``; None: the live variant is not autoscaled,
    so nothing it runs is held for the rollout)."""
    held = 0 if autoscaling_desired is None else max(0, live_count - autoscaling_desired)
    return (Running(CANDIDATE, candidate_type, candidate_count), Running(LIVE_HELD, live_type, held))


class CostLedger(msgspec.Struct, frozen=True):
    usage: tuple[Usage, ...] = ()
    last_at: datetime | None = None
    running: tuple[Running, ...] = ()

    def observe(self, at: datetime, running: Iterable[Running]) -> CostLedger:
        """Charge what ran since the last observation, then remember what runs now.

        An observation older than the last one is ignored: a stale controller pass cannot charge
        backwards or replace newer counts.
        """
        now = tuple(running)
        for item in now:
            if item.count < 0:
                raise ValueError(f"an instance count cannot be negative: {item}")
        if self.last_at is not None and at < self.last_at:
            return self
        seconds = 0.0 if self.last_at is None else (at - self.last_at).total_seconds()
        totals: dict[tuple[str, str], float] = defaultdict(float)
        for used in self.usage:
            totals[(used.role, used.instance_type)] += used.instance_seconds
        for item in self.running:
            totals[(item.role, item.instance_type)] += item.count * seconds
        usage = tuple(Usage(role, kind, total) for (role, kind), total in sorted(totals.items()) if total > 0)
        return CostLedger(usage, at, now)

    def close(self, at: datetime) -> CostLedger:
        """The rollout ended at ``at``: charge up to then; nothing extra runs afterwards."""
        return self.observe(at, ())

    def instance_hours(self, role: str | None = None) -> float:
        """Extra instance-hours charged so far (of one role, or all)."""
        seconds = sum(used.instance_seconds for used in self.usage if role is None or used.role == role)
        return seconds / SECONDS_PER_HOUR

    def unpriced_types(self, prices: Mapping[str, float]) -> tuple[str, ...]:
        """Instance types charged here that the price table does not know."""
        return tuple(sorted({used.instance_type for used in self.usage if used.instance_type not in prices}))

    def estimated_cost(self, prices: Mapping[str, float]) -> float | None:
        """USD for the extra instance-hours; None if any type's price is unknown (see `unpriced_types`):
        a partial sum would read as the whole cost."""
        if self.unpriced_types(prices):
            return None
        return sum(used.instance_seconds / SECONDS_PER_HOUR * prices[used.instance_type] for used in self.usage)
