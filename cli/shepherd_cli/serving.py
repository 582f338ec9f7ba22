"""Which version serves an endpoint now: the one its traffic goes to, as SageMaker reports it.

"Live" is what serves the traffic now, not what a record last said: after a rollback to v1, v1
serves whatever the registry still calls v5; during a watch window the new version serves while the
old one stands by. So the answer is read from the endpoint's variants (DescribeEndpoint's current
weights), never from the rollout records. The dashboard's endpoint list uses it; `shepherd status`
and `versions` can share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from msgspec import Struct, structs

from shepherd.rollouts.ports import EndpointAuditEntry

HALF = 50  # a candidate above half of the traffic serves; at exactly half, whoever served still does


def serving_variant(variants: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The variant taking the most traffic (``current_weight``), or None when none takes any (an
    endpoint being created, or all weights at 0). A tie (a 50% canary) goes to the first listed."""
    weighted = [variant for variant in variants if (variant.get("current_weight") or 0) > 0]
    if not weighted:
        return None
    return max(weighted, key=lambda variant: float(variant["current_weight"]))


def traffic_share(variant: Mapping[str, Any], variants: Sequence[Mapping[str, Any]]) -> float:
    """The variant's share of the endpoint's traffic, 0 to 1 (SageMaker's weights are relative)."""
    total = sum(float(other.get("current_weight") or 0) for other in variants)
    return float(variant.get("current_weight") or 0) / total if total else 0.0


class ServedPeriod(Struct, frozen=True):
    """A version taking an endpoint's traffic from ``since`` until ``until`` (None: it still does)."""

    endpoint_name: str
    model_name: str
    version: int
    rollout_id: str | None
    since: datetime
    until: datetime | None


def served_periods(
    trail: Iterable[EndpointAuditEntry], replaced: Mapping[str, tuple[str, int] | None]
) -> list[ServedPeriod]:
    """When each version took the endpoint's traffic, oldest first, from its audit trail's weight requests
    (``to_percent``: the rollout's candidate above half takes it, below half the version it replaced).
    ``replaced`` maps a rollout id to the (model, version) it replaced. Entries written before the fields
    existed say no percent and move nothing."""
    periods: list[ServedPeriod] = []
    for entry in sorted(trail, key=lambda entry: entry.at):
        if entry.to_percent is None or entry.to_percent == HALF:
            continue
        serving = (entry.model_name, entry.version) if entry.to_percent > HALF else replaced.get(entry.rollout_id or "")
        current = periods[-1] if periods and periods[-1].until is None else None
        if current is not None and (current.model_name, current.version) == serving:
            continue
        if current is not None:
            periods[-1] = structs.replace(current, until=entry.at)
        if serving is not None:
            periods.append(ServedPeriod(entry.endpoint_name, *serving, entry.rollout_id, entry.at, None))
    return periods
