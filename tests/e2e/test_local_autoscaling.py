"""Local mode with auto scaling: a variant registered with Application Auto Scaling (over HTTP, as the AWS
CLI would) follows the simulated load, and SageMaker refuses to remove it while it is registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from shepherd_cli.local import simulation
from shepherd_cli.local.stack import LocalShepherd

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
ENDPOINT, VARIANT = "fraud-prod", "live"
RESOURCE_ID = f"endpoint/{ENDPOINT}/variant/{VARIANT}"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@pytest.fixture
def local() -> Iterator[LocalShepherd]:
    with LocalShepherd.start(ROOT / "template.yaml", environment_overrides=QUIET) as running:
        yield running


def endpoint(local: LocalShepherd, config: str, instance_type: str = "ml.m5.large") -> None:
    sagemaker = local.client("sagemaker")
    sagemaker.create_model(
        ModelName=config, ExecutionRoleArn="arn:aws:iam::123456789012:role/sm", PrimaryContainer={"Image": "image"}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": VARIANT, "ModelName": config, "InstanceType": instance_type, "InitialInstanceCount": 2}
        ],
    )


def counts(local: LocalShepherd) -> tuple[int, int]:
    [variant] = local.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    return variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]


def test_a_registered_variant_scales_with_the_load_and_cannot_be_retyped(local):
    # Given an endpoint of 2 instances registered for 2 to 8, tracking 3,000 invocations per instance.
    running = simulation.attach(local, rps=100, seed=1)
    endpoint(local, "fraud-1")
    sagemaker, autoscaling = local.client("sagemaker"), local.client("application-autoscaling")
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="fraud-1")
    while sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] != "InService":
        pass
    names = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE_ID, "ScalableDimension": DIMENSION}
    autoscaling.register_scalable_target(**names, MinCapacity=2, MaxCapacity=8)
    autoscaling.put_scaling_policy(
        PolicyName="invocations",
        PolicyType="TargetTrackingScaling",
        **names,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 3000.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )

    # At the target nothing moves; at three times the load, capacity follows within a few minutes.
    local.pump.advance(5 * 60)
    assert counts(local) == (2, 2)
    running.traffic.rps = 300
    local.pump.advance(6 * 60)
    assert counts(local) == (6, 6)

    # And SageMaker refuses to change the instance type of the registered variant.
    endpoint(local, "fraud-2", instance_type="ml.c5.xlarge")
    with pytest.raises(ClientError) as refused:
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="fraud-2")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert running.scaling is not None
    assert running.scaling.samples(ENDPOINT)[-1].desired == 6  # the emulator's record, for the dashboard
