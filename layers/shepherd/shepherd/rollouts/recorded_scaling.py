"""The old live variant's auto scaling, kept on the rollout record from the retire on (issue 23, rule 4).

The retire deregisters the old variant (SageMaker refuses to remove a registered one), and
deregistering deletes its policies: after it, nothing in AWS says what they were. A restore puts the
old variant back and gives it its own scaling again (its limits, never a promotion's override), so the
record keeps it, written before anything is deregistered (reconcile.py). Only what Shepherd carries
is kept: the limits, the suspended state and the target-tracking policies.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field

from shepherd.capacity.scaling import (
    TARGET_TRACKING,
    CustomizedMetric,
    ScalableTarget,
    ScalingPolicy,
    SuspendedState,
    TargetTracking,
    VariantCapacity,
    VariantScaling,
)
from shepherd.capacity.sizing import carried_tracking
from shepherd.kernel.frozen import Frozen


class RecordedMetric(Frozen):
    """A target-tracking policy's own CloudWatch metric (never metric math: that is not carried)."""

    namespace: str | None
    metric_name: str | None
    statistic: str | None
    dimensions: tuple[tuple[str, str], ...] = ()


class RecordedPolicy(Frozen):
    name: str
    target_value: float
    predefined_metric: str | None = None
    customized_metric: RecordedMetric | None = None
    scale_out_cooldown: int | None = None
    scale_in_cooldown: int | None = None
    disable_scale_in: bool = False


class RecordedScaling(Frozen):
    """A variant's registration as it was before the retire: limits, suspended state, policies; and
    the instance count it served with then (what autoscaling had made of it), which a restore after
    the retire gives it back (kept_capacity.py). None in a record written before it was kept."""

    min_capacity: int = Field(ge=1)
    max_capacity: int = Field(ge=1)
    suspended: tuple[bool, bool, bool] = (False, False, False)  # dynamic in, dynamic out, scheduled
    policies: tuple[RecordedPolicy, ...] = ()
    instance_count: int | None = Field(default=None, ge=1, exclude_if=lambda count: count is None)

    @classmethod
    def of(cls, target: ScalableTarget, policies: tuple[ScalingPolicy, ...], instance_count: int) -> Self:
        """Raises `capacity.sizing.ScalingNotCarried` for a policy Shepherd does not carry (step scaling,
        metric math)."""
        state = target.suspended
        return cls(
            min_capacity=target.min_capacity,
            max_capacity=target.max_capacity,
            suspended=(state.dynamic_scaling_in, state.dynamic_scaling_out, state.scheduled_scaling),
            policies=tuple(_recorded(policy) for policy in policies),
            instance_count=instance_count,
        )

    def scaling_of(self, endpoint_name: str, variant_name: str) -> VariantScaling:
        """The registration as it was, for ``variant_name`` (the variant it was recorded from)."""
        target = ScalableTarget(
            endpoint_name, variant_name, self.min_capacity, self.max_capacity, SuspendedState(*self.suspended)
        )
        policies = tuple(ScalingPolicy(p.name, TARGET_TRACKING, _tracking(p)) for p in self.policies)
        return VariantScaling(variant_name, VariantCapacity(None, None), target, policies)


def _recorded(policy: ScalingPolicy) -> RecordedPolicy:
    tracking = carried_tracking(policy)  # what the hand-over carries: never step scaling or metric math
    metric = tracking.customized_metric
    return RecordedPolicy(
        name=policy.name,
        target_value=tracking.target_value,
        predefined_metric=tracking.predefined_metric,
        customized_metric=None
        if metric is None
        else RecordedMetric(
            namespace=metric.namespace,
            metric_name=metric.metric_name,
            statistic=metric.statistic,
            dimensions=metric.dimensions,
        ),
        scale_out_cooldown=tracking.scale_out_cooldown,
        scale_in_cooldown=tracking.scale_in_cooldown,
        disable_scale_in=tracking.disable_scale_in,
    )


def _tracking(policy: RecordedPolicy) -> TargetTracking:
    metric = policy.customized_metric
    return TargetTracking(
        target_value=policy.target_value,
        predefined_metric=policy.predefined_metric,
        customized_metric=None
        if metric is None
        else CustomizedMetric(metric.namespace, metric.metric_name, metric.statistic, metric.dimensions),
        scale_out_cooldown=policy.scale_out_cooldown,
        scale_in_cooldown=policy.scale_in_cooldown,
        disable_scale_in=policy.disable_scale_in,
    )
