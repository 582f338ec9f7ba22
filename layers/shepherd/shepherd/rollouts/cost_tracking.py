"""The cost ledger kept by the controller (issue 23, rule 5): what each pass sees running, charged.

Each pass that writes a record charges it (`charge`, on the action's next record) with the instance
counts the pass's own DescribeEndpoint reported, so the ledger costs no extra AWS call: the counts seen
are taken to run until the next written record (capacity/cost.py). Extra is:

- ``candidate``: the candidate's instances while it is not the endpoint's only variant (through the
  shift, the watch window with the previous variant at weight 0 and the retire, or until a restore
  removes it). A first deployment, alone from the start, adds nothing.
- ``fresh-baseline``: the fresh baseline's instances (the live model again, for the judge).
- ``live-held``: live instances held above what autoscaling would have chosen. Shepherd holds none
  today (every config it writes keeps the count observed just before: kept_capacity.py, and it never
  suspends scaling), so the role is charged 0; it stays in the ledger for the day it does.

A variant's count is the larger of its current and desired counts, as kept_capacity.py reads them; a
resize is charged from the pass that asks for it, with the counts it asks for (the next written record
comes only once they run). A terminal record's ledger is closed (record.to_ended); when a restore gave
up and the clean-up later removes the candidate, the minutes in between are not charged.
"""

from __future__ import annotations

from datetime import datetime

import msgspec.structs

from shepherd.capacity.cost import CANDIDATE, FRESH_BASELINE, LIVE_HELD, CostLedger, Running
from shepherd.capacity.prices import PriceTable
from shepherd.contracts.cost import RolloutCost
from shepherd.rollouts.actions import Action, ResizeVariants, Wait
from shepherd.rollouts.cost_record import CostRecord
from shepherd.rollouts.observed import ObservedEndpoint, ObservedVariant
from shepherd.rollouts.record import Rollout

HOURS_DECIMALS = 3  # 3.6 s: finer than any pass interval
USD_DECIMALS = 2


def running(rollout: Rollout, observed: ObservedEndpoint | None) -> tuple[Running, ...]:
    """The extra instances `observed` shows for `rollout`, by role (module docstring)."""
    seen = observed.variants if observed is not None else ()
    others = any(variant.name != rollout.candidate.variant_name for variant in seen)
    candidate = _count(observed, rollout.candidate.variant_name) if others else 0
    extra = [Running(CANDIDATE, rollout.candidate.instance_type, candidate)]
    if rollout.fresh_baseline is not None:
        fresh = rollout.fresh_baseline
        extra.append(Running(FRESH_BASELINE, fresh.instance_type, _count(observed, fresh.variant_name)))
    if rollout.live is not None:
        extra.append(Running(LIVE_HELD, rollout.live.instance_type, 0))  # Shepherd holds nothing (above)
    return tuple(extra)


def charged(rollout: Rollout, observed: ObservedEndpoint | None, now: datetime) -> Rollout:
    """`rollout` with its ledger charged up to `now` and `observed`'s counts running from then on;
    closed if the rollout has ended."""
    ledger = rollout.cost.ledger() if rollout.cost is not None else CostLedger()
    ledger = ledger.observe(now, running(rollout, observed))
    if rollout.phase.is_terminal:
        ledger = ledger.close(now)
    return rollout.model_copy(update={"cost": CostRecord.of(ledger)})


def charge(action: Action, observed: ObservedEndpoint | None, now: datetime) -> Action:
    """The action with its next record charged (a wait writes nothing, so charges nothing). A resize
    is charged with the counts it asks for: they are what runs (and is billed) from now on, and the
    next written record may come only once they are provisioned."""
    if isinstance(action, Wait):
        return action
    if isinstance(action, ResizeVariants) and observed is not None:
        observed = _asked(observed, action.requested())
    return msgspec.structs.replace(action, next=charged(action.next, observed, now))


def _asked(observed: ObservedEndpoint, counts: dict[str, int]) -> ObservedEndpoint:
    variants = tuple(
        msgspec.structs.replace(variant, desired_instances=counts[variant.name]) if variant.name in counts else variant
        for variant in observed.variants
    )
    return msgspec.structs.replace(observed, variants=variants)


def cost_report(rollout: Rollout, prices: PriceTable, at: datetime) -> RolloutCost | None:
    """The ledger as an announcement carries it, as of `at` (the last counts taken to run until then;
    a closed ledger stays as it closed). None for a rollout that has no ledger (started before it)."""
    if rollout.cost is None:
        return None
    ledger = rollout.cost.ledger()
    if not rollout.phase.is_terminal and ledger.last_at is not None and at > ledger.last_at:
        ledger = ledger.observe(at, ledger.running)
    # Every role charged or running, and the two every rollout has (0 when nothing was charged to them).
    roles = sorted(
        {CANDIDATE, LIVE_HELD} | {used.role for used in ledger.usage} | {item.role for item in ledger.running}
    )
    kinds = sorted({used.instance_type for used in ledger.usage})
    estimate = ledger.estimated_cost(prices.prices)
    return RolloutCost(
        extra_instance_hours=_hours(ledger.instance_hours()),
        extra_instance_hours_by_role={role: _hours(ledger.instance_hours(role)) for role in roles},
        extra_instance_hours_by_type={kind: _hours(_type_hours(ledger, kind)) for kind in kinds},
        estimated_cost_usd=None if estimate is None else round(estimate, USD_DECIMALS),
        unpriced_instance_types=list(ledger.unpriced_types(prices.prices)),
        price_table=prices.source,
        as_of=ledger.last_at or at,
        final=rollout.phase.is_terminal,
    )


def _count(observed: ObservedEndpoint | None, variant_name: str) -> int:
    variant: ObservedVariant | None = observed.variant(variant_name) if observed is not None else None
    if variant is None:
        return 0
    return max(variant.current_instances or 0, variant.desired_instances or 0)


def _type_hours(ledger: CostLedger, instance_type: str) -> float:
    seconds = sum(used.instance_seconds for used in ledger.usage if used.instance_type == instance_type)
    return seconds / 3600


def _hours(value: float) -> float:
    return round(value, HOURS_DECIMALS)
