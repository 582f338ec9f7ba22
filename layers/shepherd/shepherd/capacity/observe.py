"""Observe a variant's capacity before changing it: counts from SageMaker, registration and policies from
Application Auto Scaling (issue 23, "Observe capacity")."""

from __future__ import annotations

from shepherd.capacity.ports import CapacityReader, VariantAutoScaling
from shepherd.capacity.scaling import VariantScaling


def observe_capacity(
    endpoint_name: str, endpoints: CapacityReader, scaling: VariantAutoScaling
) -> tuple[VariantScaling, ...] | None:
    """Every variant of the live endpoint with its counts, scalable target and policies (None: no endpoint).

    Policies are read only for a registered variant: an unregistered one can have none.
    """
    capacities = endpoints.variant_capacity(endpoint_name)
    if capacities is None:
        return None
    observed = []
    for variant_name, capacity in capacities.items():
        target = scaling.scalable_target(endpoint_name, variant_name)
        policies = scaling.scaling_policies(endpoint_name, variant_name) if target is not None else ()
        observed.append(VariantScaling(variant_name, capacity, target, policies))
    return tuple(observed)
