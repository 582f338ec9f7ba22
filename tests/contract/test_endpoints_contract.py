"""The SageMaker and CloudWatch ports' contract, run against the adapters on moto (with the emulator
extension, cli/shepherd_cli/local/emulator.py) and against InMemoryEndpoints / InMemoryAlarms.

What the model-based test relies on: a change passes through Creating/Updating before it lands,
weights change when it lands, an endpoint that is changing refuses another change with
EndpointStillUpdating, other refusals are EndpointRequestRefused (refused for good, with SageMaker's
code), a failed update lands back on the old config with a FailureReason, creating what exists and
deleting what is gone are no-ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from shepherd.adapters.cloudwatch import CloudWatchAlarms
from shepherd.adapters.sagemaker import SageMakerEndpoints
from shepherd.rollouts.actions import EndpointConfigSpec, WeightedVariant
from shepherd.rollouts.errors import EndpointRequestRefused, EndpointStillUpdating
from shepherd.rollouts.observed import EndpointStatus
from shepherd.rollouts.record import VariantSpec
from shepherd.rollouts.strategy import Analysis
from shepherd_cli.local import emulator
from tests.fakes import InMemoryAlarms, InMemoryEndpoints

ENDPOINT = "churn-prod"
V1 = VariantSpec(
    variant_name="churn-v1", model_resource_name="ns--churn-v1", instance_type="ml.m5.large", initial_instance_count=1
)
V2 = VariantSpec(
    variant_name="churn-v2", model_resource_name="ns--churn-v2", instance_type="ml.m5.large", initial_instance_count=1
)
ONLY_V1 = EndpointConfigSpec("churn-prod-v1", (WeightedVariant(V1, 1.0),))
SHIFT = EndpointConfigSpec("churn-prod-shift", (WeightedVariant(V1, 1.0), WeightedVariant(V2, 0.0)))


@dataclass
class Endpoints:
    port: Any
    fail_next_update: Any  # (endpoint name, reason): the next UpdateEndpoint rolls back


@pytest.fixture(params=["sagemaker", "in-memory"])
def endpoints(request, world) -> Endpoints:
    if request.param == "in-memory":
        fake = InMemoryEndpoints(settle_after_describes=1)
        return Endpoints(fake, fake.fail_next_update)
    emulator.install()
    emulator.reset()
    emulator.configure(settle_after_describes=1)
    request.addfinalizer(emulator.reset)
    adapter = SageMakerEndpoints(
        boto3.client("sagemaker"), "arn:aws:iam::123456789012:role/shepherd-sagemaker", "shepherd-test"
    )
    return Endpoints(adapter, emulator.fail_next_update)


def settle(port: Any) -> Any:
    """Describe until the change in progress lands (the emulator and the fake: after one describe)."""
    observed = port.describe(ENDPOINT)
    while observed.status is not EndpointStatus.IN_SERVICE:
        observed = port.describe(ENDPOINT)
    return observed


def weights(observed: Any) -> dict[str, float]:
    return {variant.name: variant.current_weight for variant in observed.variants}


def serving_v1(port: Any) -> None:
    for variant in (V1, V2):
        port.ensure_model(variant.model_resource_name, "image", "s3://b/k")
    port.ensure_config(ONLY_V1)
    port.ensure_config(SHIFT)
    port.create_endpoint(ENDPOINT, ONLY_V1.name)


def test_a_missing_endpoint_is_described_as_none(endpoints) -> None:
    assert endpoints.port.describe(ENDPOINT) is None


def test_a_new_endpoint_is_creating_then_in_service_on_its_config(endpoints) -> None:
    port = endpoints.port
    serving_v1(port)

    assert port.describe(ENDPOINT).status is EndpointStatus.CREATING
    observed = port.describe(ENDPOINT)
    assert (observed.status, observed.config_name, weights(observed)) == (
        EndpointStatus.IN_SERVICE,
        ONLY_V1.name,
        {"churn-v1": 1.0},
    )


def test_an_update_passes_through_updating_and_lands_with_weight_0_kept(endpoints) -> None:
    port = endpoints.port
    serving_v1(port)
    settle(port)

    port.update_endpoint(ENDPOINT, SHIFT.name)

    assert port.describe(ENDPOINT).status is EndpointStatus.UPDATING
    observed = settle(port)
    assert (observed.config_name, weights(observed)) == (SHIFT.name, {"churn-v1": 1.0, "churn-v2": 0.0})


def test_weights_change_when_the_change_lands(endpoints) -> None:
    port = endpoints.port
    serving_v1(port)
    settle(port)
    port.update_endpoint(ENDPOINT, SHIFT.name)
    settle(port)

    port.set_weights(ENDPOINT, {"churn-v1": 0.9, "churn-v2": 0.1})

    during = port.describe(ENDPOINT)
    assert during.status is EndpointStatus.UPDATING
    assert weights(during) == {"churn-v1": 1.0, "churn-v2": 0.0}
    assert weights(settle(port)) == {"churn-v1": 0.9, "churn-v2": 0.1}


def test_a_fresh_baseline_config_runs_one_model_in_two_variants_and_one_call_sets_all_three(endpoints) -> None:
    # analysis.judge.baseline "fresh": the live model again, on the candidate's capacity, in the shift config.
    port = endpoints.port
    fresh = V1.model_copy(update={"variant_name": "churn-v1-baseline-3fa9c1d2e4", "instance_type": "ml.c5.xlarge"})
    three = EndpointConfigSpec(
        "churn-prod-fresh", (WeightedVariant(V1, 1.0), WeightedVariant(V2, 0.0), WeightedVariant(fresh, 0.0))
    )
    serving_v1(port)
    settle(port)
    port.ensure_config(three)
    port.update_endpoint(ENDPOINT, three.name)
    assert weights(settle(port)) == {"churn-v1": 1.0, "churn-v2": 0.0, fresh.variant_name: 0.0}

    port.set_weights(ENDPOINT, {"churn-v2": 0.1, "churn-v1": 0.8, fresh.variant_name: 0.1})
    assert weights(settle(port)) == {"churn-v1": 0.8, "churn-v2": 0.1, fresh.variant_name: 0.1}
    port.set_weights(ENDPOINT, {"churn-v1": 1.0, "churn-v2": 0.0, fresh.variant_name: 0.0})  # the flip
    assert weights(settle(port)) == {"churn-v1": 1.0, "churn-v2": 0.0, fresh.variant_name: 0.0}


def test_a_changing_endpoint_refuses_another_change_with_a_conflict(endpoints) -> None:
    port = endpoints.port
    serving_v1(port)
    settle(port)
    port.update_endpoint(ENDPOINT, SHIFT.name)

    with pytest.raises(EndpointStillUpdating):
        port.set_weights(ENDPOINT, {"churn-v1": 1.0})
    with pytest.raises(EndpointStillUpdating):
        port.update_endpoint(ENDPOINT, ONLY_V1.name)


def test_refusals_other_than_in_progress_are_refused_for_good_with_the_code(endpoints) -> None:
    port = endpoints.port
    refusals = []
    with pytest.raises(EndpointRequestRefused) as refused:
        port.update_endpoint(ENDPOINT, ONLY_V1.name)  # no such endpoint
    refusals.append(refused.value.code)
    with pytest.raises(EndpointRequestRefused) as refused:
        port.set_weights(ENDPOINT, {"churn-v1": 1.0})  # no such endpoint
    refusals.append(refused.value.code)
    serving_v1(port)
    settle(port)
    with pytest.raises(EndpointRequestRefused) as refused:
        port.update_endpoint(ENDPOINT, "churn-prod-missing")
    refusals.append(refused.value.code)
    with pytest.raises(EndpointRequestRefused) as refused:
        port.set_weights(ENDPOINT, {"churn-v9": 1.0})
    refusals.append(refused.value.code)
    # Not shared: SageMaker refuses to create an endpoint that exists (the fake does so); moto 5.2.5
    # replaces it.

    assert refusals == ["ValidationException"] * 4


def test_a_failed_update_lands_back_on_the_old_config_with_a_reason(endpoints) -> None:
    port = endpoints.port
    serving_v1(port)
    settle(port)
    endpoints.fail_next_update(ENDPOINT, "capacity error")

    port.update_endpoint(ENDPOINT, SHIFT.name)

    assert port.describe(ENDPOINT).status is EndpointStatus.UPDATING
    observed = settle(port)
    assert (observed.config_name, weights(observed), observed.failure_reason) == (
        ONLY_V1.name,
        {"churn-v1": 1.0},
        "capacity error",
    )
    port.update_endpoint(ENDPOINT, SHIFT.name)  # the next update clears the reason and lands
    observed = settle(port)
    assert (observed.config_name, observed.failure_reason) == (SHIFT.name, None)


def test_creating_what_exists_and_deleting_what_is_gone_are_no_ops(endpoints) -> None:
    port = endpoints.port
    serving_v1(port)
    settle(port)
    port.ensure_model(V1.model_resource_name, "image", "s3://b/k")
    port.ensure_config(ONLY_V1)

    port.delete_endpoint(ENDPOINT)
    assert port.describe(ENDPOINT) is None
    for _ in range(2):
        port.delete_endpoint(ENDPOINT)
        port.delete_config(SHIFT.name)
        port.delete_model(V2.model_resource_name)


@dataclass
class Alarms:
    port: Any
    set_state: Any  # (alarm name, state)


@pytest.fixture(params=["cloudwatch", "in-memory"])
def alarms(request, world) -> Alarms:
    if request.param == "in-memory":
        fake = InMemoryAlarms()
        return Alarms(fake, lambda name, state: fake.states.__setitem__(name, state))
    client = boto3.client("cloudwatch")

    def set_state(name: str, state: str) -> None:
        client.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")

    return Alarms(CloudWatchAlarms(client), set_state)


def test_rollout_alarms_exist_fire_and_go(alarms) -> None:
    port = alarms.port
    names = ("shepherd-churn-prod-r1-error-rate", "shepherd-churn-prod-r1-latency-p99")
    port.create_rollout_alarms(names, ENDPOINT, "churn-v2", Analysis(), ())

    assert port.existing((*names, "unknown")) == frozenset(names)
    assert set(port.alarm_states(names)) == set(names) and "ALARM" not in port.alarm_states(names).values()
    alarms.set_state(names[0], "ALARM")
    # One that does not exist is left out, never reported as OK.
    states = port.alarm_states((*names, "unknown"))
    assert set(states) == set(names) and states[names[0]] == "ALARM"
    # Not shared: putting an existing alarm again keeps its state in CloudWatch (the fake does so),
    # while moto 5.2.5 resets it to OK.

    port.delete_alarms(names)
    assert port.existing(names) == frozenset()


def test_ensuring_a_config_that_exists_with_other_counts_rewrites_it_before_an_update_uses_it(endpoints) -> None:
    """A pass wrote the shift config, its update failed, autoscaling grew the fleet: the next pass's
    config (same name, new counts) is what the update must land on (review finding 3)."""
    port = endpoints.port
    serving_v1(port)
    settle(port)
    grown = EndpointConfigSpec(
        SHIFT.name,
        (WeightedVariant(V1.model_copy(update={"initial_instance_count": 6}), 1.0), WeightedVariant(V2, 0.0)),
    )

    port.ensure_config(grown)
    port.update_endpoint(ENDPOINT, SHIFT.name)

    landed = settle(port)
    assert {v.name: v.current_instances for v in landed.variants} == {V1.variant_name: 6, V2.variant_name: 1}
