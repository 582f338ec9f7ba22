"""Target tracking's arithmetic: the instance count that brings a per-instance metric back to its target.

Application Auto Scaling sizes a target-tracking step proportionally: with ``current`` instances each
seeing ``metric``, the load is ``current * metric``, and ``target`` per instance needs
``ceil(current * metric / target)`` instances, kept within the scalable target's [min, max].
"""

from __future__ import annotations

import math


def tracked_capacity(current: int, metric: float, target: float, min_capacity: int, max_capacity: int) -> int:
    """The instance count target tracking asks for (rounded up: never under-provision)."""
    if target <= 0:
        raise ValueError(f"target must be > 0, got {target}")
    # A tiny tolerance keeps 3000.0000001 / 3000 from asking for one more instance.
    needed = math.ceil(current * metric / target - 1e-9)
    return clamp(needed, min_capacity, max_capacity)


def clamp(count: int, min_capacity: int, max_capacity: int) -> int:
    return max(min_capacity, min(max_capacity, count))
