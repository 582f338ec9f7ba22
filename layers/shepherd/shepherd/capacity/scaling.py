"""What Shepherd knows about a variant's capacity: its instance counts and how auto scaling manages them.

Values read from SageMaker (DescribeEndpoint) and Application Auto Scaling (DescribeScalableTargets,
DescribeScalingPolicies), passed between Shepherd's own functions: frozen Structs, never validated.
"""

from __future__ import annotations

import msgspec

SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_PER_INSTANCE = "SageMakerVariantInvocationsPerInstance"
"""The predefined target-tracking metric for a variant: SageMaker's `InvocationsPerInstance`, a sum per minute."""
TARGET_TRACKING = "TargetTrackingScaling"


def variant_resource_id(endpoint_name: str, variant_name: str) -> str:
    """Application Auto Scaling's name for a variant: ``endpoint/NAME/variant/VARIANT``."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


class VariantCapacity(msgspec.Struct, frozen=True):
    """A variant's instance counts as DescribeEndpoint reports them.

    ``desired`` moves first (UpdateEndpointWeightsAndCapacities, an auto scaling activity), ``current``
    when SageMaker has the instances. Both are None for a serverless variant, which has no instances.
    """

    current: int | None
    desired: int | None


class SuspendedState(msgspec.Struct, frozen=True):
    """Which scaling Application Auto Scaling holds back for a target (all False: it scales freely)."""

    dynamic_scaling_in: bool = False
    dynamic_scaling_out: bool = False
    scheduled_scaling: bool = False


NOT_SUSPENDED = SuspendedState()
ALL_SUSPENDED = SuspendedState(dynamic_scaling_in=True, dynamic_scaling_out=True, scheduled_scaling=True)


class ScalableTarget(msgspec.Struct, frozen=True):
    """A variant registered with Application Auto Scaling: scaling keeps its desired count in [min, max].

    While a variant is registered SageMaker refuses an UpdateEndpoint that removes it or changes its
    instance type (SageMaker guide, "Update endpoints that use auto scaling").
    """

    endpoint_name: str
    variant_name: str
    min_capacity: int
    max_capacity: int
    suspended: SuspendedState = NOT_SUSPENDED


class CustomizedMetric(msgspec.Struct, frozen=True):
    """A target-tracking policy's own CloudWatch metric. A metric-math specification (``Metrics``)
    is kept only as ``uses_metric_math``: Shepherd does not evaluate it."""

    namespace: str | None
    metric_name: str | None
    statistic: str | None
    dimensions: tuple[tuple[str, str], ...] = ()
    uses_metric_math: bool = False


class TargetTracking(msgspec.Struct, frozen=True):
    """A target-tracking configuration: keep the metric near ``target_value`` per instance.

    Exactly one of ``predefined_metric`` (e.g. `INVOCATIONS_PER_INSTANCE`) and ``customized_metric``
    is set. Cooldowns are in seconds; None means Application Auto Scaling's default (300 s for SageMaker).
    """

    target_value: float
    predefined_metric: str | None = None
    customized_metric: CustomizedMetric | None = None
    scale_out_cooldown: int | None = None
    scale_in_cooldown: int | None = None
    disable_scale_in: bool = False


class ScalingPolicy(msgspec.Struct, frozen=True):
    """A scaling policy attached to a variant. ``target_tracking`` is None for step or predictive scaling."""

    name: str
    policy_type: str
    target_tracking: TargetTracking | None = None


class VariantScaling(msgspec.Struct, frozen=True):
    """Everything observed about one variant's capacity before a change: counts, registration, policies."""

    variant_name: str
    capacity: VariantCapacity
    target: ScalableTarget | None
    policies: tuple[ScalingPolicy, ...] = ()

    @property
    def registered(self) -> bool:
        return self.target is not None
