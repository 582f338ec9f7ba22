"""Configuration: validated models read from the environment at cold start. No silent defaults."""

from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


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


class ApprovalEnvironment(Settings):
    """What the approval function needs on top: whether an uploader may approve their own version."""

    separate_approval_duties: bool


class RolloutEnvironment(Settings):
    """What the rollout functions need on top: SageMaker and approval settings from the stack."""

    require_approval: bool
    default_inference_image: str = Field(min_length=1)
    sagemaker_execution_role_arn: str = Field(min_length=1)
    shepherd_namespace: str = Field(min_length=1, max_length=20)
    # Tags every SageMaker resource Shepherd creates: the stack's IAM policies act only on those.
    shepherd_stack_name: str = Field(min_length=1)
    # Empty until the rollback function is deployed beside them: per-rollout alarms then have no action.
    rollback_function_arn: str | None = None


# The most endpoints a controller tick serves at once; every client's connection pool holds this many
# (aws_errors.CLIENT_CONFIG), so no pass waits for a connection another has.
MAX_CONTROLLER_CONCURRENCY = 64


class ControllerEnvironment(RolloutEnvironment):
    """What the controller needs on top: how many endpoints one tick serves at once (template parameter
    ControllerConcurrency; README, Scale)."""

    controller_concurrency: int = Field(ge=1, le=MAX_CONTROLLER_CONCURRENCY)
