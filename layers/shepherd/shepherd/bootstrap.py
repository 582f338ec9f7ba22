"""The one wiring place: settings, boto3 clients and services, built once per Lambda container.

A `Container` is built from what it is given: the environment, a factory of boto3 clients and a
clock. In Lambda the handlers use the default one (`os.environ`, boto3, wall time), built on their
first invocation (not at import). Tests and local mode go through the same door with their own:
`with bootstrap.wired(Container(...)):` (moto's clients, a simulated clock), and nothing is left
behind when the block ends. Tests of the domain wire fakes into the same services directly.

Each builder imports what it wires when it is first called: a function's cold start then pays for its
own adapters and services only (the approval function never imports SageMaker's adapter), with the
garbage collector paused meanwhile (`cold_start.collector_paused`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from shepherd.adapters.aws_errors import CLIENT_CONFIG
from shepherd.cold_start import collector_paused
from shepherd.kernel.clock import Clock
from shepherd.settings import (
    ControllerEnvironment,
    ImageEnvironment,
    PriceTableEnvironment,
    RolloutEnvironment,
    Settings,
)

if TYPE_CHECKING:
    from shepherd.adapters.autoscaling import ApplicationAutoScaling
    from shepherd.adapters.cloudwatch import CloudWatchAlarms
    from shepherd.adapters.dynamodb import DynamoRegistry
    from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore
    from shepherd.adapters.eventbridge import EventBridgePublisher
    from shepherd.adapters.s3_vault import S3ArtifactVault
    from shepherd.adapters.sagemaker import SageMakerEndpoints
    from shepherd.capacity.prices import PriceTable
    from shepherd.registry.approval import ApprovalService
    from shepherd.registry.registration import RegistrationService
    from shepherd.rollouts.hold import Holds
    from shepherd.rollouts.judging import CanaryJudge
    from shepherd.rollouts.promotion import PromotionService
    from shepherd.rollouts.rollback import RollbackService
    from shepherd.rollouts.tick import RolloutService


def utc_now() -> datetime:
    return datetime.now(UTC)


# SSM holds only the stack's price table, read once per container on the first announced end: in the
# rollback function that is after the flip but before its incident is written, so a slow SSM must
# cost seconds, not the function's timeout (an unreadable table falls back to the built-in one).
PRICE_TABLE_CLIENT_CONFIG = CLIENT_CONFIG.merge(
    Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1, read_timeout=2)
)


def boto3_client(service: str) -> Any:
    return boto3.client(service, config=PRICE_TABLE_CLIENT_CONFIG if service == "ssm" else CLIENT_CONFIG)


class Container:
    """Everything one container builds once, from its environment, its clients and its clock.

    `clock` is the services' clock: wall time in Lambda; local mode gives its simulated clock (which
    runs ahead of wall time at --speed 60), so event times are checked against the clock that made them.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        clients: Callable[[str], Any] = boto3_client,
        clock: Clock = utc_now,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self._new_client = clients
        self._clients: dict[str, Any] = {}
        self.clock = clock

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._new_client(service)
        return self._clients[service]

    def now(self) -> datetime:
        return self.clock()

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_environ(self.environ)

    @cached_property
    def rollout_environment(self) -> RolloutEnvironment:
        return RolloutEnvironment.from_environ(self.environ)

    @cached_property
    def registry(self) -> DynamoRegistry:
        from shepherd.adapters.dynamodb import DynamoRegistry

        return DynamoRegistry(self.client("dynamodb"), self.settings.registry_table_name)

    @cached_property
    def publisher(self) -> EventBridgePublisher:
        from shepherd.adapters.eventbridge import EventBridgePublisher

        return EventBridgePublisher(self.client("events"), self.settings.event_bus_name)

    @cached_property
    @collector_paused()  # its first call imports and wires the function's adapters and services
    def registration_service(self) -> RegistrationService:
        from shepherd.adapters.s3 import S3ArtifactStore
        from shepherd.registry.registration import RegistrationService

        return RegistrationService(
            S3ArtifactStore(self.client("s3")),
            self.registry,
            self.publisher,
            self.now,
            self.settings.artifact_bucket_name,
            image_policy=ImageEnvironment.from_environ(self.environ).image_policy(),
        )

    @cached_property
    @collector_paused()  # its first call imports and wires the function's adapters and services
    def approval_service(self) -> ApprovalService:
        from shepherd.registry.approval import ApprovalService

        return ApprovalService(self.registry, self.publisher, self.now, self.vault)

    @cached_property
    def vault(self) -> S3ArtifactVault:
        from shepherd.adapters.s3_vault import S3ArtifactVault

        return S3ArtifactVault(self.client("s3"))

    @cached_property
    def rollout_store(self) -> DynamoRolloutStore:
        from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore

        return DynamoRolloutStore(self.client("dynamodb"), self.settings.registry_table_name)

    @cached_property
    def variant_scaling(self) -> ApplicationAutoScaling:
        from shepherd.adapters.autoscaling import ApplicationAutoScaling

        return ApplicationAutoScaling(self.client("application-autoscaling"))

    @cached_property
    def endpoints(self) -> SageMakerEndpoints:
        from shepherd.adapters.sagemaker import SageMakerEndpoints

        environment = self.rollout_environment
        return SageMakerEndpoints(
            self.client("sagemaker"),
            environment.sagemaker_execution_role_arn,
            environment.shepherd_stack_name,
            network_isolation=environment.network_isolation,
        )

    @cached_property
    def alarms(self) -> CloudWatchAlarms:
        from shepherd.adapters.cloudwatch import CloudWatchAlarms

        return CloudWatchAlarms(self.client("cloudwatch"))

    @cached_property
    def price_table(self) -> PriceTable:
        """The cost ledger's prices: the stack's own table (read from SSM once), else the built-in one.
        Read on first use: when the container first announces a rollout's end, after any flip."""
        name = PriceTableEnvironment.from_environ(self.environ).instance_price_table
        if not name:
            from shepherd.capacity.prices import BUILT_IN

            return BUILT_IN
        from shepherd.adapters.ssm_prices import read_price_table

        return read_price_table(self.client("ssm"), name)

    def prices(self) -> PriceTable:
        return self.price_table

    @cached_property
    @collector_paused()  # its first call imports and wires the function's adapters and services
    def promotion_service(self) -> PromotionService:
        from shepherd.rollouts.placement_rules import PlacementRules
        from shepherd.rollouts.promotion import PromotionService, PromotionSettings

        environment = self.rollout_environment
        return PromotionService(
            registry=self.registry,
            rollouts=self.rollout_store,
            endpoints=self.endpoints,
            alarms=self.alarms,
            events=self.publisher,
            clock=self.now,
            settings=PromotionSettings(
                require_approval=environment.require_approval,
                default_inference_image=environment.default_inference_image or None,
                image_policy=environment.image_policy(),
                namespace=environment.shepherd_namespace,
                rollback_function_arn=environment.rollback_function_arn or None,
                placement=PlacementRules(environment.allowed_instance_types, environment.max_instance_count),
            ),
            vault=self.vault,
            scaling=self.variant_scaling,
        )

    @cached_property
    @collector_paused()  # a resume command wires it alone
    def holds(self) -> Holds:
        from shepherd.rollouts.hold import Holds

        return Holds(self.rollout_store, self.publisher, self.now)

    @cached_property
    @collector_paused()  # its first call imports and wires the function's adapters and services
    def canary_judge(self) -> CanaryJudge:
        from shepherd.adapters.cloudwatch import CloudWatchVariantMetrics
        from shepherd.rollouts.judging import CanaryJudge

        return CanaryJudge(
            self.rollout_store,
            self.publisher,
            self.now,
            metrics=CloudWatchVariantMetrics(self.client("cloudwatch")),
            # Resolved at call time: the rollback service is built after this one.
            analysis_rollback=lambda stored, cause: self.rollback_service.handle_analysis(stored, cause),
        )

    @cached_property
    @collector_paused()  # its first call imports and wires the function's adapters and services
    def rollout_service(self) -> RolloutService:
        from shepherd.rollouts.tick import RolloutService

        return RolloutService(
            rollouts=self.rollout_store,
            endpoints=self.endpoints,
            alarms=self.alarms,
            events=self.publisher,
            clock=self.now,
            namespace=self.rollout_environment.shepherd_namespace,
            canary=self.canary_judge,
            scaling=self.variant_scaling,
            concurrency=ControllerEnvironment.from_environ(self.environ).controller_concurrency,
            prices=self.prices,
        )

    @cached_property
    @collector_paused()  # its first call imports and wires the function's adapters and services
    def rollback_service(self) -> RollbackService:
        from shepherd.rollouts.rollback import RollbackService

        # The promotion service is passed unbuilt: only a redeploy needs it (see RollbackService.promotions).
        return RollbackService(
            self.rollout_store,
            self.endpoints,
            self.publisher,
            self.now,
            lambda: self.promotion_service,
            lambda: self.alarms,  # an SNS alarm is confirmed with CloudWatch (alarm_confirmation.py)
            prices=self.prices,
        )


_container: Container | None = None


def container() -> Container:
    """The container the handlers use: the one `wired` in, else the default (built on first use)."""
    global _container  # one per Lambda container, built at the first invocation
    if _container is None:
        _container = Container()
    return _container


@contextmanager
def wired(inside: Container) -> Iterator[Container]:
    """Handlers use `inside` within the block (a test, one local-mode invocation), the previous one after."""
    global _container  # swapped for the block only
    before, _container = _container, inside
    try:
        yield inside
    finally:
        _container = before


# What the handlers call: the current container's services.


def client(service: str) -> Any:
    return container().client(service)


def registry() -> DynamoRegistry:
    return container().registry


def publisher() -> EventBridgePublisher:
    return container().publisher


def registration_service() -> RegistrationService:
    return container().registration_service


def approval_service() -> ApprovalService:
    return container().approval_service


def rollout_store() -> DynamoRolloutStore:
    return container().rollout_store


def promotion_service() -> PromotionService:
    return container().promotion_service


def rollout_service() -> RolloutService:
    return container().rollout_service


def holds() -> Holds:
    return container().holds


def rollback_service() -> RollbackService:
    return container().rollback_service
