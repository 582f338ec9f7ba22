"""Shepherd's extension of moto 5.2.5's SageMaker emulation, for the tests and local mode only.

Never imported by Lambda code. Importing this module changes nothing; ``install()`` applies every patch
(calling it again is harmless), ``reset()`` clears this module's own state and ``settle_pending()``
finishes every change in progress (local mode calls it before saving its state). The patches live on moto's
classes, so they work both in-process under ``moto.mock_aws`` and in ``ThreadedMotoServer`` when the
server runs in the same process.

What is extended, and why (the moto gap each closes):

* ``UpdateEndpoint`` is implemented (moto raises ``NotImplementedError``). ``ValidationException`` if the
  endpoint or the endpoint config does not exist, or if the endpoint is not ``InService`` ("Cannot update
  in-progress endpoint"). Otherwise the endpoint goes ``Updating`` and reports the target config in
  ``PendingDeploymentSummary``; once settled it is ``InService`` with ``EndpointConfigName`` and
  ``ProductionVariants`` taken from the new config. ``RetainAllVariantProperties=True`` keeps the current
  weight and instance count of each variant whose name is also in the new config, as SageMaker does;
  ``ExcludeRetainedVariantProperties``, ``DeploymentConfig`` and ``RetainDeploymentConfig`` are accepted
  and ignored (every update is all at once, there are no blue/green or rolling steps). An update that
  removes or retypes a variant registered with Application Auto Scaling is refused, as SageMaker does
  (see `autoscaling_emulator`, which ``install()`` installs too).
* An endpoint's variants are built with ``is not None`` tests: moto drops an ``InitialVariantWeight`` of
  ``0.0`` (falsy), which is exactly the weight a canary starts from. A variant without a weight gets
  SageMaker's default of ``1.0`` (moto shows none). Endpoint configs themselves keep ``0.0`` in moto.
* ``UpdateEndpointWeightsAndCapacities`` keeps what is not given (moto sets a missing ``DesiredWeight`` or
  ``DesiredInstanceCount`` to nothing), rejects an unknown or repeated variant name, and is rejected unless
  the endpoint is ``InService``. It passes through ``Updating`` like an ``UpdateEndpoint``, as in
  SageMaker: the ``Desired*`` values change at once, the ``Current*`` values when the change settles.
* ``CreateEndpointConfig`` with a name that exists is a ``ValidationException`` ("Cannot create already
  existing endpoint configuration"), as in SageMaker; moto silently replaces the config, which would
  hide a caller that counts on a config holding what it asked for.
* Deterministic progress instead of wall-clock time: a new endpoint reports ``Creating``, and an updated
  one ``Updating``, for ``settle_after_describes`` ``DescribeEndpoint`` calls (default 1, see
  ``configure``), then ``InService`` - so a controller's waiting is exercised without sleeps. With 0 every
  change is immediate. Only ``DescribeEndpoint`` on that endpoint advances it; ``ListEndpoints`` shows the
  status as it stands.
* ``fail_next_update(endpoint_name, reason)`` makes the next ``UpdateEndpoint`` of that endpoint fail the
  way SageMaker reports a failed update that it rolled back: the call itself succeeds, the endpoint goes
  ``Updating`` and then back to ``InService`` on its OLD config and variants, with ``FailureReason`` set.
  ``FailureReason`` stays until the next ``UpdateEndpoint`` starts, which clears it.

Not emulated: ``Failed``, ``RollingBack``, ``UpdateRollbackFailed``, ``SystemUpdating`` and ``Deleting``
statuses; ``DeployedImages``, variant statuses, serverless and shadow variants in a pending deployment;
invocations (auto scaling is simulated by `autoscaling`); and ``CreateEndpoint`` on an existing name (moto
replaces the endpoint, SageMaker rejects it).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from shepherd_cli.local import autoscaling_emulator

DEFAULT_SETTLE_AFTER_DESCRIBES = 1

# moto's own behaviour, kept so the patched methods can delegate to it.
_moto_create_endpoint = SageMakerModelBackend.create_endpoint
_moto_describe_endpoint = SageMakerModelBackend.describe_endpoint
_moto_create_endpoint_config = SageMakerModelBackend.create_endpoint_config


@dataclass
class _Transition:
    """A change DescribeEndpoint reports as in progress for ``describes_left`` more calls."""

    describes_left: int
    settle: Callable[[], None]


# ThreadedMotoServer serves requests on several threads; one lock keeps a describe from settling a
# transition while another request starts one.
_lock = threading.RLock()
_installed = False
_settle_after_describes = DEFAULT_SETTLE_AFTER_DESCRIBES
# Keyed (weakly) by moto's endpoint object rather than its name, so a new endpoint of the same name,
# e.g. after a moto reset, never inherits the transition of the one it replaced.
_pending: weakref.WeakKeyDictionary[FakeEndpoint, _Transition] = weakref.WeakKeyDictionary()
_failure_reasons_by_endpoint_name: dict[str, str] = {}


def install() -> None:
    """Patch moto's SageMaker classes. Idempotent: a second call changes nothing."""
    global _installed
    with _lock:
        if _installed:
            return
        autoscaling_emulator.install()  # SageMaker's side of auto scaling: refusals, deregistration on delete
        patches: list[tuple[type, str, Callable[..., Any]]] = [
            (FakeEndpoint, "_process_production_variants", _process_production_variants),
            (SageMakerModelBackend, "create_endpoint", _create_endpoint),
            (SageMakerModelBackend, "create_endpoint_config", _create_endpoint_config),
            (SageMakerModelBackend, "describe_endpoint", _describe_endpoint),
            (SageMakerModelBackend, "update_endpoint", _update_endpoint),
            (SageMakerModelBackend, "update_endpoint_weights_and_capacities", _update_weights_and_capacities),
            (SageMakerResponse, "update_endpoint", _update_endpoint_response),
        ]
        for owner, method_name, replacement in patches:
            setattr(owner, method_name, replacement)
        _installed = True


def _create_endpoint_config(self: SageMakerModelBackend, endpoint_config_name: str, *args: Any, **kwargs: Any) -> Any:
    if endpoint_config_name in self.endpoint_configs:
        arn = FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id, self.region_name)
        raise ValidationError(message=f'Cannot create already existing endpoint configuration "{arn}".')
    return _moto_create_endpoint_config(self, endpoint_config_name, *args, **kwargs)


def configure(settle_after_describes: int = DEFAULT_SETTLE_AFTER_DESCRIBES) -> None:
    """Set how many DescribeEndpoint calls report Creating/Updating before InService (0: immediate).

    Applies to changes started afterwards; a change already in progress keeps its count.
    """
    if settle_after_describes < 0:
        raise ValueError(f"settle_after_describes must be >= 0, got {settle_after_describes}")
    global _settle_after_describes
    with _lock:
        _settle_after_describes = settle_after_describes


def fail_next_update(endpoint_name: str, reason: str) -> None:
    """Make the next UpdateEndpoint of ``endpoint_name`` (any account or region) roll back with ``reason``."""
    with _lock:
        _failure_reasons_by_endpoint_name[endpoint_name] = reason


def reset() -> None:
    """Forget failure hooks and restore the default settle count.

    Changes still in progress are settled at once rather than dropped, so no endpoint is left Updating.
    moto's own state is untouched (use moto's reset for that).
    """
    global _settle_after_describes
    with _lock:
        settle_pending()
        _failure_reasons_by_endpoint_name.clear()
        _settle_after_describes = DEFAULT_SETTLE_AFTER_DESCRIBES


def settle_pending() -> None:
    """Finish every change still in progress (an endpoint Creating or Updating goes InService with what
    it was becoming, or back to its old config for an update set to fail), as SageMaker finishes it
    whether or not anyone describes the endpoint: what local mode saves at a stop is then settled."""
    with _lock:
        for endpoint, transition in list(_pending.items()):
            _complete(endpoint, transition)
        _pending.clear()


# --- transitions -------------------------------------------------------------------------------------


def _begin(endpoint: FakeEndpoint, in_progress_status: str, settle: Callable[[], None]) -> None:
    endpoint.endpoint_status = in_progress_status
    endpoint.last_modified_time = utcnow()
    transition = _Transition(describes_left=_settle_after_describes, settle=settle)
    if transition.describes_left == 0:
        _complete(endpoint, transition)
    else:
        _pending[endpoint] = transition


def _advance(endpoint: FakeEndpoint) -> None:
    """Count one DescribeEndpoint against the endpoint's change in progress, settling it when due."""
    transition = _pending.get(endpoint)
    if transition is None:
        return
    if transition.describes_left > 0:
        transition.describes_left -= 1
        return
    del _pending[endpoint]
    _complete(endpoint, transition)


def _complete(endpoint: FakeEndpoint, transition: _Transition) -> None:
    transition.settle()
    endpoint.endpoint_status = "InService"
    endpoint.last_modified_time = utcnow()


# --- production variants -----------------------------------------------------------------------------


def _endpoint_variants(config_variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The endpoint's view (ProductionVariantSummary) of an endpoint config's variants."""
    endpoint_variants = []
    for config_variant in config_variants:
        # SageMaker's default weight is 1.0; `is not None` keeps a 0.0 weight that moto drops.
        weight = config_variant.get("InitialVariantWeight")
        weight = 1.0 if weight is None else weight
        variant: dict[str, Any] = {
            "VariantName": config_variant["VariantName"],
            "CurrentWeight": weight,
            "DesiredWeight": weight,
        }
        instance_count = config_variant.get("InitialInstanceCount")
        if instance_count is not None:
            variant["CurrentInstanceCount"] = instance_count
            variant["DesiredInstanceCount"] = instance_count
        serverless_config = config_variant.get("ServerlessConfig")
        if serverless_config is not None:
            variant["CurrentServerlessConfig"] = serverless_config
            variant["DesiredServerlessConfig"] = serverless_config
        endpoint_variants.append(variant)
    return endpoint_variants


def _process_production_variants(
    _endpoint: FakeEndpoint, production_variants: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    # Replaces FakeEndpoint._process_production_variants, which CreateEndpoint uses.
    return _endpoint_variants(production_variants)


def _pending_deployment_summary(config: FakeEndpointConfig, target_variants: list[dict[str, Any]]) -> dict[str, Any]:
    """What DescribeEndpoint shows of the config an UpdateEndpoint is deploying."""
    instance_types = {variant["VariantName"]: variant.get("InstanceType") for variant in config.production_variants}
    pending_variants = []
    for variant in target_variants:
        pending: dict[str, Any] = {
            key: variant[key] for key in ("VariantName", "DesiredWeight", "DesiredInstanceCount") if key in variant
        }
        instance_type = instance_types.get(variant["VariantName"])
        if instance_type is not None:
            pending["InstanceType"] = instance_type
        pending_variants.append(pending)
    return {
        "EndpointConfigName": config.endpoint_config_name,
        "ProductionVariants": pending_variants,
        "StartTime": utcnow(),
    }


def _retain_variant_properties(new_variants: list[dict[str, Any]], current_variants: list[dict[str, Any]]) -> None:
    current_by_name = {variant["VariantName"]: variant for variant in current_variants}
    retained_keys = ("CurrentWeight", "DesiredWeight", "CurrentInstanceCount", "DesiredInstanceCount")
    for variant in new_variants:
        current = current_by_name.get(variant["VariantName"], {})
        variant.update({key: current[key] for key in retained_keys if key in current})


# --- patched backend methods -------------------------------------------------------------------------


def _endpoint_or_error(backend: SageMakerModelBackend, endpoint_name: str) -> FakeEndpoint:
    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, backend.account_id, backend.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    return endpoint


def _require_in_service(endpoint: FakeEndpoint) -> None:
    if endpoint.endpoint_status != "InService":
        raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')


def _create_endpoint(
    self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str, tags: list[dict[str, str]]
) -> FakeEndpoint:
    with _lock:
        endpoint = _moto_create_endpoint(self, endpoint_name, endpoint_config_name, tags)
        _begin(endpoint, "Creating", settle=lambda: None)
        return endpoint


def _describe_endpoint(self: SageMakerModelBackend, endpoint_name: str) -> dict[str, Any]:
    with _lock:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is not None:
            _advance(endpoint)
        return _moto_describe_endpoint(self, endpoint_name)


def _update_endpoint(
    self: SageMakerModelBackend,
    endpoint_name: str,
    endpoint_config_name: str,
    retain_all_variant_properties: bool = False,
) -> str:
    with _lock:
        endpoint = _endpoint_or_error(self, endpoint_name)
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is None:
            arn = FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
        _require_in_service(endpoint)
        autoscaling_emulator.refuse_unsafe_update(self, endpoint, config)

        new_variants = _endpoint_variants(config.production_variants)
        if retain_all_variant_properties:
            _retain_variant_properties(new_variants, endpoint.production_variants)
        failure_reason = _failure_reasons_by_endpoint_name.pop(endpoint_name, None)

        # moto renders every attribute of its endpoint object as a response field
        # (pending_deployment_summary -> PendingDeploymentSummary), so the summary lives there.
        endpoint_fields = vars(endpoint)
        endpoint_fields["failure_reason"] = None
        endpoint_fields["pending_deployment_summary"] = _pending_deployment_summary(config, new_variants)

        def settle() -> None:
            endpoint_fields.pop("pending_deployment_summary", None)
            if failure_reason is None:
                endpoint.endpoint_config_name = endpoint_config_name
                endpoint.production_variants = new_variants
            else:
                # SageMaker rolls a failed update back: old config and variants, InService, a reason.
                endpoint_fields["failure_reason"] = failure_reason

        _begin(endpoint, "Updating", settle)
        return endpoint.arn


def _update_weights_and_capacities(
    self: SageMakerModelBackend, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]
) -> str:
    with _lock:
        endpoint = _endpoint_or_error(self, endpoint_name)
        _require_in_service(endpoint)
        _require_known_unique_variants(endpoint, [desired["VariantName"] for desired in desired_weights_and_capacities])

        variants_by_name = {variant["VariantName"]: variant for variant in endpoint.production_variants}
        changed_variants = []
        for desired in desired_weights_and_capacities:
            variant = variants_by_name[desired["VariantName"]]
            # Only what the request names changes; a weight-only request keeps the instance counts.
            for key in ("DesiredWeight", "DesiredInstanceCount"):
                if desired.get(key) is not None:
                    variant[key] = desired[key]
            changed_variants.append(variant)

        _begin(endpoint, "Updating", settle=lambda: _make_desired_current(changed_variants))
        return endpoint.arn


def _require_known_unique_variants(endpoint: FakeEndpoint, requested_names: list[str]) -> None:
    known_names = {variant["VariantName"] for variant in endpoint.production_variants}
    for name in requested_names:
        if requested_names.count(name) > 1:
            raise ValidationError(message=f'The variant name "{name}" was non-unique within the request.')
        if name not in known_names:
            raise ValidationError(
                message=f'The variant name(s) "{name}" is/are not present within endpoint configuration '
                f'"{endpoint.endpoint_config_name}".'
            )


def _make_desired_current(variants: list[dict[str, Any]]) -> None:
    for variant in variants:
        if "DesiredWeight" in variant:
            variant["CurrentWeight"] = variant["DesiredWeight"]
        if "DesiredInstanceCount" in variant:
            variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"]


# --- patched response method -------------------------------------------------------------------------


def _update_endpoint_response(self: SageMakerResponse) -> ActionResult:
    endpoint_arn = _update_endpoint(
        self.sagemaker_backend,
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
        retain_all_variant_properties=bool(self._get_param("RetainAllVariantProperties", False)),
    )
    return ActionResult({"EndpointArn": endpoint_arn})
