"""THE DRIVER: the only glue between the model-based test and the rollout services.

Everything the harness (tests/model/test_rollout_model.py) knows about the services' signatures,
inputs and error types is here, so that a change to the services (clamped clocks, new error types,
an operator-rollback input type, alarm mapping) is adapted in this one file. The harness speaks in
raw events (the ones Lambda would receive) and plain results; the driver turns them into service
calls the way the handlers do (functions/*/app.py: parse, one service call).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shepherd.capacity.errors import ScalingRequestRefused
from shepherd.inbound.rollback import parse_rollback_trigger
from shepherd.kernel.errors import TransientError
from shepherd.registry.images import ImagePolicy
from shepherd.rollouts.errors import EndpointLocked, EndpointRequestRefused, EndpointStillUpdating, LostCondition
from shepherd.rollouts.hold import Holds, ResumeRequest
from shepherd.rollouts.judging import CanaryJudge
from shepherd.rollouts.naming import rollout_alarm_names as alarm_names
from shepherd.rollouts.ports import ChangeRejected
from shepherd.rollouts.promotion import PromotionRequest, PromotionService, PromotionSettings
from shepherd.rollouts.rollback import RollbackService
from shepherd.rollouts.tick import RolloutService
from tests.fakes import InMemoryVault, sagemaker_refusal

ROLLBACK_FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:shepherd-rollback"
SETTINGS = PromotionSettings(
    require_approval=True,
    default_inference_image=f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve@sha256:{'a' * 64}",
    image_policy=ImagePolicy(allowed_registries=("123456789012.dkr.ecr.eu-west-1.amazonaws.com",), require_digest=True),
    namespace="model",
    rollback_function_arn=ROLLBACK_FUNCTION_ARN,
)


def rollout_alarm_names(endpoint_name: str, rollout_id: str) -> tuple[str, str]:
    """The per-rollout alarms' names (namespaced by the stack's namespace), for the harness's alarms."""
    return alarm_names(SETTINGS.namespace, endpoint_name, rollout_id)


# What an invocation may end with when a port failed: Lambda retries the event (the schedule
# re-runs the controller). Anything else escaping a handler is a bug the harness reports.
RETRIED_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    EndpointStillUpdating,
    EndpointRequestRefused,
    LostCondition,
    EndpointLocked,
    ChangeRejected,  # a resume that lost the record to a controller pass: Lambda retries it
)


@dataclass(frozen=True)
class Services:
    promotions: PromotionService
    controller: RolloutService
    rollbacks: RollbackService
    holds: Holds


def build(
    *, registry: Any, store: Any, endpoints: Any, alarms: Any, events: Any, clock: Any, metrics: Any, scaling: Any
) -> Services:
    """Wire the real services over the (fault-injecting) fake ports, as bootstrap does over AWS."""
    promotions = PromotionService(registry, store, endpoints, alarms, events, clock, SETTINGS, InMemoryVault(), scaling)
    canary = CanaryJudge(
        store,
        events,
        clock,
        metrics=metrics,  # the candidates' traffic as the model scripts it (tests/model/metrics.py)
        analysis_rollback=lambda stored, cause: rollbacks.handle_analysis(stored, cause),
    )
    controller = RolloutService(store, endpoints, alarms, events, clock, SETTINGS.namespace, canary, scaling)
    rollbacks = RollbackService(
        store, endpoints, events, clock, lambda: promotions, lambda: alarms, sleep=lambda _: None
    )
    return Services(promotions, controller, rollbacks, Holds(store, events, clock))


# --- what the port adapters raise for each fault (shepherd/adapters/*) ------------------------------


def throttled(service: str) -> Exception:
    return TransientError(f"{service}: ThrottlingException after the SDK's retries")


def server_error(service: str) -> Exception:
    return TransientError(f"{service}: InternalServerError after the SDK's retries")


def transaction_cancelled() -> Exception:
    # DynamoRolloutStore.commit: a cancellation that is not a failed condition (TransactionConflict).
    return TransientError("rollout commit cancelled: ['TransactionConflict']")


def autoscaling_refused(code: str) -> Exception:
    """A non-retryable Application Auto Scaling 4xx, as the ApplicationAutoScaling adapter raises it."""
    return ScalingRequestRefused(
        code, "User is not authorized to perform: application-autoscaling:RegisterScalableTarget"
    )


def sagemaker_refused(code: str) -> Exception:
    """A non-retryable SageMaker 4xx, as the SageMakerEndpoints adapter raises it."""
    messages = {
        "ResourceLimitExceeded": "The account-level service limit 'ml.m5.large for endpoint usage' is 2 Instances",
        "ValidationException": "Could not find model data at s3://bucket/models/model.tar.gz",
        "AccessDeniedException": "User is not authorized to perform: sagemaker:UpdateEndpoint",
    }
    return sagemaker_refusal(code, messages[code])


# --- invocations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: int
    endpoint_name: str
    strategy: dict[str, Any]
    alarms: tuple[str, ...]
    instance_type: str | None
    initial_instance_count: int | None
    event_id: str
    time: datetime


def promote(services: Services, promotion: Promotion) -> str:
    """`Model Promotion Requested` through start_rollout: "started", "duplicate" or "rejected"."""
    outcome = services.promotions.promote(
        PromotionRequest(
            model_name=promotion.model_name,
            version=promotion.version,
            endpoint_name=promotion.endpoint_name,
            strategy=promotion.strategy,
            alarms=promotion.alarms,
            instance_type=promotion.instance_type,
            initial_instance_count=promotion.initial_instance_count,
            requested_by="alice@example.com",
            reason="better AUC",
            event_id=promotion.event_id,
            requested_at=promotion.time,
        )
    )
    return outcome.result


def tick(services: Services, now: datetime, event_id: str) -> dict[str, str]:
    """A controller invocation (the schedule, or one of Shepherd's own events): rollout id -> result.

    A pass that failed is isolated by the service and reported as "error" (the next tick retries it).
    """
    return services.controller.tick(now, event_id).results


@dataclass(frozen=True)
class RollbackResult:
    result: str  # "rolled_back", "flip_pending", "redeploying", "duplicate", "skipped", "ignored"
    rollout_id: str | None
    seconds_to_flip: float | None


def rollback(services: Services, raw_event: dict[str, Any]) -> list[RollbackResult]:
    """An alarm (any of its three shapes) or a `Model Rollback Requested` through the rollback function."""
    results = []
    for trigger in parse_rollback_trigger(raw_event):
        for outcome in services.rollbacks.handle(trigger):  # one per rollout the trigger acts on
            results.append(RollbackResult(outcome.result, outcome.rollout_id, outcome.seconds_to_flip))
    return results


def resume(services: Services, endpoint_name: str, rollout_id: str, event_id: str, at: datetime) -> str:
    """`Model Rollout Resume Requested` through the controller function: the answer's detail-type."""
    request = ResumeRequest(
        endpoint_name=endpoint_name,
        rollout_id=rollout_id,
        requested_by="oncall@example.com",
        reason="the evidence so far is clean",
        event_id=event_id,
        requested_at=at,
    )
    return services.holds.resume(request)
