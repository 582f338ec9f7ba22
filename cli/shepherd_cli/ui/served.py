"""When each version took an endpoint's traffic, from the endpoint's audit trail (the version page's
"where and when it was live"): the weight requests' ``to_percent`` fields, never the entries' words.

"Live" is what serves the traffic: a candidate above half of it serves, and a flip back (or a rollout
ending below half) hands it back to the version the rollout replaced. Now is `shepherd_cli.serving`'s
(DescribeEndpoint's weights); this is the past.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from msgspec import Struct, structs

from shepherd.rollouts.ports import EndpointAuditEntry

HALF = 50  # a candidate above half of the traffic serves; at exactly half, whoever served still does


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
        if entry.to_percent is None or entry.to_percent == HALF or entry.version is None:
            continue  # a refused promotion names no version and moves no traffic
        serving: tuple[str, int] | None = (
            (entry.model_name, entry.version) if entry.to_percent > HALF else replaced.get(entry.rollout_id or "")
        )
        current = periods[-1] if periods and periods[-1].until is None else None
        if current is not None and (current.model_name, current.version) == serving:
            continue
        if current is not None:
            periods[-1] = structs.replace(current, until=entry.at)
        if serving is not None:
            periods.append(ServedPeriod(entry.endpoint_name, *serving, entry.rollout_id, entry.at, None))
    return periods
