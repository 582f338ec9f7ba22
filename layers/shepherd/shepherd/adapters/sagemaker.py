"""SageMaker endpoints: describe them as the controller sees them, and carry out its actions."""

from __future__ import annotations

from typing import Any, NoReturn

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import error_code, is_transient, raise_transient_or_reraise
from shepherd.capacity.scaling import VariantCapacity
from shepherd.rollouts.actions import EndpointConfigSpec
from shepherd.rollouts.errors import EndpointRequestRefused, EndpointStillUpdating
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint, ObservedVariant

STACK_TAG = "shepherd:stack"
"""Names the stack that created a SageMaker resource. The stack's IAM policies let Shepherd change or
delete only resources carrying it (and create them only with it): see template.yaml."""
MANAGED_BY_TAG = "managed-by"


class SageMakerEndpoints:
    """Implements `shepherd.rollouts.ports.EndpointControl`. Creating what exists counts as done.

    Failures: throttling and 5xx -> `TransientError` (ask again later); a change refused because the
    endpoint is already changing -> `EndpointStillUpdating`; anything else SageMaker refuses
    (ResourceLimitExceeded, AccessDeniedException, a ValidationException about the request itself)
    -> `EndpointRequestRefused`, which fails the rollout that needs the call.
    """

    def __init__(self, client: Any, execution_role_arn: str, stack_name: str, network_isolation: bool = True) -> None:
        self._client = client
        self._role_arn = execution_role_arn
        # The container gets no network: it cannot send what it serves, or fetch code, anywhere.
        self._network_isolation = network_isolation
        # Set at creation (never added later): the IAM policies require the tag in the create request.
        self._tags = [{"Key": MANAGED_BY_TAG, "Value": "shepherd"}, {"Key": STACK_TAG, "Value": stack_name}]

    def describe(self, endpoint_name: str) -> ObservedEndpoint | None:
        try:
            response = self._client.describe_endpoint(EndpointName=endpoint_name)
        except ClientError as error:
            if _is_missing(error):
                return None
            _raise_domain_error(error)
        return ObservedEndpoint(
            status=EndpointStatus(response["EndpointStatus"]),
            config_name=response["EndpointConfigName"],
            variants=tuple(
                ObservedVariant(
                    name=variant["VariantName"],
                    current_weight=float(variant.get("CurrentWeight", 0.0)),
                    current_instances=variant.get("CurrentInstanceCount"),
                    desired_instances=variant.get("DesiredInstanceCount"),
                )
                for variant in response.get("ProductionVariants", [])
            ),
            failure_reason=response.get("FailureReason"),
        )

    def variant_capacity(self, endpoint_name: str) -> dict[str, VariantCapacity] | None:
        """Each variant's current and desired instance counts (`shepherd.capacity.ports.CapacityReader`);
        None if the endpoint does not exist. A serverless variant reports no counts: both None."""
        try:
            response = self._client.describe_endpoint(EndpointName=endpoint_name)
        except ClientError as error:
            if _is_missing(error):
                return None
            _raise_domain_error(error)
        return {
            variant["VariantName"]: VariantCapacity(
                current=variant.get("CurrentInstanceCount"), desired=variant.get("DesiredInstanceCount")
            )
            for variant in response.get("ProductionVariants", [])
        }

    def ensure_model(self, name: str, image: str, artifact_uri: str) -> None:
        try:
            self._client.create_model(
                ModelName=name,
                ExecutionRoleArn=self._role_arn,
                PrimaryContainer={"Image": image, "ModelDataUrl": artifact_uri},
                EnableNetworkIsolation=self._network_isolation,
                Tags=self._tags,
            )
        except ClientError as error:
            if not _already_exists(error):
                _raise_domain_error(error)

    def ensure_config(self, spec: EndpointConfigSpec) -> None:
        variants = [
            {
                "VariantName": weighted.variant.variant_name,
                "ModelName": weighted.variant.model_resource_name,
                "InstanceType": weighted.variant.instance_type,
                "InitialInstanceCount": weighted.variant.initial_instance_count,
                "InitialVariantWeight": weighted.initial_weight,
            }
            for weighted in spec.variants
        ]
        try:
            self._client.create_endpoint_config(
                EndpointConfigName=spec.name, ProductionVariants=variants, Tags=self._tags
            )
        except ClientError as error:
            if not _already_exists(error):
                _raise_domain_error(error)
            self._replace_if_other(spec.name, variants)

    def _replace_if_other(self, name: str, variants: list[dict[str, Any]]) -> None:
        """A config of this name exists: keep it if it holds ``variants``, else write it again.

        Its counts are the ones observed when an earlier pass wrote it, and that pass's UpdateEndpoint
        may have failed (the endpoint was busy); autoscaling may have moved the fleet since, and an update
        onto the old counts would shrink it. Only configs an update or create is about to use come here,
        so the endpoint does not run this one.
        """
        try:
            existing = self._client.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
        except ClientError as error:
            _raise_domain_error(error)
        fields = ("VariantName", "ModelName", "InstanceType", "InitialInstanceCount", "InitialVariantWeight")
        if [{key: v.get(key) for key in fields} for v in existing] == [
            {key: v[key] for key in fields} for v in variants
        ]:
            return
        try:
            self._client.delete_endpoint_config(EndpointConfigName=name)
            self._client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants, Tags=self._tags)
        except ClientError as error:
            _raise_domain_error(error)

    def create_endpoint(self, endpoint_name: str, config_name: str) -> None:
        self._change("create_endpoint", EndpointName=endpoint_name, EndpointConfigName=config_name, Tags=self._tags)

    def update_endpoint(self, endpoint_name: str, config_name: str) -> None:
        self._change("update_endpoint", EndpointName=endpoint_name, EndpointConfigName=config_name)

    def set_weights(self, endpoint_name: str, weights: dict[str, float]) -> None:
        """One UpdateEndpointWeightsAndCapacities: the traffic flip a rollback relies on."""
        self._change(
            "update_endpoint_weights_and_capacities",
            EndpointName=endpoint_name,
            DesiredWeightsAndCapacities=[
                {"VariantName": variant, "DesiredWeight": weight} for variant, weight in weights.items()
            ],
        )

    def set_capacities(self, endpoint_name: str, counts: dict[str, int]) -> None:
        """One UpdateEndpointWeightsAndCapacities that sizes variants and leaves their weights as they are."""
        self._change(
            "update_endpoint_weights_and_capacities",
            EndpointName=endpoint_name,
            DesiredWeightsAndCapacities=[
                {"VariantName": variant, "DesiredInstanceCount": count} for variant, count in counts.items()
            ],
        )

    def delete_endpoint(self, endpoint_name: str) -> None:
        self._delete("delete_endpoint", EndpointName=endpoint_name)

    def delete_config(self, config_name: str) -> None:
        """Delete the config if it exists. One a rollout never made (the final config of a rollout that
        ended before retiring) is not asked for: IAM refuses the delete of a missing config (the role's
        tag condition has no tag to match) before SageMaker could answer that it does not exist."""
        try:
            self._client.describe_endpoint_config(EndpointConfigName=config_name)
        except ClientError as error:
            if _is_missing(error):
                return
            _raise_domain_error(error)
        self._delete("delete_endpoint_config", EndpointConfigName=config_name)

    def delete_model(self, model_name: str) -> None:
        self._delete("delete_model", ModelName=model_name)

    def _change(self, operation: str, **params: Any) -> None:
        try:
            getattr(self._client, operation)(**params)
        except ClientError as error:
            if _is_busy(error):
                raise EndpointStillUpdating(f"{operation}: {error}") from error
            _raise_domain_error(error)

    def _delete(self, operation: str, **params: Any) -> None:
        try:
            getattr(self._client, operation)(**params)
        except ClientError as error:
            if not _is_missing(error):
                _raise_domain_error(error)


def _raise_domain_error(error: ClientError) -> NoReturn:
    if is_transient(error):
        raise_transient_or_reraise(error)
    message = str(error.response.get("Error", {}).get("Message", ""))
    raise EndpointRequestRefused(error_code(error), message) from error


def _is_missing(error: ClientError) -> bool:
    # SageMaker reports a missing endpoint, config or model as a ValidationException.
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) in ("ValidationException", "ResourceNotFound") and (
        "Could not find" in message or "does not exist" in message or "not found" in message.lower()
    )


def _is_busy(error: ClientError) -> bool:
    # "Cannot update in-progress endpoint": someone else's change is under way.
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "ValidationException" and ("in-progress" in message or "in progress" in message)


def _already_exists(error: ClientError) -> bool:
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "ValidationException" and "already exist" in message
