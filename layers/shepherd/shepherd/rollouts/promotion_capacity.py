"""What a promotion decides about capacity (issue 23): how the candidate is sized, the auto scaling limits
the new live variant takes over with, and the refusals that would otherwise come only at the retire,
after a whole canary.

Checked before the lock is taken, like promotion_checks.py: a refusal leaves nothing behind. The live
variant's registration is read here (one DescribeScalableTargets; its policies too when it is
registered) and judged by `carried_scaling`, the rule the hand-over applies at the retire
(scaling_handover.py), so what is accepted now is what can be carried then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shepherd.capacity.errors import ScalingRequestRefused
from shepherd.capacity.ports import VariantAutoScaling
from shepherd.capacity.scaling import VariantCapacity, VariantScaling
from shepherd.capacity.sizing import DEFAULT_HEADROOM, ScalingNotCarried, ScalingOverrides, carried_scaling
from shepherd.rollouts.placement_rules import PlacementRules
from shepherd.rollouts.promotion_checks import PromotionRefused
from shepherd.rollouts.record import CandidateSizing, LiveDeployment, ScalingLimits, VariantSpec

if TYPE_CHECKING:  # promotion.py imports this module: its request is a type here
    from shepherd.rollouts.promotion import PromotionRequest


def candidate_sizing(
    request: PromotionRequest, live: LiveDeployment | None, autoscaled: bool
) -> CandidateSizing | None:
    """The candidate sized to its share, for an update of an autoscaled endpoint, or of any endpoint
    when the promotion gives ``headroom`` (it asks for sizing). None when its count is fixed: a first
    deployment (no live fleet to take a share of), a count or another instance type the promotion
    named (it wins), or an
    endpoint without auto scaling and no ``headroom`` (it behaves as it did before sizing existed)."""
    if live is None or request.initial_instance_count is not None:
        return None
    if request.instance_type not in (None, live.variant.instance_type):
        # Another instance type serves another load per instance: the live count says nothing of how
        # many it needs, so the explicit type wins, at the live variant's count as before.
        return None
    if not autoscaled and request.headroom is None:
        return None
    return CandidateSizing(headroom=DEFAULT_HEADROOM if request.headroom is None else request.headroom)


def scaling_limits(request: PromotionRequest) -> ScalingLimits | None:
    """The promotion's own limits for the new live variant; None: it takes over the old variant's."""
    if request.min_capacity is None and request.max_capacity is None:
        return None
    return ScalingLimits(min_capacity=request.min_capacity, max_capacity=request.max_capacity)


def capacity_checked(
    request: PromotionRequest,
    version: int,
    live: LiveDeployment | None,
    candidate: VariantSpec,
    scaling: VariantAutoScaling,
    placement: PlacementRules | None,
) -> bool:
    """Whether the live variant is registered with Application Auto Scaling. Raises `PromotionRefused`
    when its auto scaling, with the promotion's limits, cannot go to the candidate; `TransientError`
    when Application Auto Scaling cannot answer now (Lambda retries the command)."""
    refusal, autoscaled = _capacity_judged(
        request, live.variant if live is not None else None, candidate, scaling, placement
    )
    if refusal is not None:
        raise PromotionRefused(refusal, version)
    return autoscaled


def _capacity_judged(
    request: PromotionRequest,
    live: VariantSpec | None,
    candidate: VariantSpec,
    scaling: VariantAutoScaling,
    placement: PlacementRules | None,
) -> tuple[str | None, bool]:
    """Why the live variant's auto scaling, with the promotion's limits, cannot go to the candidate (or
    None), and whether the live variant is registered with Application Auto Scaling."""
    overrides = ScalingOverrides(request.min_capacity, request.max_capacity)
    asked = overrides != ScalingOverrides()
    if asked:
        refusal = _limits_refusal(overrides, placement)
        if refusal is not None:
            return refusal, False
        if live is None:
            return (
                "min_capacity/max_capacity override the live variant's auto scaling limits, and a first "
                "deployment has no live variant: deploy it, register it with Application Auto Scaling, then "
                "give them to a later promotion"
            ), False
    if live is None:
        return None, False
    try:
        target = scaling.scalable_target(request.endpoint_name, live.variant_name)
        policies = scaling.scaling_policies(request.endpoint_name, live.variant_name) if target is not None else ()
    except ScalingRequestRefused as refused:
        return f"could not read the auto scaling of the live variant {live.variant_name}: {refused.reason}", False
    if target is None:
        if asked:
            return (
                f"min_capacity/max_capacity override the live variant's auto scaling limits, but the live "
                f"variant {live.variant_name} is not registered with Application Auto Scaling on "
                f"{request.endpoint_name}: promote without them, or register the variant first"
            ), False
        return None, False
    old = VariantScaling(live.variant_name, VariantCapacity(None, None), target, policies)
    try:
        carried_scaling(old, candidate.variant_name, overrides)
    except ScalingNotCarried as not_carried:
        return (
            f"the live variant {live.variant_name}'s auto scaling cannot be carried to {candidate.variant_name} "
            f"when it takes over: {not_carried.reason}"
        ), True
    return None, True


def _limits_refusal(overrides: ScalingOverrides, placement: PlacementRules | None) -> str | None:
    low, high = overrides.min_capacity, overrides.max_capacity
    if low is not None and high is not None and low > high:
        return f"min_capacity {low} is more than max_capacity {high}"
    if placement is None:
        return None
    for name, limit in (("max_capacity", high), ("min_capacity", low)):
        if limit is not None and limit > placement.max_instance_count:
            return (
                f"{name} {limit} is more than the {placement.max_instance_count} instances allowed per variant "
                "on this stack (MaxInstanceCount)"
            )
    return None
