"""The ports capacity-aware code needs: instance counts from SageMaker, registration from Application Auto Scaling."""

from __future__ import annotations

from typing import Protocol

from shepherd.capacity.scaling import ScalableTarget, ScalingPolicy, SuspendedState, TargetTracking, VariantCapacity


class CapacityReader(Protocol):
    def variant_capacity(self, endpoint_name: str) -> dict[str, VariantCapacity] | None:
        """Each variant's current and desired instance counts; None if the endpoint does not exist."""
        ...


class VariantAutoScaling(Protocol):
    """Application Auto Scaling for SageMaker variants (`shepherd.adapters.autoscaling` implements it).

    Failures: throttling and 5xx -> `TransientError`; anything else refused -> `ScalingRequestRefused`
    (`NoScalableTarget` when the variant is not registered). Removing what is absent counts as done.
    """

    def scalable_target(self, endpoint_name: str, variant_name: str) -> ScalableTarget | None: ...

    def scaling_policies(self, endpoint_name: str, variant_name: str) -> tuple[ScalingPolicy, ...]: ...

    def register(self, target: ScalableTarget) -> None:
        """Register the variant, or update its limits and suspended state if it is registered."""
        ...

    def deregister(self, endpoint_name: str, variant_name: str) -> None:
        """Deregister the variant; Application Auto Scaling deletes its policies with it."""
        ...

    def put_target_tracking_policy(
        self, endpoint_name: str, variant_name: str, policy_name: str, tracking: TargetTracking
    ) -> None: ...

    def delete_policy(self, endpoint_name: str, variant_name: str, policy_name: str) -> None: ...

    def set_suspended(self, endpoint_name: str, variant_name: str, suspended: SuspendedState) -> None:
        """Suspend or resume scaling of a registered variant, keeping its limits."""
        ...
