"""Application Auto Scaling for SageMaker variants: read and change a variant's scalable target and policies.

Implements `shepherd.capacity.ports.VariantAutoScaling`. Every call names the variant exactly
(``endpoint/NAME/variant/VARIANT``, dimension ``sagemaker:variant:DesiredInstanceCount``), and answers
are filtered on that exact resource id too, so a variant never sees another's policies.

Failures: throttling, 5xx and ``ConcurrentUpdateException`` (another change of the same target is
pending) -> `TransientError`; ``ObjectNotFoundException`` -> `NoScalableTarget` when writing, "absent"
when reading or removing; anything else -> `ScalingRequestRefused`.
"""

from __future__ import annotations

from typing import Any, NoReturn

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import error_code, is_transient, raise_transient_or_reraise
from shepherd.capacity.errors import NoScalableTarget, ScalingRequestRefused
from shepherd.capacity.scaling import (
    SCALABLE_DIMENSION,
    SERVICE_NAMESPACE,
    TARGET_TRACKING,
    CustomizedMetric,
    ScalableTarget,
    ScalingPolicy,
    SuspendedState,
    TargetTracking,
    variant_resource_id,
)
from shepherd.registry.errors import TransientError

NOT_FOUND = "ObjectNotFoundException"
CONCURRENT_UPDATE = "ConcurrentUpdateException"


class ApplicationAutoScaling:
    def __init__(self, client: Any) -> None:
        self._client = client

    # --- reading ------------------------------------------------------------------------------------

    def scalable_target(self, endpoint_name: str, variant_name: str) -> ScalableTarget | None:
        resource_id = variant_resource_id(endpoint_name, variant_name)
        response = self._call(
            "describe_scalable_targets",
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceIds=[resource_id],
            ScalableDimension=SCALABLE_DIMENSION,
        )
        for target in response.get("ScalableTargets", []):
            if target["ResourceId"] == resource_id:
                return ScalableTarget(
                    endpoint_name=endpoint_name,
                    variant_name=variant_name,
                    min_capacity=int(target["MinCapacity"]),
                    max_capacity=int(target["MaxCapacity"]),
                    suspended=_suspended_state(target.get("SuspendedState") or {}),
                )
        return None

    def scaling_policies(self, endpoint_name: str, variant_name: str) -> tuple[ScalingPolicy, ...]:
        resource_id = variant_resource_id(endpoint_name, variant_name)
        policies: list[ScalingPolicy] = []
        token: str | None = None
        while True:
            page = self._call(
                "describe_scaling_policies",
                ServiceNamespace=SERVICE_NAMESPACE,
                ResourceId=resource_id,
                ScalableDimension=SCALABLE_DIMENSION,
                **({"NextToken": token} if token else {}),
            )
            # Exact match: moto 5.2.5 matches ResourceId as a substring of the one asked for.
            policies.extend(
                _policy(policy) for policy in page.get("ScalingPolicies", []) if policy["ResourceId"] == resource_id
            )
            token = page.get("NextToken")
            if not token:
                return tuple(policies)

    # --- changing -----------------------------------------------------------------------------------

    def register(self, target: ScalableTarget) -> None:
        if not 1 <= target.min_capacity <= target.max_capacity:
            # SageMaker's rule for variants (min >= 1, min <= max); refused here with AWS's code.
            raise ScalingRequestRefused(
                "ValidationException",
                f"capacity limits must satisfy 1 <= min <= max, "
                f"got min {target.min_capacity}, max {target.max_capacity}",
            )
        self._call(
            "register_scalable_target",
            **self._names(target.endpoint_name, target.variant_name),
            MinCapacity=target.min_capacity,
            MaxCapacity=target.max_capacity,
            SuspendedState=_suspended_request(target.suspended),
        )

    def deregister(self, endpoint_name: str, variant_name: str) -> None:
        try:
            self._client.deregister_scalable_target(**self._names(endpoint_name, variant_name))
        except ClientError as error:
            if error_code(error) != NOT_FOUND:
                _raise_domain_error(error)

    def put_target_tracking_policy(
        self, endpoint_name: str, variant_name: str, policy_name: str, tracking: TargetTracking
    ) -> None:
        self._call(
            "put_scaling_policy",
            PolicyName=policy_name,
            PolicyType=TARGET_TRACKING,
            **self._names(endpoint_name, variant_name),
            TargetTrackingScalingPolicyConfiguration=_tracking_request(tracking),
        )

    def delete_policy(self, endpoint_name: str, variant_name: str, policy_name: str) -> None:
        try:
            self._client.delete_scaling_policy(PolicyName=policy_name, **self._names(endpoint_name, variant_name))
        except ClientError as error:
            if error_code(error) != NOT_FOUND:
                _raise_domain_error(error)

    def set_suspended(self, endpoint_name: str, variant_name: str, suspended: SuspendedState) -> None:
        # Only the suspended state is sent: RegisterScalableTarget leaves unnamed fields (the limits) as they
        # are. It would register a new target, though, so the variant must be registered already.
        if self.scalable_target(endpoint_name, variant_name) is None:
            raise NoScalableTarget(NOT_FOUND, f"{variant_resource_id(endpoint_name, variant_name)} is not registered")
        self._call(
            "register_scalable_target",
            **self._names(endpoint_name, variant_name),
            SuspendedState=_suspended_request(suspended),
        )

    # --- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _names(endpoint_name: str, variant_name: str) -> dict[str, str]:
        return {
            "ServiceNamespace": SERVICE_NAMESPACE,
            "ResourceId": variant_resource_id(endpoint_name, variant_name),
            "ScalableDimension": SCALABLE_DIMENSION,
        }

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**params)
        except ClientError as error:
            _raise_domain_error(error)
        return response


def _raise_domain_error(error: ClientError) -> NoReturn:
    code = error_code(error)
    if code == CONCURRENT_UPDATE:
        raise TransientError(f"{code}: {error}") from error
    if is_transient(error):
        raise_transient_or_reraise(error)
    message = str(error.response.get("Error", {}).get("Message", ""))
    if code == NOT_FOUND:
        raise NoScalableTarget(code, message) from error
    raise ScalingRequestRefused(code, message) from error


def _suspended_state(state: dict[str, Any]) -> SuspendedState:
    # Absent or partial: Application Auto Scaling's default is "not suspended".
    return SuspendedState(
        dynamic_scaling_in=bool(state.get("DynamicScalingInSuspended", False)),
        dynamic_scaling_out=bool(state.get("DynamicScalingOutSuspended", False)),
        scheduled_scaling=bool(state.get("ScheduledScalingSuspended", False)),
    )


def _suspended_request(state: SuspendedState) -> dict[str, bool]:
    return {
        "DynamicScalingInSuspended": state.dynamic_scaling_in,
        "DynamicScalingOutSuspended": state.dynamic_scaling_out,
        "ScheduledScalingSuspended": state.scheduled_scaling,
    }


def _policy(policy: dict[str, Any]) -> ScalingPolicy:
    configuration = policy.get("TargetTrackingScalingPolicyConfiguration")
    return ScalingPolicy(
        name=policy["PolicyName"],
        policy_type=policy["PolicyType"],
        target_tracking=_tracking(configuration) if configuration else None,
    )


def _tracking(configuration: dict[str, Any]) -> TargetTracking:
    predefined = configuration.get("PredefinedMetricSpecification") or {}
    customized = configuration.get("CustomizedMetricSpecification")
    return TargetTracking(
        target_value=float(configuration["TargetValue"]),
        predefined_metric=predefined.get("PredefinedMetricType"),
        customized_metric=_customized_metric(customized) if customized else None,
        scale_out_cooldown=configuration.get("ScaleOutCooldown"),
        scale_in_cooldown=configuration.get("ScaleInCooldown"),
        disable_scale_in=bool(configuration.get("DisableScaleIn", False)),
    )


def _customized_metric(specification: dict[str, Any]) -> CustomizedMetric:
    return CustomizedMetric(
        namespace=specification.get("Namespace"),
        metric_name=specification.get("MetricName"),
        statistic=specification.get("Statistic"),
        dimensions=tuple((item["Name"], item["Value"]) for item in specification.get("Dimensions", [])),
        uses_metric_math="Metrics" in specification,
    )


def _tracking_request(tracking: TargetTracking) -> dict[str, Any]:
    request: dict[str, Any] = {"TargetValue": tracking.target_value, "DisableScaleIn": tracking.disable_scale_in}
    if tracking.predefined_metric is not None:
        request["PredefinedMetricSpecification"] = {"PredefinedMetricType": tracking.predefined_metric}
    if tracking.customized_metric is not None:
        metric = tracking.customized_metric
        if metric.uses_metric_math:
            raise ScalingRequestRefused("ValidationException", "a metric-math specification cannot be written back")
        request["CustomizedMetricSpecification"] = {
            "Namespace": metric.namespace,
            "MetricName": metric.metric_name,
            "Statistic": metric.statistic,
            "Dimensions": [{"Name": name, "Value": value} for name, value in metric.dimensions],
        }
    if tracking.scale_out_cooldown is not None:
        request["ScaleOutCooldown"] = tracking.scale_out_cooldown
    if tracking.scale_in_cooldown is not None:
        request["ScaleInCooldown"] = tracking.scale_in_cooldown
    return request
