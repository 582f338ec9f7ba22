"""Configuration: validated models read from the environment at cold start. No silent defaults."""

from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shepherd.registry.images import ImagePolicy, default_registries


def _comma_separated(value: Any) -> Any:
    """CloudFormation gives a CommaDelimitedList to a function as one string (`!Join [",", ...]`)."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class Settings(BaseModel):
    """What every function needs: the stack's table, bus and bucket."""

    # Each function reads its own one at its wiring: the others are never built.
    model_config = ConfigDict(frozen=True, defer_build=True)

    registry_table_name: str = Field(min_length=1)
    event_bus_name: str = Field(min_length=1)
    artifact_bucket_name: str = Field(min_length=1)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        """Missing or empty variables fail here, at cold start, naming the variable."""
        return cls.model_validate({name: environ.get(name.upper()) for name in cls.model_fields})


class PriceTableEnvironment(Settings):
    """Template parameter InstancePriceTable, given to the functions that announce a rollout's end:
    an SSM String parameter's name (a path), or empty for the built-in table (README, Cost ledger)."""

    instance_price_table: str = Field(pattern=r"^$|^/[a-zA-Z0-9_.\-/]{1,1010}$")


class ImageEnvironment(Settings):
    """The stack's rule for inference images (AllowedImageRegistries, RequireImageDigest)."""

    # Comma-separated registry hosts; empty: this account's ECR in the region and the region's Deep
    # Learning Containers registry (shepherd.registry.images.default_registries).
    allowed_image_registries: str
    require_image_digest: bool
    stack_account_id: str = Field(min_length=1)
    stack_region: str = Field(min_length=1)

    def image_policy(self) -> ImagePolicy:
        listed = tuple(host.strip() for host in self.allowed_image_registries.split(",") if host.strip())
        registries = listed or default_registries(self.stack_account_id, self.stack_region)
        return ImagePolicy(allowed_registries=registries, require_digest=self.require_image_digest)


class RolloutEnvironment(ImageEnvironment):
    """What the rollout functions need on top: SageMaker, approval and image settings from the stack."""

    require_approval: bool
    default_inference_image: str  # empty: a version's manifest must name its image
    network_isolation: bool
    sagemaker_execution_role_arn: str = Field(min_length=1)
    shepherd_namespace: str = Field(min_length=1, max_length=20)
    # Tags every SageMaker resource Shepherd creates: the stack's IAM policies act only on those.
    shepherd_stack_name: str = Field(min_length=1)
    # Empty until the rollback function is deployed beside them: per-rollout alarms then have no action.
    rollback_function_arn: str | None = None
    # AllowedInstanceTypes and MaxInstanceCount: what a promotion may ask for (empty: no type at all,
    # every promotion refused, saying so; the rollback's flip needs neither).
    allowed_instance_types: Annotated[tuple[str, ...], BeforeValidator(_comma_separated)]
    max_instance_count: int = Field(ge=1)


# The most endpoints a controller tick serves at once; every client's connection pool holds this many
# (aws_errors.CLIENT_CONFIG), so no pass waits for a connection another has.
MAX_CONTROLLER_CONCURRENCY = 64


class ControllerEnvironment(RolloutEnvironment):
    """What the controller needs on top: how many endpoints one tick serves at once (template parameter
    ControllerConcurrency; README, Scale)."""

    controller_concurrency: int = Field(ge=1, le=MAX_CONTROLLER_CONCURRENCY)
