"""Each variant's instances over time, as the endpoint's rollouts configured them.

SageMaker publishes no instance count metric; what the endpoint ran is what each rollout's endpoint
configs asked for: from a rollout's start, the shift config (the live variant, the candidate and a
fresh baseline, each with its own count); at its end, the final config (the candidate alone) when it
completed, or the live variant alone when it was rolled back or failed. The last point is now, as
DescribeEndpoint reports it (``CurrentInstanceCount``: autoscaling included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shepherd.rollouts.ports import StoredRollout
from shepherd.rollouts.record import Phase, Rollout, VariantSpec


def configured_instances(
    rollouts: Sequence[StoredRollout], described: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, Any]:
    """``{"times": [epoch seconds...], "variants": [{"variant_name", "instances": [...]}]}``: per
    variant its count at each time (None: not on the endpoint then), for a step chart."""
    moments: list[tuple[datetime, dict[str, int]]] = []
    for stored in sorted(rollouts, key=lambda stored: stored.rollout.started_at):
        rollout = stored.rollout
        moments.append((rollout.started_at, _counts(rollout.live, rollout.candidate, rollout.fresh_baseline)))
        if rollout.ended_at is not None:
            moments.append((rollout.ended_at, _ended(rollout)))
    current = {
        str(variant["variant_name"]): int(variant["instance_count"])
        for variant in described
        if variant.get("instance_count") is not None
    }
    if current or moments:
        moments.append((now, current))
    names = list(dict.fromkeys(name for _, counts in moments for name in counts))
    return {
        "times": [at.timestamp() for at, _ in moments],
        "variants": [
            {"variant_name": name, "instances": [counts.get(name) for _, counts in moments]} for name in names
        ],
    }


def _ended(rollout: Rollout) -> dict[str, int]:
    if rollout.phase is Phase.COMPLETED:
        return _counts(rollout.candidate)
    return _counts(rollout.live)  # rolled back or failed: the live variant alone (none on a first deployment)


def _counts(*specs: VariantSpec | None) -> dict[str, int]:
    return {spec.variant_name: spec.initial_instance_count for spec in specs if spec is not None}
