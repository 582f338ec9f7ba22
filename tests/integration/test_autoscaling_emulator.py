"""Local mode's auto scaling: SageMaker's refusals for registered variants, and target tracking that follows load.

Seen through boto3 calls on moto with Shepherd's emulator extensions, as the controller and an operator
see them: UpdateEndpoint answers, DescribeEndpoint instance counts, Application Auto Scaling's records.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shepherd.adapters.autoscaling import ApplicationAutoScaling
from shepherd.capacity.scaling import INVOCATIONS_PER_INSTANCE, ScalableTarget, SuspendedState, TargetTracking
from shepherd_cli.local import cloudwatch_emulator, emulator
from shepherd_cli.local.autoscaling import TargetTrackingScaler
from shepherd_cli.local.traffic import TrafficSimulator, moto_endpoints

ACCOUNT, REGION = "123456789012", "eu-west-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
ENDPOINT = "churn-prod"
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
# 100 requests a second on 2 instances: 3,000 invocations per instance and minute, exactly the target.
TRACKING = TargetTracking(3000.0, INVOCATIONS_PER_INSTANCE, scale_out_cooldown=60, scale_in_cooldown=300)


@dataclass
class Local:
    sagemaker: Any
    autoscaling: Any
    cloudwatch: Any
    scaling: ApplicationAutoScaling
    traffic: TrafficSimulator
    scaler: TargetTrackingScaler
    minute: int = 0

    def run(self, minutes: int, rps: float) -> None:
        """``minutes`` simulated minutes at ``rps``, each published, then evaluated (as `simulation` does)."""
        self.traffic.rps = rps
        for _ in range(minutes):
            moment = START + timedelta(minutes=self.minute + 1)
            self.traffic.publish_minute(moment - timedelta(minutes=1))
            self.scaler.evaluate(moment)
            self.minute += 1

    def counts(self, variant: str = "live") -> tuple[int, int]:
        # Read in-process, as the traffic simulator does: a DescribeEndpoint would move the emulator on.
        backend_variant = next(v for v in _endpoint(self).production_variants if v["VariantName"] == variant)
        return backend_variant["CurrentInstanceCount"], backend_variant["DesiredInstanceCount"]


def _endpoint(local: Local) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT][REGION].endpoints[ENDPOINT]


@pytest.fixture
def local() -> Iterator[Local]:
    emulator.install()
    emulator.configure(settle_after_describes=1)
    cloudwatch_emulator.install()
    with mock_aws():
        clients = {
            name: boto3.client(name, region_name=REGION)
            for name in ("sagemaker", "application-autoscaling", "cloudwatch", "ssm")
        }
        scaling = ApplicationAutoScaling(clients["application-autoscaling"])
        traffic = TrafficSimulator(
            clients["cloudwatch"], clients["ssm"], moto_endpoints(ACCOUNT, REGION), rps=0, rng=random.Random(3)
        )
        scaler = TargetTrackingScaler(clients["sagemaker"], clients["cloudwatch"], scaling, ACCOUNT, REGION)
        yield Local(
            clients["sagemaker"], clients["application-autoscaling"], clients["cloudwatch"], scaling, traffic, scaler
        )
    emulator.reset()


def _config(local: Local, name: str, variants: dict[str, tuple[str, str, int]]) -> None:
    """variants: name -> (model, instance type, count)."""
    existing = {model["ModelName"] for model in local.sagemaker.list_models()["Models"]}
    for model in {model for model, _, _ in variants.values()} - existing:
        local.sagemaker.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": model})
    local.sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model,
                "InstanceType": instance_type,
                "InitialInstanceCount": count,
                "InitialVariantWeight": 1.0,
            }
            for variant, (model, instance_type, count) in variants.items()
        ],
    )


def _settle(local: Local) -> dict[str, Any]:
    for _ in range(5):
        description = local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        if description["EndpointStatus"] == "InService":
            return dict(description)
    raise AssertionError("the endpoint never settled")


def _deploy(local: Local, variants: dict[str, tuple[str, str, int]]) -> None:
    _config(local, "config-1", variants)
    local.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config-1")
    _settle(local)


def _register(local: Local, variant: str = "live", low: int = 2, high: int = 8) -> None:
    local.scaling.register(ScalableTarget(ENDPOINT, variant, low, high))
    local.scaling.put_target_tracking_policy(ENDPOINT, variant, "invocations", TRACKING)


# --- SageMaker's refusals ------------------------------------------------------------------------------


def test_an_update_that_removes_a_registered_variant_is_refused_and_changes_nothing(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})
    _register(local)
    _config(local, "config-2", {"candidate": ("churn-2", "ml.m5.large", 2)})

    with pytest.raises(ClientError) as refused:
        local.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config-2")

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    described = _settle(local)
    assert (described["EndpointConfigName"], described["EndpointStatus"]) == ("config-1", "InService")


def test_an_update_that_changes_a_registered_variants_instance_type_is_refused(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})
    _register(local)
    _config(local, "config-2", {"live": ("churn-1", "ml.c5.xlarge", 2)})

    with pytest.raises(ClientError) as refused:
        local.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config-2")

    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_changing_only_the_model_of_a_registered_variant_is_allowed(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})
    _register(local)
    _config(local, "config-2", {"live": ("churn-2", "ml.m5.large", 2), "canary": ("churn-2", "ml.m5.large", 1)})

    local.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config-2")

    assert _settle(local)["EndpointConfigName"] == "config-2"


def test_after_deregistering_the_variant_can_be_removed(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})
    _register(local)
    _config(local, "config-2", {"candidate": ("churn-2", "ml.c5.xlarge", 2)})

    local.scaling.deregister(ENDPOINT, "live")
    local.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config-2")

    assert _settle(local)["EndpointConfigName"] == "config-2"


def test_deleting_the_endpoint_deregisters_its_variants_and_their_policies(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})
    _register(local)

    local.sagemaker.delete_endpoint(EndpointName=ENDPOINT)

    assert local.scaling.scalable_target(ENDPOINT, "live") is None
    assert local.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []


def test_a_new_scalable_target_needs_both_limits(local):
    with pytest.raises(ClientError) as refused:
        local.autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{ENDPOINT}/variant/live",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
        )

    assert refused.value.response["Error"]["Code"] == "ValidationException"


# --- target tracking -----------------------------------------------------------------------------------


def test_traffic_publishes_invocations_per_instance_on_the_current_count(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})

    local.run(minutes=1, rps=100)

    datapoints = local.cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="InvocationsPerInstance",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "live"}],
        StartTime=START,
        EndTime=START + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [point["Sum"] for point in datapoints] == [3000.0]


def test_capacity_follows_an_rps_ramp_out_and_back_in_within_the_limits(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})
    _register(local, low=2, high=8)

    local.run(minutes=5, rps=100)  # at the target: nothing to do
    steady = local.counts()
    local.run(minutes=2, rps=300)  # above the target for 2 minutes: the high alarm needs 3
    before_alarm = local.counts()
    local.run(minutes=1, rps=300)  # 9,000 per instance on 2: ceil(2 * 9000 / 3000) = 6
    scaling_out = local.counts()
    local.run(minutes=3, rps=300)
    scaled_out = local.counts()
    local.run(minutes=5, rps=600)  # 6,000 per instance on 6 asks for 12; the limit is 8
    at_max = local.counts()
    local.run(minutes=14, rps=100)  # 750 per instance, below 90% of the target for 14 minutes: not yet
    before_scale_in = local.counts()
    local.run(minutes=4, rps=100)
    scaled_in = local.counts()

    assert steady == (2, 2)
    assert before_alarm == (2, 2)
    assert scaling_out == (2, 6)  # desired first; SageMaker adds the instances afterwards
    assert scaled_out == (6, 6)
    assert at_max == (8, 8)
    assert before_scale_in == (8, 8)
    assert scaled_in == (2, 2)  # ceil(8 * 750 / 3000) = 2, the minimum
    activities = [sample.activity for sample in local.scaler.samples(ENDPOINT) if sample.activity]
    assert [activity.split(":")[0] for activity in activities] == ["scale out", "scale out", "scale in"]


def test_suspended_scale_out_keeps_the_count_under_load(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})
    _register(local)
    local.scaling.set_suspended(ENDPOINT, "live", SuspendedState(dynamic_scaling_out=True))

    local.run(minutes=6, rps=300)

    assert local.counts() == (2, 2)


def test_no_traffic_means_no_scale_in(local):
    # SageMaker publishes InvocationsPerInstance with requests only; target tracking does not act on
    # missing data, so an idle variant keeps its instances.
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 4)})
    _register(local, low=1, high=8)

    local.run(minutes=30, rps=0)

    assert local.counts() == (4, 4)


def test_an_unregistered_variant_is_never_scaled(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 2)})

    local.run(minutes=6, rps=300)

    assert local.counts() == (2, 2)


def test_a_scale_in_waits_for_the_previous_scale_ins_cooldown(local):
    _deploy(local, {"live": ("churn-1", "ml.m5.large", 8)})
    local.scaling.register(ScalableTarget(ENDPOINT, "live", 1, 8))
    slow = TargetTracking(3000.0, INVOCATIONS_PER_INSTANCE, scale_in_cooldown=1800)
    local.scaling.put_target_tracking_policy(ENDPOINT, "live", "invocations", slow)

    local.run(minutes=16, rps=200)  # 1,500 per instance on 8 for 15 minutes: scale in to 4
    first = local.counts()
    local.run(minutes=25, rps=50)  # 750 per instance on 4, low for 25 minutes, 26 since the scale-in
    cooling = local.counts()
    local.run(minutes=5, rps=50)  # 30 minutes since the scale-in: ceil(4 * 750 / 3000) = 1
    cooled = local.counts()

    assert first == (4, 4)
    assert cooling == (4, 4)
    assert cooled == (1, 1)
