"""The Application Auto Scaling adapter and the capacity read, on moto (with Shepherd's emulator extension).

The extension (`autoscaling_emulator`) gives moto the behaviour the adapter relies on and AWS documents:
``ObjectNotFoundException`` for what is absent, policies deleted with their target, a policy needing a
registered target, exact resource-id filtering.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shepherd.adapters.autoscaling import ApplicationAutoScaling
from shepherd.adapters.sagemaker import SageMakerEndpoints
from shepherd.capacity.errors import NoScalableTarget, ScalingRequestRefused
from shepherd.capacity.observe import observe_capacity
from shepherd.capacity.scaling import (
    INVOCATIONS_PER_INSTANCE,
    ScalableTarget,
    ScalingPolicy,
    SuspendedState,
    TargetTracking,
    VariantCapacity,
    VariantScaling,
)
from shepherd.registry.errors import TransientError
from shepherd_cli.local import emulator

ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker"
ENDPOINT = "churn-prod"
TRACKING = TargetTracking(
    target_value=3000.0,
    predefined_metric=INVOCATIONS_PER_INSTANCE,
    scale_out_cooldown=60,
    scale_in_cooldown=600,
)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    emulator.install()  # installs autoscaling_emulator too
    emulator.configure(settle_after_describes=1)
    with mock_aws():
        yield {name: boto3.client(name) for name in ("application-autoscaling", "sagemaker")}
    emulator.reset()


@pytest.fixture
def scaling(aws: dict[str, Any]) -> ApplicationAutoScaling:
    return ApplicationAutoScaling(aws["application-autoscaling"])


def deploy(sagemaker: Any, counts: dict[str, int]) -> None:
    variants = []
    for name, count in counts.items():
        sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "image"})
        variants.append(
            {
                "VariantName": name,
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": count,
                "InitialVariantWeight": 1.0,
            }
        )
    sagemaker.create_endpoint_config(EndpointConfigName="config", ProductionVariants=variants)
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config")
    while sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] != "InService":
        pass


def test_a_registered_variant_reads_back_with_its_limits_and_nothing_suspended(scaling):
    assert scaling.scalable_target(ENDPOINT, "live") is None

    scaling.register(ScalableTarget(ENDPOINT, "live", min_capacity=2, max_capacity=8))

    assert scaling.scalable_target(ENDPOINT, "live") == ScalableTarget(ENDPOINT, "live", 2, 8, SuspendedState())
    assert scaling.scalable_target(ENDPOINT, "other") is None


def test_a_target_tracking_policy_reads_back_with_its_metric_target_and_cooldowns(scaling):
    scaling.register(ScalableTarget(ENDPOINT, "v", 1, 4))
    scaling.register(ScalableTarget(ENDPOINT, "v2", 1, 4))

    scaling.put_target_tracking_policy(ENDPOINT, "v", "invocations", TRACKING)

    assert scaling.scaling_policies(ENDPOINT, "v") == (ScalingPolicy("invocations", "TargetTrackingScaling", TRACKING),)
    # moto alone would also give v2 the policies of v (a substring match on the resource id).
    assert scaling.scaling_policies(ENDPOINT, "v2") == ()


def test_suspending_keeps_the_limits_and_resuming_lifts_the_suspension(scaling):
    scaling.register(ScalableTarget(ENDPOINT, "live", 2, 8))

    scaling.set_suspended(ENDPOINT, "live", SuspendedState(dynamic_scaling_in=True))
    suspended = scaling.scalable_target(ENDPOINT, "live")
    scaling.set_suspended(ENDPOINT, "live", SuspendedState())

    assert suspended == ScalableTarget(ENDPOINT, "live", 2, 8, SuspendedState(dynamic_scaling_in=True))
    assert scaling.scalable_target(ENDPOINT, "live") == ScalableTarget(ENDPOINT, "live", 2, 8)


def test_suspending_an_unregistered_variant_is_refused_and_registers_nothing(scaling):
    with pytest.raises(NoScalableTarget):
        scaling.set_suspended(ENDPOINT, "live", SuspendedState(dynamic_scaling_in=True))

    assert scaling.scalable_target(ENDPOINT, "live") is None


def test_deregistering_deletes_the_policies_and_is_done_when_already_done(scaling):
    scaling.register(ScalableTarget(ENDPOINT, "live", 1, 4))
    scaling.put_target_tracking_policy(ENDPOINT, "live", "invocations", TRACKING)

    scaling.deregister(ENDPOINT, "live")
    scaling.deregister(ENDPOINT, "live")  # absent: done, not an error

    assert scaling.scalable_target(ENDPOINT, "live") is None
    assert scaling.scaling_policies(ENDPOINT, "live") == ()


def test_deleting_a_policy_twice_is_done(scaling):
    scaling.register(ScalableTarget(ENDPOINT, "live", 1, 4))
    scaling.put_target_tracking_policy(ENDPOINT, "live", "invocations", TRACKING)

    scaling.delete_policy(ENDPOINT, "live", "invocations")
    scaling.delete_policy(ENDPOINT, "live", "invocations")

    assert scaling.scaling_policies(ENDPOINT, "live") == ()


def test_a_policy_for_an_unregistered_variant_is_refused(scaling):
    with pytest.raises(NoScalableTarget):
        scaling.put_target_tracking_policy(ENDPOINT, "live", "invocations", TRACKING)


@pytest.mark.parametrize(("low", "high"), [(0, 4), (5, 4)])
def test_limits_outside_one_to_max_are_refused_before_any_call(scaling, low, high):
    with pytest.raises(ScalingRequestRefused):
        scaling.register(ScalableTarget(ENDPOINT, "live", low, high))

    assert scaling.scalable_target(ENDPOINT, "live") is None


class _Refusing:
    """A client failing every call with ``code``: moto never throttles nor refuses for concurrency."""

    def __init__(self, code: str, status: int = 400) -> None:
        self._error = ClientError(
            {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "op"
        )

    def __getattr__(self, _name: str) -> Any:
        def fail(**_params: Any) -> None:
            raise self._error

        return fail


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("ConcurrentUpdateException", 400), ("InternalServiceException", 500)],
)
def test_throttling_a_concurrent_update_and_5xx_are_transient(code, status):
    scaling = ApplicationAutoScaling(_Refusing(code, status))

    with pytest.raises(TransientError):
        scaling.scalable_target(ENDPOINT, "live")
    with pytest.raises(TransientError):
        scaling.deregister(ENDPOINT, "live")


def test_access_denied_is_a_refusal():
    with pytest.raises(ScalingRequestRefused) as refused:
        ApplicationAutoScaling(_Refusing("AccessDeniedException")).register(ScalableTarget(ENDPOINT, "live", 1, 2))

    assert refused.value.code == "AccessDeniedException"


def test_capacity_is_read_from_describe_endpoint_desired_first_then_current(aws):
    endpoints = SageMakerEndpoints(aws["sagemaker"], ROLE_ARN, "stack")
    deploy(aws["sagemaker"], {"live": 2})

    before = endpoints.variant_capacity(ENDPOINT)
    aws["sagemaker"].update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "live", "DesiredInstanceCount": 4}]
    )
    during = endpoints.variant_capacity(ENDPOINT)  # the change is in progress for one describe
    after = endpoints.variant_capacity(ENDPOINT)

    assert before == {"live": VariantCapacity(current=2, desired=2)}
    assert during == {"live": VariantCapacity(current=2, desired=4)}
    assert after == {"live": VariantCapacity(current=4, desired=4)}
    assert endpoints.variant_capacity("missing") is None


def test_observing_capacity_gives_each_variant_its_counts_registration_and_policies(aws, scaling):
    deploy(aws["sagemaker"], {"live": 2, "canary": 1})
    scaling.register(ScalableTarget(ENDPOINT, "live", 2, 8))
    scaling.put_target_tracking_policy(ENDPOINT, "live", "invocations", TRACKING)

    observed = observe_capacity(ENDPOINT, SageMakerEndpoints(aws["sagemaker"], ROLE_ARN, "stack"), scaling)

    assert observed == (
        VariantScaling(
            "live",
            VariantCapacity(2, 2),
            ScalableTarget(ENDPOINT, "live", 2, 8),
            (ScalingPolicy("invocations", "TargetTrackingScaling", TRACKING),),
        ),
        VariantScaling("canary", VariantCapacity(1, 1), None, ()),
    )
    assert observe_capacity("missing", SageMakerEndpoints(aws["sagemaker"], ROLE_ARN, "stack"), scaling) is None
