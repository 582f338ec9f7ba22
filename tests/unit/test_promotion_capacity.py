"""A promotion's capacity options (issue 23): how the candidate is sized, the auto scaling limits the new
live variant takes over with, and the refusals that would otherwise come only at the retire, after a
whole canary. The promotion service on in-memory ports; what is asserted is what a user sees: the
stored rollout record, `Promotion Rejected` and the endpoint's audit trail, and the lock left free.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shepherd.capacity.errors import ScalingRequestRefused
from shepherd.capacity.scaling import (
    INVOCATIONS_PER_INSTANCE,
    CustomizedMetric,
    ScalableTarget,
    ScalingPolicy,
    TargetTracking,
)
from shepherd.contracts import PromotionRejected
from shepherd.kernel.errors import TransientError
from shepherd.registry.images import ImagePolicy
from shepherd.registry.model import ArtifactRef, Lineage, ModelVersion, VersionStatus
from shepherd.rollouts.observed import EndpointStatus
from shepherd.rollouts.placement_rules import PlacementRules
from shepherd.rollouts.ports import REFUSED_PROMOTION
from shepherd.rollouts.promotion import PromotionRequest, PromotionService, PromotionSettings
from shepherd.rollouts.record import CandidateSizing, LiveDeployment, Rollout, ScalingLimits, VariantSpec
from tests.fakes import (
    FakeClock,
    InMemoryAlarms,
    InMemoryAutoScaling,
    InMemoryEndpoints,
    InMemoryRegistry,
    InMemoryRolloutStore,
    InMemoryVault,
    RecordingPublisher,
    _FakeEndpoint,
)

MODEL, ENDPOINT = "churn-predictor", "churn-prod"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
IMAGE = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve@sha256:{'a' * 64}"
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "analysis": {"judge": {"enabled": False}}}
LIVE = VariantSpec.for_version(MODEL, 1, instance_type="ml.m5.large", initial_instance_count=2, namespace="shepherd")
TRACKING = ScalingPolicy(
    "invocations", "TargetTrackingScaling", TargetTracking(70.0, predefined_metric=INVOCATIONS_PER_INSTANCE)
)


def version(number: int, status: VersionStatus) -> ModelVersion:
    return ModelVersion(
        model_name=MODEL,
        version=number,
        artifact=ArtifactRef(bucket="b", key=f"models/{MODEL}/{number}/model.tar.gz", s3_version_id=f"s{number}"),
        etag="e",
        size=1,
        checksum=None,
        metadata={},
        metrics={},
        tags={},
        lineage=Lineage(),
        status=status,
        created_at=NOW,
        uploaded_at=NOW,
        uploaded_by=None,
        registered_by_event=f"upload-{number}",
    )


class Shepherd:
    """The promotion service over in-memory ports: v1 LIVE on the endpoint (unless `first`), v2 APPROVED."""

    def __init__(self, *, first: bool = False) -> None:
        self.registry = InMemoryRegistry()
        self.registry.versions[(MODEL, 1)] = version(1, VersionStatus.RETIRED if first else VersionStatus.LIVE)
        self.registry.versions[(MODEL, 2)] = version(2, VersionStatus.APPROVED)
        self.store = InMemoryRolloutStore(self.registry)
        self.endpoints = InMemoryEndpoints()
        self.scaling = InMemoryAutoScaling()
        self.events = RecordingPublisher()
        if not first:
            self.store.lives[ENDPOINT] = LiveDeployment(model_name=MODEL, version=1, variant=LIVE, config_name="v1")
            weights = {LIVE.variant_name: 1.0}
            self.endpoints.endpoints[ENDPOINT] = _FakeEndpoint(EndpointStatus.IN_SERVICE, "v1", weights, dict(weights))
        settings = PromotionSettings(
            require_approval=True,
            default_inference_image=IMAGE,
            image_policy=ImagePolicy(
                allowed_registries=("123456789012.dkr.ecr.eu-west-1.amazonaws.com",), require_digest=True
            ),
            namespace="shepherd",
            rollback_function_arn=None,
            placement=PlacementRules(("ml.m5.large", "ml.c5.xlarge"), max_instance_count=10),
        )
        self.service = PromotionService(
            registry=self.registry,
            rollouts=self.store,
            endpoints=self.endpoints,
            alarms=InMemoryAlarms(),
            events=self.events,
            clock=FakeClock(NOW),
            settings=settings,
            vault=InMemoryVault(),
            scaling=self.scaling,
        )

    def autoscale_live(self, *policies: ScalingPolicy, low: int = 2, high: int = 8) -> None:
        self.scaling.register(ScalableTarget(ENDPOINT, LIVE.variant_name, low, high))
        self.scaling.policies[(ENDPOINT, LIVE.variant_name)] = {policy.name: policy for policy in policies}

    def promote(self, **options: Any) -> Any:
        request = PromotionRequest(
            model_name=MODEL,
            version=2,
            endpoint_name=ENDPOINT,
            strategy=CANARY,
            alarms=(),
            instance_type=options.pop("instance_type", None),
            initial_instance_count=options.pop("initial_instance_count", None),
            requested_by="alice@example.com",
            reason="better AUC",
            event_id="e-1",
            requested_at=NOW,
            **options,
        )
        return self.service.promote(request)

    def rollout(self, rollout_id: str) -> Rollout:
        stored = self.store.get_rollout(ENDPOINT, rollout_id)
        assert stored is not None
        return stored.rollout

    def rejected(self, outcome: Any) -> str:
        """The refusal's reason, once checked it was announced, recorded, and left the endpoint free."""
        assert outcome.result == "rejected"
        [announced] = self.events.of_type(PromotionRejected)
        assert announced.reason == outcome.reason
        [recorded] = [entry for entry in self.store.audit.values() if entry.action == REFUSED_PROMOTION]
        assert recorded.detail == outcome.reason
        assert self.store.lock_holder(ENDPOINT) is None
        assert self.store.get_rollout(ENDPOINT, outcome.rollout_id) is None
        assert self.registry.versions[(MODEL, 2)].status is VersionStatus.APPROVED
        return str(outcome.reason)


# --- the record's sizing and limits -------------------------------------------------------------------


def test_an_update_of_an_autoscaled_endpoint_without_an_explicit_count_sizes_the_candidate():
    shepherd = Shepherd()
    shepherd.autoscale_live()

    outcome = shepherd.promote()

    assert outcome.result == "started"
    rollout = shepherd.rollout(outcome.rollout_id)
    assert rollout.sizing == CandidateSizing(headroom=1.2)
    assert rollout.scaling_limits is None


def test_an_endpoint_without_autoscaling_keeps_a_full_size_candidate_as_before():
    shepherd = Shepherd()

    as_before = shepherd.promote()

    assert shepherd.rollout(as_before.rollout_id).sizing is None


def test_another_instance_type_named_in_the_promotion_is_not_sized_but_the_live_type_is():
    shepherd = Shepherd()
    shepherd.autoscale_live()

    other = shepherd.promote(instance_type="ml.c5.xlarge")
    assert other.result == "started" and shepherd.rollout(other.rollout_id).sizing is None

    again = Shepherd()
    again.autoscale_live()
    same = again.promote(instance_type="ml.m5.large")
    assert same.result == "started" and again.rollout(same.rollout_id).sizing is not None


def test_the_headroom_asked_for_is_recorded():
    shepherd = Shepherd()

    outcome = shepherd.promote(headroom=1.5)

    assert shepherd.rollout(outcome.rollout_id).sizing == CandidateSizing(headroom=1.5)


@pytest.mark.parametrize("headroom", [None, 2.0])
def test_an_explicit_instance_count_wins_over_sizing(headroom):
    shepherd = Shepherd()

    outcome = shepherd.promote(initial_instance_count=3, headroom=headroom)

    rollout = shepherd.rollout(outcome.rollout_id)
    assert rollout.sizing is None
    assert rollout.candidate.initial_instance_count == 3


def test_a_first_deployment_is_not_sized_to_a_share():
    shepherd = Shepherd(first=True)

    outcome = shepherd.promote(headroom=1.5)

    assert outcome.result == "started"
    assert shepherd.rollout(outcome.rollout_id).sizing is None


@pytest.mark.parametrize(
    ("limits", "recorded"),
    [
        ({"min_capacity": 3, "max_capacity": 10}, ScalingLimits(min_capacity=3, max_capacity=10)),
        ({"max_capacity": 10}, ScalingLimits(max_capacity=10)),
        ({"min_capacity": 1}, ScalingLimits(min_capacity=1)),
    ],
)
def test_the_limits_asked_for_an_autoscaled_endpoint_are_recorded(limits, recorded):
    shepherd = Shepherd()
    shepherd.autoscale_live(TRACKING)

    outcome = shepherd.promote(**limits)

    assert outcome.result == "started"
    assert shepherd.rollout(outcome.rollout_id).scaling_limits == recorded


def test_an_endpoint_without_autoscaling_is_promoted_as_before():
    shepherd = Shepherd()

    outcome = shepherd.promote(initial_instance_count=1)

    assert outcome.result == "started"
    assert shepherd.rollout(outcome.rollout_id).scaling_limits is None
    assert shepherd.scaling.reads == [(ENDPOINT, LIVE.variant_name)]  # one DescribeScalableTargets


# --- refusals -----------------------------------------------------------------------------------------


def test_a_minimum_above_the_maximum_is_refused():
    shepherd = Shepherd()
    shepherd.autoscale_live(TRACKING)

    reason = shepherd.rejected(shepherd.promote(min_capacity=6, max_capacity=4))

    assert "min_capacity 6 is more than max_capacity 4" in reason


def test_a_minimum_above_the_live_variants_own_maximum_is_refused():
    shepherd = Shepherd()
    shepherd.autoscale_live(TRACKING, low=2, high=8)

    reason = shepherd.rejected(shepherd.promote(min_capacity=9))

    assert "min 9, max 8" in reason


@pytest.mark.parametrize("limits", [{"max_capacity": 11}, {"min_capacity": 11}])
def test_limits_above_the_stacks_max_instance_count_are_refused(limits):
    shepherd = Shepherd()
    shepherd.autoscale_live(TRACKING, high=20)

    reason = shepherd.rejected(shepherd.promote(**limits))

    assert "11 is more than the 10 instances allowed per variant on this stack (MaxInstanceCount)" in reason


def test_limits_for_a_live_variant_that_does_not_autoscale_are_refused():
    shepherd = Shepherd()

    reason = shepherd.rejected(shepherd.promote(min_capacity=2, max_capacity=8))

    assert f"{LIVE.variant_name} is not registered with Application Auto Scaling" in reason


def test_limits_on_a_first_deployment_are_refused():
    shepherd = Shepherd(first=True)

    reason = shepherd.rejected(shepherd.promote(max_capacity=4))

    assert "first deployment" in reason


@pytest.mark.parametrize(
    ("policy", "why"),
    [
        (ScalingPolicy("steps", "StepScaling"), "policy steps is StepScaling"),
        (
            ScalingPolicy(
                "math",
                "TargetTrackingScaling",
                TargetTracking(5.0, customized_metric=CustomizedMetric(None, None, None, uses_metric_math=True)),
            ),
            "policy math uses metric math",
        ),
    ],
)
@pytest.mark.parametrize("limits", [{}, {"max_capacity": 8}], ids=["no-limits", "limits"])
def test_scaling_that_cannot_be_carried_to_the_new_variant_is_refused_at_the_promotion(policy, why, limits):
    shepherd = Shepherd()
    shepherd.autoscale_live(TRACKING, policy)

    reason = shepherd.rejected(shepherd.promote(**limits))

    assert why in reason
    assert "auto scaling cannot be carried" in reason


def test_a_refused_scaling_read_refuses_the_promotion_with_the_reason():
    shepherd = Shepherd()
    shepherd.scaling.read_failure = ScalingRequestRefused("AccessDeniedException", "not authorized")

    reason = shepherd.rejected(shepherd.promote(max_capacity=8))

    assert "AccessDeniedException: not authorized" in reason
    assert LIVE.variant_name in reason


def test_a_throttled_scaling_read_leaves_the_command_for_lambdas_retry():
    shepherd = Shepherd()
    shepherd.autoscale_live(TRACKING)
    shepherd.scaling.read_failure = TransientError("ThrottlingException after the SDK's retries")

    with pytest.raises(TransientError):
        shepherd.promote(max_capacity=8)

    assert shepherd.store.lock_holder(ENDPOINT) is None
    assert shepherd.events.published == []

    shepherd.scaling.read_failure = None  # Lambda's retry of the same command
    outcome = shepherd.promote(max_capacity=8)

    assert outcome.result == "started"
    assert shepherd.rollout(outcome.rollout_id).scaling_limits == ScalingLimits(max_capacity=8)
