"""How many instances each variant has during a rollout (issue 23, rules 2-4). Pure: counts in, counts out.

* The candidate is sized to its share: ``ceil(live count x share x headroom)`` at a step below 100%, at
  least 1 and never more than the live fleet; at 100% exactly the live fleet's count (the fleet
  autoscaling sized for the whole load). An explicit count in the promotion wins.
* The live fleet is never shrunk by Shepherd: an update writes the larger of the observed current and
  desired counts (a scale-out in flight is kept; instances still serving are kept).
* When the candidate becomes live it takes over the old variant's scalable target and policies.

The rollout engine applies them through rollouts/candidate_sizing.py, kept_capacity.py and
scaling_handover.py; `bench/capacity.py` measures them on a simulated day (`CapacityPlan`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from shepherd.capacity.scaling import (
    CustomizedMetric,
    ScalableTarget,
    ScalingPolicy,
    TargetTracking,
    VariantCapacity,
    VariantScaling,
)
from shepherd.kernel.errors import ShepherdError

DEFAULT_HEADROOM = 1.2
"""Spare capacity for a partial share: a small share has few instances, so one busy instance or a
rounding down would put each above autoscaling's target."""

_TOLERANCE = 1e-9  # 10 x 10% x 1.2 is 1.2000000000000002 in floats: ceil must not add an instance for that


def candidate_count(
    live_count: int, percent: int, headroom: float = DEFAULT_HEADROOM, explicit: int | None = None
) -> int:
    """The candidate's instance count at a step sending it ``percent`` of the traffic.

    No headroom at 100%: the live fleet's count is what autoscaling chose for the whole load, and the
    candidate then has exactly that (the issue's rule, and what the carried scaling starts from). Below
    100% the count is capped at the live count, so it never falls as the share grows.
    """
    if explicit is not None:
        if explicit < 1:
            raise ValueError(f"an explicit instance count must be at least 1, got {explicit}")
        return explicit
    if not 0 < percent <= 100:
        raise ValueError(f"a step's share must be in (0, 100] percent, got {percent}")
    if headroom < 1:
        raise ValueError(f"headroom below 1 would size the candidate under its share, got {headroom}")
    if live_count < 0:
        raise ValueError(f"a live count cannot be negative, got {live_count}")
    full = max(1, live_count)
    if percent == 100:
        return full
    return min(full, max(1, math.ceil(live_count * percent / 100 * headroom - _TOLERANCE)))


def live_count_to_keep(current: int | None, desired: int | None, configured: int) -> int:
    """The live variant's count an update writes: never below what was observed just before.

    ``desired`` above ``current`` is a scale-out in flight (writing ``current`` would cancel it);
    ``current`` above ``desired`` is a scale-in whose instances still serve. ``configured`` (the count
    in the live endpoint config) is used only when SageMaker reported neither.
    """
    observed = [count for count in (current, desired) if count is not None]
    keep = max(observed) if observed else configured
    if keep < 1:
        raise ValueError(
            f"a live variant needs at least 1 instance, observed {current}/{desired}, configured {configured}"
        )
    return keep


class CapacityPlan(msgspec.Struct, frozen=True):
    """The candidate's count at each step of a strategy, from the live count observed before the step."""

    percents: tuple[int, ...]
    headroom: float = DEFAULT_HEADROOM
    explicit: int | None = None

    def __post_init__(self) -> None:
        if not self.percents or any(b <= a for a, b in zip(self.percents, self.percents[1:], strict=False)):
            raise ValueError(f"a plan's steps must be increasing shares, got {self.percents}")
        for percent in self.percents:
            candidate_count(1, percent, self.headroom, self.explicit)  # refuses a bad share or headroom now

    def at_step(self, index: int, live_count: int) -> int:
        """The candidate's count when step ``index`` starts (set before its weights move)."""
        return candidate_count(live_count, self.percents[index], self.headroom, self.explicit)

    def grown_during_step(self, index: int, live_count: int, candidate_now: int) -> int | None:
        """The count the candidate must grow to while step ``index`` bakes because the live fleet grew;
        None when it has enough. Never a shrink: a bake is judged on a fleet that does not move down."""
        wanted = self.at_step(index, live_count)
        return wanted if wanted > candidate_now else None

    def preview(self, live_count: int) -> tuple[int, ...]:
        """Each step's count if the live fleet kept ``live_count`` (what `shepherd rollout` can show)."""
        return tuple(self.at_step(index, live_count) for index in range(len(self.percents)))


# --- scaling carried to the new live variant ---------------------------------------------------------


class ScalingNotCarried(ShepherdError):
    """The old variant's scaling cannot be copied faithfully to the new one (named in ``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ScalingOverrides(msgspec.Struct, frozen=True):
    """A promotion's own limits for the new live variant (None: keep the old variant's)."""

    min_capacity: int | None = None
    max_capacity: int | None = None


def carried_scaling(
    old: VariantScaling,
    new_variant: str,
    overrides: ScalingOverrides | None = None,
    capacity: VariantCapacity | None = None,
) -> VariantScaling:
    """The new live variant's registration: the old one's limits and policies, for the new resource id.

    ``old`` must be the registration observed before the rollout suspended anything (its suspended
    state is carried: a user's own suspension stays). Policies keep their names, targets, metrics and
    cooldowns; a customized metric's ``VariantName`` dimension follows the variant. ``capacity``
    defaults to the old variant's counts: at 100% the candidate has the live fleet's count.
    Register the result before deregistering the old variant (deregistering deletes its policies).
    """
    overrides = overrides or ScalingOverrides()
    counts = capacity or old.capacity
    if old.target is None:
        if overrides != ScalingOverrides():
            raise ScalingNotCarried(f"variant {old.variant_name} is not autoscaled: there are no limits to override")
        return VariantScaling(new_variant, counts, None, ())
    minimum = old.target.min_capacity if overrides.min_capacity is None else overrides.min_capacity
    maximum = old.target.max_capacity if overrides.max_capacity is None else overrides.max_capacity
    if not 1 <= minimum <= maximum:
        raise ScalingNotCarried(f"scaling limits must satisfy 1 <= min <= max, got min {minimum}, max {maximum}")
    target = ScalableTarget(old.target.endpoint_name, new_variant, minimum, maximum, old.target.suspended)
    policies = tuple(_carried_policy(policy, old.variant_name, new_variant) for policy in old.policies)
    return VariantScaling(new_variant, counts, target, policies)


def carried_tracking(policy: ScalingPolicy) -> TargetTracking:
    """The policy's target tracking, if Shepherd carries it; raises `ScalingNotCarried` for step scaling
    and metric math (refused rather than carried wrongly)."""
    tracking = policy.target_tracking
    if tracking is None:
        raise ScalingNotCarried(
            f"policy {policy.name} is {policy.policy_type}: only target-tracking policies are carried"
        )
    metric = tracking.customized_metric
    if metric is not None and metric.uses_metric_math:
        raise ScalingNotCarried(f"policy {policy.name} uses metric math, which Shepherd does not rewrite")
    return tracking


def _carried_policy(policy: ScalingPolicy, old_variant: str, new_variant: str) -> ScalingPolicy:
    tracking = carried_tracking(policy)
    metric = tracking.customized_metric
    if metric is None:
        return policy
    dimensions = _renamed(metric.dimensions, old_variant, new_variant)
    moved = msgspec.structs.replace(metric, dimensions=dimensions)
    return msgspec.structs.replace(policy, target_tracking=_with_metric(tracking, moved))


def _renamed(dimensions: Sequence[tuple[str, str]], old_variant: str, new_variant: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, new_variant if name == "VariantName" and value == old_variant else value) for name, value in dimensions
    )


def _with_metric(tracking: TargetTracking, metric: CustomizedMetric) -> TargetTracking:
    return msgspec.structs.replace(tracking, customized_metric=metric)
