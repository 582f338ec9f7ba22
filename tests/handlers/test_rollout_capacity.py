"""Capacity-aware rollouts (issue 23) through the handlers on moto and the emulator: Shepherd never shrinks
the live fleet autoscaling grew, and an autoscaled variant's scaling moves to the new live variant.

What is asserted is what an operator sees: each variant's instance counts in DescribeEndpoint after
every tick, the endpoint configs Shepherd wrote, and the Application Auto Scaling registrations.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.handlers.conftest import load_handler
from tests.handlers.lifecycle import ENDPOINT, START, promote, promotion, registered_version, run_controller, tick
from tests.handlers.test_rollback import rollback_command
from tests.integration import test_fault_injection as fault_injection
from tests.integration.test_fault_injection import SDK_ATTEMPTS
from tests.integration.test_rollout_failures import lock_holder

faults = fault_injection.faults  # faults injected on the handlers' own clients, as the network would

rollback = load_handler("rollback")

V1, V2 = "churn-predictor-v1", "churn-predictor-v2"
AT = START + timedelta(hours=1)
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 900}
LINEAR = {"type": "linear", "step_percent": 25, "interval_seconds": 120, "post_deploy_watch_seconds": 60}


def counts(sagemaker) -> dict[str, tuple[int, int]]:
    """Each variant's (current, desired) instance counts, as DescribeEndpoint reports them now."""
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    return {
        v["VariantName"]: (v["CurrentInstanceCount"], v["DesiredInstanceCount"])
        for v in described["ProductionVariants"]
    }


def settle(sagemaker) -> dict[str, tuple[int, int]]:
    for _ in range(5):
        if sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService":
            return counts(sagemaker)
    raise AssertionError("endpoint never settled")


def scale_live_to(sagemaker, count: int) -> None:
    """What an autoscaling activity does: set the variant's desired count (the emulator then settles it)."""
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": V1, "DesiredInstanceCount": count}]
    )
    assert settle(sagemaker)[V1] == (count, count)


def config_counts(sagemaker, config_name: str) -> dict[str, int]:
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    return {v["VariantName"]: v["InitialInstanceCount"] for v in config["ProductionVariants"]}


@pytest.fixture
def live_at_4(world, sagemaker, lambda_context) -> int:
    """v1 live, deployed by Shepherd with 2 instances in its config, since scaled out to 4."""
    v1 = registered_version(world, lambda_context, 1)
    first = promotion(v1, {"type": "all_at_once"}, initial_instance_count=2)
    assert promote.lambda_handler(first, lambda_context)["result"] == "started"
    run_controller(lambda_context, sagemaker, START, 5)
    assert settle(sagemaker) == {V1: (2, 2)}
    scale_live_to(sagemaker, 4)
    world.announcements()
    world.seen.clear()
    return v1


CONFIGS: dict[str, dict[str, int]] = {}  # every config the endpoint ran during a test: its variants' counts


def ticks_watching_live(lambda_context, sagemaker, start, minutes: int) -> list[tuple[int, int]]:
    """Tick once a minute; the live variant's counts after every tick (and every describe that settles)."""
    seen = []
    for minute in range(minutes):
        tick(lambda_context, start + timedelta(minutes=minute))
        for _ in range(2):  # the emulator settles a change on a describe: look at both sides of it
            now = counts(sagemaker)
            if V1 in now:
                seen.append(now[V1])
            config = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
            CONFIGS.setdefault(config, config_counts(sagemaker, config))
    return seen


@pytest.mark.parametrize("strategy", [CANARY, LINEAR], ids=["canary", "linear"])
def test_a_rollout_never_shrinks_the_live_fleet_autoscaling_grew(world, sagemaker, lambda_context, live_at_4, strategy):
    v2 = registered_version(world, lambda_context, 2)
    assert promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)["result"] == "started"

    CONFIGS.clear()
    seen = ticks_watching_live(lambda_context, sagemaker, AT, 40)

    assert seen and min(min(current, desired) for current, desired in seen) >= 4
    [completed] = world.announcements("Rollout Completed")
    # The shift config Shepherd wrote holds the live fleet as it was observed, not as first configured.
    assert CONFIGS[f"{ENDPOINT}-{completed['rollout_id']}-shift"] == {V1: 4, V2: 1}
    assert set(settle(sagemaker)) == {V2}


def test_a_rollback_restores_the_live_fleet_at_the_count_it_had(world, sagemaker, lambda_context, live_at_4):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    seen = ticks_watching_live(lambda_context, sagemaker, AT, 2)
    assert set(counts(sagemaker)) == {V1, V2}

    result = rollback.lambda_handler(rollback_command(AT + timedelta(minutes=2)), lambda_context)
    assert result["results"][0]["result"] == "rolled_back"
    seen += ticks_watching_live(lambda_context, sagemaker, AT + timedelta(minutes=3), 4)

    assert min(min(current, desired) for current, desired in seen) >= 4
    assert settle(sagemaker) == {V1: (4, 4)}
    assert world.announcements("Rollout Rolled Back")
    # The endpoint's baseline now names the config it runs, so the next rollout starts from it.
    endpoint = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "ENDPOINT"}}
    )["Item"]
    running = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    assert endpoint["live"]["M"]["config_name"]["S"] == running
    assert config_counts(sagemaker, running) == {V1: 4}


def test_an_endpoint_without_autoscaling_is_restored_to_its_own_config(world, sagemaker, lambda_context):
    v1 = registered_version(world, lambda_context, 1)
    promote.lambda_handler(promotion(v1, {"type": "all_at_once"}, initial_instance_count=2), lambda_context)
    run_controller(lambda_context, sagemaker, START, 5)
    first_config = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    ticks_watching_live(lambda_context, sagemaker, AT, 2)

    rollback.lambda_handler(rollback_command(AT + timedelta(minutes=2)), lambda_context)
    ticks_watching_live(lambda_context, sagemaker, AT + timedelta(minutes=3), 4)

    assert settle(sagemaker) == {V1: (2, 2)}
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == first_config


# --- auto scaling carried across ------------------------------------------------------------------------

RESOURCE = "endpoint/{endpoint}/variant/{variant}"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
TRACKING = {
    "TargetValue": 70.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    "ScaleInCooldown": 600,
    "ScaleOutCooldown": 60,
}


def resource(variant: str) -> str:
    return RESOURCE.format(endpoint=ENDPOINT, variant=variant)


def registration(variant: str) -> tuple[tuple[int, int] | None, list[tuple[str, float]]]:
    """The variant's (min, max) and its policies (name, target), as Application Auto Scaling reports them."""
    scaling = boto3.client("application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource(variant)])
    limits = [
        (t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"] if t["ResourceId"] == resource(variant)
    ]
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource(variant))
    named = [
        (p["PolicyName"], p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
        for p in policies["ScalingPolicies"]
        if p["ResourceId"] == resource(variant)
    ]
    return (limits[0] if limits else None), named


@pytest.fixture
def autoscaled_at_4(live_at_4) -> int:
    """v1 registered (min 2, max 8) with a target-tracking policy, running 4 instances."""
    scaling = boto3.client("application-autoscaling")
    names = {"ServiceNamespace": "sagemaker", "ResourceId": resource(V1), "ScalableDimension": DIMENSION}
    scaling.register_scalable_target(**names, MinCapacity=2, MaxCapacity=8)
    scaling.put_scaling_policy(
        PolicyName="invocations",
        PolicyType="TargetTrackingScaling",
        **names,
        TargetTrackingScalingPolicyConfiguration=TRACKING,
    )
    assert registration(V1) == ((2, 8), [("invocations", 70.0)])
    return live_at_4


@pytest.mark.parametrize("strategy", [CANARY, LINEAR], ids=["canary", "linear"])
def test_the_new_live_variant_takes_over_the_old_ones_scaling(
    world, sagemaker, lambda_context, autoscaled_at_4, strategy
):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)

    seen = ticks_watching_live(lambda_context, sagemaker, AT, 40)

    # The emulator refuses an update removing a registered variant, as SageMaker does: the retire went
    # through, so v1 was deregistered before it; v2 serves with v1's limits and policy.
    assert world.announcements("Rollout Completed") and set(settle(sagemaker)) == {V2}
    assert registration(V2) == ((2, 8), [("invocations", 70.0)])
    assert registration(V1) == (None, [])
    assert min(min(current, desired) for current, desired in seen) >= 4


def test_a_rollback_leaves_the_live_variant_registered_as_it_was(world, sagemaker, lambda_context, autoscaled_at_4):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    seen = ticks_watching_live(lambda_context, sagemaker, AT, 2)

    rollback.lambda_handler(rollback_command(AT + timedelta(minutes=2)), lambda_context)
    seen += ticks_watching_live(lambda_context, sagemaker, AT + timedelta(minutes=3), 4)

    assert settle(sagemaker) == {V1: (4, 4)} and min(min(c, d) for c, d in seen) >= 4
    assert registration(V1) == ((2, 8), [("invocations", 70.0)])
    assert registration(V2) == (None, [])


def test_a_refused_registration_fails_the_rollout_and_leaves_the_old_scaling(
    world, sagemaker, lambda_context, autoscaled_at_4, faults
):
    denied = (400, {"__type": "AccessDeniedException", "message": "not authorized to RegisterScalableTarget"})
    refused = faults("application-autoscaling", "RegisterScalableTarget", respond=lambda: denied, times=100)
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)

    seen = ticks_watching_live(lambda_context, sagemaker, AT, 40)

    assert refused.injected == 1  # a refusal is not asked again: the rollout fails and restores
    [failed] = world.announcements("Rollout Failed")
    assert failed["reason"].startswith("AccessDeniedException")
    assert settle(sagemaker) == {V1: (4, 4)} and min(min(c, d) for c, d in seen) >= 4
    assert registration(V1) == ((2, 8), [("invocations", 70.0)])
    assert registration(V2) == (None, [])


def test_throttled_scaling_reads_are_retried_by_the_next_pass(
    world, sagemaker, lambda_context, autoscaled_at_4, faults
):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    throttled = faults("application-autoscaling", "DescribeScalableTargets", times=SDK_ATTEMPTS)

    ticks_watching_live(lambda_context, sagemaker, AT, 40)

    assert throttled.injected == SDK_ATTEMPTS  # one pass failed, a later one carried the scaling over
    assert world.announcements("Rollout Completed") and world.announcements("Rollout Failed") == []
    assert registration(V2) == ((2, 8), [("invocations", 70.0)]) and registration(V1) == (None, [])


def test_the_candidate_is_sized_to_its_share_before_each_step(world, sagemaker, lambda_context, autoscaled_at_4):
    """No count in the promotion: the candidate runs ceil(4 x share x 1.2) instances (the full 4 at 100%),
    each count running before the weights that need it move."""
    v2 = registered_version(world, lambda_context, 2)
    sized = promotion(v2, LINEAR, at=AT, initial_instance_count=None)
    assert promote.lambda_handler(sized, lambda_context)["result"] == "started"

    running: list[tuple[float, int]] = []  # (candidate's weight share, its current count) after each tick
    for minute in range(40):
        tick(lambda_context, AT + timedelta(minutes=minute))
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
        weights = {v["VariantName"]: v["CurrentWeight"] for v in described}
        if V2 in weights and V1 in weights:
            share = weights[V2] / sum(weights.values())
            running.append((share, next(v["CurrentInstanceCount"] for v in described if v["VariantName"] == V2)))

    shares = sorted({round(share * 100) for share, _ in running})
    assert shares == [0, 25, 50, 75, 100]
    for share, count in running:
        wanted = 4 if share >= 1 else max(1, math.ceil(4 * share * 1.2 - 1e-9))
        assert count >= wanted, (share, count)
    assert min(count for share, count in running if round(share * 100) == 25) == 2  # not the full fleet
    assert world.announcements("Rollout Completed")
    assert settle(sagemaker) == {V2: (4, 4)}


# --- a promotion's own limits for the new live variant ----------------------------------------------------


def stored_rollout(world, rollout_id: str) -> dict[str, Any]:
    key = {"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": f"ROLLOUT#{rollout_id}"}}
    return dict(world.dynamodb.get_item(TableName=world.table, Key=key, ConsistentRead=True)["Item"]["rollout"]["M"])


def test_a_promotions_scaling_limits_on_an_autoscaled_endpoint_are_recorded(
    world, sagemaker, lambda_context, autoscaled_at_4
):
    v2 = registered_version(world, lambda_context, 2)

    answer = promote.lambda_handler(promotion(v2, CANARY, at=AT, min_capacity=3, max_capacity=10), lambda_context)

    assert answer["result"] == "started"
    record = stored_rollout(world, answer["rollout_id"])
    assert record["scaling_limits"] == {"M": {"min_capacity": {"N": "3"}, "max_capacity": {"N": "10"}}}
    assert "sizing" not in record  # the promotion named the count (initial_instance_count 1): it wins
    assert world.announcements("Promotion Rejected") == []


def test_scaling_limits_for_an_endpoint_without_autoscaling_are_refused(world, sagemaker, lambda_context, live_at_4):
    v2 = registered_version(world, lambda_context, 2)

    answer = promote.lambda_handler(promotion(v2, CANARY, at=AT, min_capacity=2, max_capacity=8), lambda_context)

    assert answer["result"] == "rejected"
    assert f"{V1} is not registered with Application Auto Scaling" in answer["reason"]
    [rejected] = world.announcements("Promotion Rejected")
    assert (rejected["rollout_id"], rejected["reason"]) == (answer["rollout_id"], answer["reason"])
    assert lock_holder(world) is None
    assert set(settle(sagemaker)) == {V1}


def test_a_rollback_redeploying_onto_an_autoscaled_endpoint_hands_its_scaling_back(
    world, sagemaker, lambda_context, autoscaled_at_4
):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, LINEAR, at=AT), lambda_context)
    ticks_watching_live(lambda_context, sagemaker, AT, 40)
    assert registration(V2) == ((2, 8), [("invocations", 70.0)])

    later = AT + timedelta(hours=1)
    result = rollback.lambda_handler(rollback_command(later, to_version=1), lambda_context)

    # The redeploy is a promotion: it read v2's registration and policies, which v1 takes over again.
    assert result["results"][0]["result"] == "redeploying"
    for minute in range(20):
        tick(lambda_context, later + timedelta(minutes=minute))
    assert set(settle(sagemaker)) == {V1}
    assert registration(V1) == ((2, 8), [("invocations", 70.0)]) and registration(V2) == (None, [])


# --- the hand-over in every path of a rollout ----------------------------------------------------------


def rollout_item(world) -> dict:
    items = world.dynamodb.query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
        ExpressionAttributeValues={":pk": {"S": f"ENDPOINT#{ENDPOINT}"}, ":sk": {"S": "ROLLOUT#"}},
    )["Items"]
    return max(items, key=lambda item: item["sk"]["S"])


def with_limits(world, low: int, high: int) -> None:
    """The promotion's min/max override, as the promotion records it on the rollout."""
    item = rollout_item(world)
    world.dynamodb.update_item(
        TableName=world.table,
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET #r.scaling_limits = :limits",
        ExpressionAttributeNames={"#r": "rollout"},
        ExpressionAttributeValues={
            ":limits": {"M": {"min_capacity": {"N": str(low)}, "max_capacity": {"N": str(high)}}}
        },
    )


def tick_until(lambda_context, world, start, phase: str, minutes: int = 40):
    """Tick once a minute until the rollout is in ``phase``; the next minute."""
    for minute in range(minutes):
        tick(lambda_context, start + timedelta(minutes=minute))
        if rollout_item(world)["phase"]["S"] == phase:
            return start + timedelta(minutes=minute + 1)
    raise AssertionError(f"the rollout never reached {phase}")


def test_the_promotions_limits_go_to_the_new_live_variant(world, sagemaker, lambda_context, autoscaled_at_4):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    with_limits(world, 3, 10)

    ticks_watching_live(lambda_context, sagemaker, AT, 40)

    assert world.announcements("Rollout Completed") and set(settle(sagemaker)) == {V2}
    assert registration(V2) == ((3, 10), [("invocations", 70.0)])
    assert registration(V1) == (None, [])


def test_a_retire_refused_after_the_hand_over_gives_the_old_variant_its_own_limits_back(
    world, sagemaker, lambda_context, autoscaled_at_4, faults
):
    denied = (400, {"__type": "ValidationException", "message": "the final config is refused"})
    faults("sagemaker", "UpdateEndpoint", respond=lambda: denied, holding="-final", times=100)
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    with_limits(world, 3, 10)

    seen = ticks_watching_live(lambda_context, sagemaker, AT, 40)

    # The scaling went to v2 (with the override) before the refused update; the restore gives v1 its
    # own limits back, not the override, and leaves nothing on v2, which it removes.
    [failed] = world.announcements("Rollout Failed")
    assert failed["reason"].startswith("ValidationException")
    assert settle(sagemaker) == {V1: (4, 4)} and min(min(c, d) for c, d in seen) >= 4
    assert registration(V1) == ((2, 8), [("invocations", 70.0)])
    assert registration(V2) == (None, [])


def test_a_rollback_racing_the_retire_restores_the_old_variant_promptly_with_its_own_scaling(
    world, sagemaker, lambda_context, autoscaled_at_4, faults
):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    with_limits(world, 3, 10)
    # The rollback lands between the retire's UpdateEndpoint and the record saying so: the rollout
    # aborts with the endpoint going to the final config, where v1 is no longer on the endpoint.
    # The retire's first attempt is throttled (the SDK's retry makes it): that marks the moment.
    retire = faults("sagemaker", "UpdateEndpoint", holding="-final")
    answers: list = []

    def rollback_now() -> None:
        if not answers:  # once: the rollback's own commit passes this hook too
            answers.append(None)
            at = datetime.fromisoformat(rollout_item(world)["rollout"]["M"]["updated_at"]["S"])  # the retire's tick
            answers.append(rollback.lambda_handler(rollback_command(at), lambda_context))

    faults("dynamodb", "TransactWriteItems", armed=lambda: retire.injected > 0, on_first=rollback_now)

    ticks_watching_live(lambda_context, sagemaker, AT, 40)

    assert retire.injected and answers, "the retire was never raced"
    # Promptly (minutes, not the hour's deadline): v1 serves again with its own limits, not the override.
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert "gave up" not in rolled_back["reason"]
    assert set(settle(sagemaker)) == {V1}
    assert registration(V1) == ((2, 8), [("invocations", 70.0)])
    assert registration(V2) == (None, [])


def test_a_config_left_by_a_refused_update_is_rewritten_with_the_counts_observed_now(
    world, sagemaker, lambda_context, autoscaled_at_4, faults
):
    """Review finding 3: the first pass writes the shift config with the live fleet at 4, then its
    UpdateEndpoint meets an autoscaling activity ("in progress"). Autoscaling then takes the fleet to 6.
    The next pass must not update onto the stale config: the live fleet never drops below 6."""
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    busy = faults(
        "sagemaker",
        "UpdateEndpoint",
        times=1,
        respond=lambda: (400, {"__type": "ValidationException", "message": "Cannot update in-progress endpoint"}),
    )
    tick(lambda_context, AT)
    assert busy.injected == 1
    shift = f"{ENDPOINT}-{stored_rollout_id(world)}-shift"
    assert config_counts(sagemaker, shift)[V1] == 4
    scale_live_to(sagemaker, 6)

    seen = ticks_watching_live(lambda_context, sagemaker, AT + timedelta(minutes=1), 6)

    assert min(min(current, desired) for current, desired in seen) >= 6
    assert config_counts(sagemaker, sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"])[V1] == 6


def stored_rollout_id(world) -> str:
    [started] = world.announcements("Rollout Started")
    return str(started["rollout_id"])
