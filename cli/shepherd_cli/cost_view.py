"""A rollout's cost ledger as `shepherd rollout` and the dashboard show it (README, Cost ledger).

The instance-hours are the rollout record's own; the estimate uses the table the stack's functions
use: the stack's `InstancePriceTable` parameter (an SSM parameter) when it is set and readable, else
Shepherd's built-in approximate table. Either way the table is named beside the estimate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shepherd.capacity.prices import BUILT_IN, PriceTable
from shepherd.rollouts.cost_tracking import cost_report
from shepherd.rollouts.record import Rollout
from shepherd_cli.target import Target


def price_table(target: Target) -> PriceTable:
    """The stack's own table if its InstancePriceTable names one, else the built-in one."""
    try:
        [stack] = target.client("cloudformation").describe_stacks(StackName=target.stack_name)["Stacks"]
    except (BotoCoreError, ClientError, ValueError):  # unreadable here: the estimate says which table it used
        return BUILT_IN
    parameters = {p.get("ParameterKey"): p.get("ParameterValue") for p in stack.get("Parameters", [])}
    name = parameters.get("InstancePriceTable")
    if not name:
        return BUILT_IN
    from shepherd.adapters.ssm_prices import read_price_table

    return read_price_table(target.client("ssm"), name)


def rollout_cost(target: Target, rollout: Rollout) -> dict[str, Any] | None:
    """The ledger priced as of now (None for a rollout started before the ledger existed)."""
    if rollout.cost is None:
        return None
    now = target.simulated_now() or datetime.now(UTC)
    report = cost_report(rollout, price_table(target), now)
    return report.model_dump(mode="json") if report is not None else None


def cost_text(cost: dict[str, Any]) -> str:
    """One line: "0.467 extra instance-hours (candidate 0.467), estimated $0.05 (estimate from ...)"."""
    roles = ", ".join(f"{role} {hours:g}" for role, hours in cost["extra_instance_hours_by_role"].items())
    so_far = "" if cost["final"] else " so far"
    if cost.get("estimated_cost_usd") is None:
        price = "unpriced: " + ", ".join(cost["unpriced_instance_types"])
    else:
        price = f"estimated ${cost['estimated_cost_usd']:.2f}"
    hours = f"{cost['extra_instance_hours']:g} extra instance-hours{so_far} ({roles})"
    return f"{hours}, {price} (estimate from {cost['price_table']})"
