"""The one wiring place: settings, boto3 clients and services, built once per Lambda container.

Handlers call these on their first invocation (not at import), so tests can point boto3 at moto
first and call `reset()` between tests. Tests of the domain wire fakes into the same services.

Each builder imports what it wires when it is first called: a function's cold start then pays for its
own adapters and services only (the approval function never imports SageMaker's adapter), with the
garbage collector paused meanwhile (`cold_start.collector_paused`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

from shepherd.adapters.aws_errors import CLIENT_CONFIG
from shepherd.cold_start import collector_paused
from shepherd.registry.ports import Clock
from shepherd.settings import ApprovalEnvironment, RolloutEnvironment, Settings

if TYPE_CHECKING:
    from shepherd.adapters.dynamodb import DynamoRegistry
    from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore
    from shepherd.adapters.eventbridge import EventBridgePublisher
    from shepherd.adapters.sagemaker import SageMakerEndpoints
    from shepherd.registry.service import ApprovalService, RegistrationService
    from shepherd.rollouts.rollback import RollbackService
    from shepherd.rollouts.service import RolloutService


def utc_now() -> datetime:
    return datetime.now(UTC)


# The services' clock: wall time in Lambda; local mode sets its simulated clock here (which runs ahead
# of wall time at --speed 60) so that event times are checked against the same clock that made them.
_clock: Clock = utc_now


def use_clock(clock: Clock) -> None:
    """Every service built from here on reads `clock` (until `reset()`)."""
    global _clock  # the one switch local mode flips; reset() flips it back
    _clock = clock


def now() -> datetime:
    return _clock()


@cache
def settings() -> Settings:
    return Settings.from_environ(os.environ)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=CLIENT_CONFIG)


@cache
def registry() -> DynamoRegistry:
    from shepherd.adapters.dynamodb import DynamoRegistry

    return DynamoRegistry(client("dynamodb"), settings().registry_table_name)


@cache
def publisher() -> EventBridgePublisher:
    from shepherd.adapters.eventbridge import EventBridgePublisher

    return EventBridgePublisher(client("events"), settings().event_bus_name)


@cache
@collector_paused()  # its first call imports and wires the function's adapters and services
def registration_service() -> RegistrationService:
    from shepherd.adapters.s3 import S3ArtifactStore
    from shepherd.registry.service import RegistrationService

    return RegistrationService(
        S3ArtifactStore(client("s3")), registry(), publisher(), now, settings().artifact_bucket_name
    )


@cache
@collector_paused()  # its first call imports and wires the function's adapters and services
def approval_service() -> ApprovalService:
    from shepherd.registry.service import ApprovalService

    environment = ApprovalEnvironment.from_environ(os.environ)
    return ApprovalService(registry(), publisher(), now, separate_duties=environment.separate_approval_duties)


@cache
def rollout_store() -> DynamoRolloutStore:
    from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore

    return DynamoRolloutStore(client("dynamodb"), settings().registry_table_name)


@cache
def rollout_environment() -> RolloutEnvironment:
    return RolloutEnvironment.from_environ(os.environ)


@cache
def endpoints() -> SageMakerEndpoints:
    from shepherd.adapters.sagemaker import SageMakerEndpoints

    environment = rollout_environment()
    return SageMakerEndpoints(
        client("sagemaker"), environment.sagemaker_execution_role_arn, environment.shepherd_stack_name
    )


@cache
@collector_paused()  # its first call imports and wires the function's adapters and services
def rollout_service() -> RolloutService:
    from shepherd.adapters.cloudwatch import CloudWatchAlarms, CloudWatchVariantMetrics
    from shepherd.rollouts.service import RolloutService, RolloutSettings

    environment = rollout_environment()
    return RolloutService(
        registry=registry(),
        rollouts=rollout_store(),
        endpoints=endpoints(),
        alarms=CloudWatchAlarms(client("cloudwatch")),
        events=publisher(),
        clock=now,
        settings=RolloutSettings(
            require_approval=environment.require_approval,
            default_inference_image=environment.default_inference_image,
            namespace=environment.shepherd_namespace,
            rollback_function_arn=environment.rollback_function_arn or None,
        ),
        metrics=CloudWatchVariantMetrics(client("cloudwatch")),
        # Resolved at call time: the rollback service is built on this one.
        analysis_rollback=lambda stored, cause: rollback_service().handle_analysis(stored, cause),
    )


@cache
@collector_paused()  # its first call imports and wires the function's adapters and services
def rollback_service() -> RollbackService:
    from shepherd.rollouts.rollback import RollbackService

    # rollout_service is passed unbuilt: only a redeploy needs it (see RollbackService.promotions).
    return RollbackService(rollout_store(), endpoints(), publisher(), now, rollout_service)


def reset() -> None:
    """Forget every client and service, and go back to wall time (tests: a new moto world per test)."""
    use_clock(utc_now)
    for cached in (
        settings,
        rollout_environment,
        client,
        registry,
        publisher,
        registration_service,
        approval_service,
        rollout_store,
        endpoints,
        rollout_service,
        rollback_service,
    ):
        cached.cache_clear()
