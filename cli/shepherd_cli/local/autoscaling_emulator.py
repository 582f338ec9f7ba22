"""Shepherd's extension of moto 5.2.5's Application Auto Scaling, for the tests and local mode only.

Never imported by Lambda code. ``install()`` applies the patches (again: harmless); they live on moto's
classes, so they work in-process under ``moto.mock_aws`` and in ``ThreadedMotoServer``.

moto stores scalable targets and policies but checks little and never scales. What is extended here,
each as Application Auto Scaling documents it (API reference, "RegisterScalableTarget",
"DeregisterScalableTarget", "PutScalingPolicy"):

* ``RegisterScalableTarget`` of a new target needs ``MinCapacity`` and ``MaxCapacity``, with
  ``MinCapacity <= MaxCapacity`` (moto stores None); its ``SuspendedState`` defaults to nothing suspended
  (moto reports null), and an update changes only the suspended flags it names. A new target for a
  variant its endpoint does not run is ``ValidationException`` (Application Auto Scaling checks that the
  resource exists; moto accepts any). Only an endpoint the emulator knows is checked: a target of an
  endpoint never created is accepted, as moto does, so an adapter test can register one alone.
* ``DeregisterScalableTarget`` deletes the target's scaling policies too (moto keeps them), and a missing
  target is ``ObjectNotFoundException`` (moto: ``ValidationException``).
* ``PutScalingPolicy`` needs a registered target (``ObjectNotFoundException`` "No scalable target
  registered ..."; moto accepts any), and ``DeleteScalingPolicy`` of a missing policy is
  ``ObjectNotFoundException``.
* ``DescribeScalingPolicies`` filters on the exact ``ResourceId`` (moto keeps every policy whose resource
  id is a substring of the one asked for: asking for ``endpoint/e/variant/v2`` also returned the policies
  of ``endpoint/e/variant/v``).

And SageMaker's side of the integration (SageMaker guide, "Update endpoints that use auto scaling" and
"Delete endpoints configured for auto scaling"):

* `refuse_unsafe_update` (called by `emulator`'s ``UpdateEndpoint``): the update fails with
  ``ValidationException`` if it would remove a variant registered as a scalable target or change its
  instance type. Changing the variant's model is allowed, as in SageMaker. The message is our own
  wording (the stored docs do not quote SageMaker's): go by the code, never the text.
* ``DeleteEndpoint`` deregisters the endpoint's variants (and so deletes their policies) silently, as
  Application Auto Scaling does when the caller may deregister them.

The scaling itself (target tracking on ``InvocationsPerInstance``) is `autoscaling`'s simulation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.applicationautoscaling.models import (
    ApplicationAutoscalingBackend,
    FakeApplicationAutoscalingPolicy,
    FakeScalableTarget,
    applicationautoscaling_backends,
)
from moto.core.exceptions import JsonRESTError
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend, sagemaker_backends

SAGEMAKER = "sagemaker"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SUSPENDED_FLAGS = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")

_moto_register = ApplicationAutoscalingBackend.register_scalable_target
_moto_deregister = ApplicationAutoscalingBackend.deregister_scalable_target
_moto_put_policy = ApplicationAutoscalingBackend.put_scaling_policy
_moto_delete_policy = ApplicationAutoscalingBackend.delete_scaling_policy
_moto_describe_policies = ApplicationAutoscalingBackend.describe_scaling_policies
_moto_delete_endpoint = SageMakerModelBackend.delete_endpoint

_lock = threading.RLock()
_installed = False


class ObjectNotFound(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ObjectNotFoundException", message)


def install() -> None:
    """Patch moto's Application Auto Scaling and SageMaker classes. Idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        patches: list[tuple[type, str, Callable[..., Any]]] = [
            (ApplicationAutoscalingBackend, "register_scalable_target", _register_scalable_target),
            (ApplicationAutoscalingBackend, "deregister_scalable_target", _deregister_scalable_target),
            (ApplicationAutoscalingBackend, "put_scaling_policy", _put_scaling_policy),
            (ApplicationAutoscalingBackend, "delete_scaling_policy", _delete_scaling_policy),
            (ApplicationAutoscalingBackend, "describe_scaling_policies", _describe_scaling_policies),
            (SageMakerModelBackend, "delete_endpoint", _delete_endpoint),
        ]
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        _installed = True


def variant_resource_id(endpoint_name: str, variant_name: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def registered_variants(account_id: str, region: str, endpoint_name: str) -> dict[str, FakeScalableTarget]:
    """The endpoint's variants registered as scalable targets, by variant name."""
    backend = applicationautoscaling_backends[account_id][region]
    prefix = f"endpoint/{endpoint_name}/variant/"
    return {
        resource_id.removeprefix(prefix): target
        for resource_id, target in list(backend.targets.get(VARIANT_DIMENSION, {}).items())
        if resource_id.startswith(prefix) and target.service_namespace == SAGEMAKER
    }


def target_policies(account_id: str, region: str, resource_id: str) -> list[FakeApplicationAutoscalingPolicy]:
    backend = applicationautoscaling_backends[account_id][region]
    return [
        policy
        for policy in list(backend.policies.values())
        if policy.service_namespace == SAGEMAKER
        and policy.resource_id == resource_id
        and policy.scalable_dimension == VARIANT_DIMENSION
    ]


# --- SageMaker's refusals ------------------------------------------------------------------------------


def refuse_unsafe_update(
    backend: SageMakerModelBackend, endpoint: FakeEndpoint, new_config: FakeEndpointConfig
) -> None:
    """Raise SageMaker's ValidationException if ``new_config`` removes or retypes a registered variant."""
    registered = registered_variants(backend.account_id, backend.region_name, endpoint.endpoint_name)
    if not registered:
        return
    current_config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    current_types = _instance_types(current_config) if current_config is not None else {}
    new_types = _instance_types(new_config)
    blocked = sorted(
        name
        for name in registered
        if name not in new_types or (name in current_types and new_types[name] != current_types[name])
    )
    if blocked:
        raise ValidationError(
            message=f"The variant(s) {blocked} of endpoint {endpoint.endpoint_name} are registered as scalable "
            "targets with Application Auto Scaling: deregister them before removing them or changing "
            "their instance type."
        )


def _instance_types(config: FakeEndpointConfig) -> dict[str, str | None]:
    return {variant["VariantName"]: variant.get("InstanceType") for variant in config.production_variants}


def _delete_endpoint(self: SageMakerModelBackend, endpoint_name: str) -> None:
    with _lock:
        _moto_delete_endpoint(self, endpoint_name)
        backend = applicationautoscaling_backends[self.account_id][self.region_name]
        for variant_name in registered_variants(self.account_id, self.region_name, endpoint_name):
            _deregister_scalable_target(
                backend, SAGEMAKER, variant_resource_id(endpoint_name, variant_name), VARIANT_DIMENSION
            )


# --- Application Auto Scaling --------------------------------------------------------------------------


def _register_scalable_target(
    self: ApplicationAutoscalingBackend,
    namespace: str,
    r_id: str,
    dimension: str,
    min_capacity: int | None,
    max_capacity: int | None,
    role_arn: str,
    suspended_state: dict[str, bool] | None,
) -> FakeScalableTarget:
    with _lock:
        existing: Any = self.targets.get(dimension, {}).get(r_id)
        if existing is None and (min_capacity is None or max_capacity is None):
            raise AWSValidationException("MinCapacity and MaxCapacity are required to register a new scalable target")
        if existing is None and namespace == SAGEMAKER and dimension == VARIANT_DIMENSION:
            _require_variant(self.account_id, self.region_name, r_id)
        new_min = min_capacity if min_capacity is not None else int(existing.min_capacity)
        new_max = max_capacity if max_capacity is not None else int(existing.max_capacity)
        if new_min > new_max:
            raise AWSValidationException(
                f"Minimum capacity {new_min} cannot be greater than maximum capacity {new_max}"
            )
        # moto stores the suspended state as given (None when absent); AWS defaults each flag to False and
        # an update changes only the flags it names.
        current: Any = dict.fromkeys(SUSPENDED_FLAGS, False)
        if existing is not None and existing.suspended_state:
            current.update(existing.suspended_state)
        current.update(
            {flag: bool(value) for flag, value in (suspended_state or {}).items() if flag in SUSPENDED_FLAGS}
        )
        return _moto_register(self, namespace, r_id, dimension, min_capacity, max_capacity, role_arn, current)


def _require_variant(account_id: str, region: str, r_id: str) -> None:
    """A new target's variant must be on its endpoint now (one the emulator knows: see the module docstring)."""
    endpoint_name, _, variant_name = r_id.removeprefix("endpoint/").partition("/variant/")
    endpoint = sagemaker_backends[account_id][region].endpoints.get(endpoint_name)
    if endpoint is None:
        return
    if variant_name not in {variant["VariantName"] for variant in list(endpoint.production_variants)}:
        raise AWSValidationException(
            f"The resource {r_id} does not exist: endpoint {endpoint_name} has no variant {variant_name}"
        )


def _deregister_scalable_target(self: ApplicationAutoscalingBackend, namespace: str, r_id: str, dimension: str) -> None:
    with _lock:
        if r_id not in self.targets.get(dimension, {}):
            raise ObjectNotFound(
                f"No scalable target found for service namespace: {namespace}, resource ID: {r_id}, "
                f"scalable dimension: {dimension}"
            )
        _moto_deregister(self, namespace, r_id, dimension)
        for key, policy in list(self.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (
                namespace,
                r_id,
                dimension,
            ):
                policy.delete_alarms(self.account_id, self.region_name)
                del self.policies[key]


def _put_scaling_policy(
    self: ApplicationAutoscalingBackend,
    policy_name: str,
    service_namespace: str,
    resource_id: str,
    scalable_dimension: str,
    policy_body: dict[str, Any],
    policy_type: str | None,
) -> FakeApplicationAutoscalingPolicy:
    with _lock:
        target = self.targets.get(scalable_dimension, {}).get(resource_id)
        if target is None or target.service_namespace != service_namespace:
            raise ObjectNotFound(
                f"No scalable target registered for service namespace: {service_namespace}, "
                f"resource ID: {resource_id}, scalable dimension: {scalable_dimension}"
            )
        return _moto_put_policy(
            self, policy_name, service_namespace, resource_id, scalable_dimension, policy_body, policy_type
        )


def _delete_scaling_policy(
    self: ApplicationAutoscalingBackend,
    policy_name: str,
    service_namespace: str,
    resource_id: str,
    scalable_dimension: str,
) -> None:
    with _lock:
        key = FakeApplicationAutoscalingPolicy.formulate_key(
            service_namespace, resource_id, scalable_dimension, policy_name
        )
        if key not in self.policies:
            raise ObjectNotFound(
                f"No scaling policy found for service namespace: {service_namespace}, resource ID: {resource_id}, "
                f"scalable dimension: {scalable_dimension}, policy name: {policy_name}"
            )
        _moto_delete_policy(self, policy_name, service_namespace, resource_id, scalable_dimension)


def _describe_scaling_policies(
    self: ApplicationAutoscalingBackend,
    service_namespace: str,
    resource_id: str,
    scalable_dimension: str,
    max_results: int | None,
    next_token: str,
) -> tuple[str | None, list[FakeApplicationAutoscalingPolicy]]:
    with _lock:
        policies = [
            policy
            for policy in list(self.policies.values())
            if policy.service_namespace == service_namespace
            and (not resource_id or policy.resource_id == resource_id)
            and (not scalable_dimension or policy.scalable_dimension == scalable_dimension)
        ]
        start = int(next_token) if next_token else 0
        end = start + (max_results or 100)
        return (str(end) if end < len(policies) else None), policies[start:end]
