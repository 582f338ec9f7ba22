"""A rollout that SageMaker refuses, or that keeps failing, ends on its own; the others move on.

Through the handlers on moto, faults injected as the network would produce them (see
test_fault_injection.py). What is asserted is what a user sees: endpoint weights, configs and models,
version statuses, the endpoint lock and the announcements.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from tests.handlers.conftest import sample_event
from tests.handlers.lifecycle import ENDPOINT, START, approve, promote, promotion, register, status, tick
from tests.handlers.test_register_version import eventbridge_upload
from tests.integration import test_fault_injection as fault_injection
from tests.integration.test_fault_injection import AT, CANARY, SDK_ATTEMPTS, V1, V2, rollout_record

lambda_context = fault_injection.lambda_context
sagemaker = fault_injection.sagemaker
first_deployment = fault_injection.first_deployment
faults = fault_injection.faults
candidate_joined = fault_injection.candidate_joined

WEST = "churn-west"  # processed after churn-prod in a tick (the active index is in endpoint order)
QUOTA = (
    400,
    {
        "__type": "ResourceLimitExceeded",
        "message": "The account-level service limit 'ml.m5.large for endpoint usage' is 2 Instances",
    },
)
DENIED = (400, {"__type": "AccessDeniedException", "message": "not authorized to perform sagemaker:UpdateEndpoint"})


def approved(world, lambda_context, model: str, run: int) -> int:
    key = f"models/{model}/run-{run}/model.tar.gz"
    version = int(register.lambda_handler(eventbridge_upload(world, key=key), lambda_context)["results"][0]["version"])
    command = sample_event("model-version-approval-requested.json")
    command["id"] = str(uuid.uuid4())
    command["detail"].update(model_name=model, version=version)
    assert approve.lambda_handler(command, lambda_context)["result"] == "approved"
    return version


def settled(sagemaker, endpoint: str) -> dict[str, float]:
    for _ in range(5):
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] == "InService":
            return {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    raise AssertionError(f"{endpoint} never settled")


def status_of(world, model: str, version: int) -> str:
    key = {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"VERSION#{version:010d}"}}
    return str(world.dynamodb.get_item(TableName=world.table, Key=key)["Item"]["status"]["S"])


def lock_holder(world, endpoint: str = ENDPOINT) -> str | None:
    key = {"pk": {"S": f"ENDPOINT#{endpoint}"}, "sk": {"S": "LOCK"}}
    item = world.dynamodb.get_item(TableName=world.table, Key=key, ConsistentRead=True).get("Item")
    return item["rollout_id"]["S"] if item else None


def failed_on(world, endpoint: str) -> list[dict[str, Any]]:
    return [failed for failed in world.announcements("Rollout Failed") if failed["endpoint_name"] == endpoint]


def test_a_change_sagemaker_refuses_fails_that_rollout_alone_and_the_others_move_on(
    world, sagemaker, lambda_context, faults, first_deployment
):
    # Given: two endpoints, each with a 10% canary starting (churn-prod is ticked first).
    fraud_v1 = approved(world, lambda_context, "fraud-model", 1)
    first = promotion(fraud_v1, {"type": "all_at_once"}, at=START, model_name="fraud-model", endpoint_name=WEST)
    assert promote.lambda_handler(first, lambda_context)["result"] == "started"
    for minute in range(3):
        tick(lambda_context, START + timedelta(minutes=minute))
    assert settled(sagemaker, WEST) == {"fraud-model-v1": 1.0}
    churn_v2 = approved(world, lambda_context, "churn-predictor", 2)
    fraud_v2 = approved(world, lambda_context, "fraud-model", 2)
    promote.lambda_handler(promotion(churn_v2, CANARY, at=AT), lambda_context)
    promote.lambda_handler(
        promotion(fraud_v2, CANARY, at=AT, model_name="fraud-model", endpoint_name=WEST), lambda_context
    )
    # When: SageMaker refuses every traffic shift on churn-prod for good (an account quota).
    refused = faults(
        "sagemaker", "UpdateEndpointWeightsAndCapacities", respond=lambda: QUOTA, times=100, about=ENDPOINT
    )

    responses = [tick(lambda_context, AT + timedelta(minutes=minute)) for minute in range(12)]

    # Then: churn-prod's rollout failed with SageMaker's reason, its endpoint as before, its lock free...
    assert refused.injected == 1  # asked once: a refusal is not retried
    assert settled(sagemaker, ENDPOINT) == {V1: 1.0}
    assert (status(world, churn_v2), status(world, first_deployment)) == ("FAILED", "LIVE")
    [failed] = failed_on(world, ENDPOINT)
    assert failed["reason"].startswith("ResourceLimitExceeded: The account-level service limit")
    assert lock_holder(world) is None
    # ...while churn-west's canary went on through the same ticks: 10%, bake, 100%, watch, retired.
    assert settled(sagemaker, WEST) == {"fraud-model-v2": 1.0}
    assert status_of(world, "fraud-model", fraud_v2) == "LIVE"
    assert failed_on(world, WEST) == []
    assert all(response["errors"] == 0 for response in responses)  # handled, not an error


def test_retryable_failures_that_never_end_fail_the_rollout_at_its_deadline(
    world, sagemaker, lambda_context, faults, candidate_joined, capsys
):
    # Every traffic shift on churn-prod is throttled, beyond the SDK's retries, for as long as it takes.
    throttled = faults("sagemaker", "UpdateEndpointWeightsAndCapacities", times=10**6)
    capsys.readouterr()

    early = [tick(lambda_context, AT + timedelta(minutes=minute)) for minute in (1, 2, 30)]
    assert [response["errors"] for response in early] == [1, 1, 1]  # retried, reported each time
    # ...and counted in the metric an operator alarms on (CloudWatch embedded metric format on stdout).
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"RolloutErrors"' in line]
    assert [metrics["RolloutErrors"] for metrics in emitted] == [[1.0], [1.0], [1.0]]
    assert lock_holder(world) is not None and status(world, candidate_joined) == "DEPLOYING"
    assert throttled.passed == 0 and settled(sagemaker, ENDPOINT) == {V1: 1.0, V2: 0.0}

    # An hour (the update deadline) after the first failure, the rollout gives up and restores.
    for minute in (61, 62, 63, 64):
        tick(lambda_context, AT + timedelta(minutes=minute))

    assert settled(sagemaker, ENDPOINT) == {V1: 1.0}
    assert status(world, candidate_joined) == "FAILED"
    [failed] = failed_on(world, ENDPOINT)
    assert failed["reason"].startswith("still failing after 3600 s: ThrottlingException")
    assert lock_holder(world) is None


def test_a_restore_sagemaker_refuses_keeps_what_the_endpoint_runs_and_the_next_promotion_takes_over(
    world, sagemaker, lambda_context, faults, candidate_joined
):
    # The shift to 10% is refused (quota), then so is the restore's UpdateEndpoint (permissions).
    outage = [True]
    faults("sagemaker", "UpdateEndpointWeightsAndCapacities", respond=lambda: QUOTA, times=100, armed=lambda: outage[0])
    faults("sagemaker", "UpdateEndpoint", respond=lambda: DENIED, times=100, armed=lambda: outage[0])
    shift_config = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]

    tick(lambda_context, AT + timedelta(minutes=1))

    # The rollout ended (announced, lock released), saying why it could not put the endpoint back.
    [failed] = failed_on(world, ENDPOINT)
    assert failed["reason"] == (
        "ResourceLimitExceeded: The account-level service limit 'ml.m5.large for endpoint usage' is 2 Instances; "
        "could not restore the endpoint: AccessDeniedException: not authorized to perform sagemaker:UpdateEndpoint"
    )
    assert rollout_record(world)["phase"] == {"S": "FAILED"} and lock_holder(world) is None
    # The endpoint still runs the shift config with both variants: clean-up deleted neither it nor v2's model.
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == shift_config
    running = sagemaker.describe_endpoint_config(EndpointConfigName=shift_config)["ProductionVariants"]
    for variant in running:
        sagemaker.describe_model(ModelName=variant["ModelName"])  # raises if deleted
    assert settled(sagemaker, ENDPOINT) == {V1: 1.0, V2: 0.0}

    # Once SageMaker accepts again, the next promotion starts from there (not "changed outside").
    outage[0] = False
    v3 = approved(world, lambda_context, "churn-predictor", 3)
    later = AT + timedelta(minutes=5)
    promote.lambda_handler(
        promotion(v3, {"type": "all_at_once", "post_deploy_watch_seconds": 0}, at=later), lambda_context
    )
    for minute in range(6):
        tick(lambda_context, later + timedelta(minutes=minute))
    assert settled(sagemaker, ENDPOINT) == {"churn-predictor-v3": 1.0}
    assert status(world, v3) == "LIVE"


def test_announcements_a_finished_rollout_owes_are_published_by_a_later_tick(
    world, sagemaker, lambda_context, faults, candidate_joined
):
    # The canary runs until it is retiring the old variant (the step whose commit ends the rollout).
    minute = 1
    while rollout_record(world)["phase"]["S"] != "RETIRING":
        tick(lambda_context, AT + timedelta(minutes=minute))
        minute += 1
    # PutEvents fails after the terminal commit: "Model Version Retired" stays in the outbox.
    faults("events", "PutEvents", kind="5xx", times=SDK_ATTEMPTS)
    assert tick(lambda_context, AT + timedelta(minutes=minute))["errors"] == 1
    assert rollout_record(world)["phase"] == {"S": "COMPLETED"}
    assert world.announcements("Model Version Retired") == []

    tick(lambda_context, AT + timedelta(minutes=minute + 1))  # no active rollout left on any endpoint

    [retired] = world.announcements("Model Version Retired")
    assert (retired["version"], retired["endpoint_name"]) == (1, ENDPOINT)
    tick(lambda_context, AT + timedelta(minutes=minute + 2))
    assert len(world.announcements("Model Version Retired")) == 1  # published once, then forgotten


def test_a_clean_up_that_fails_half_way_is_finished_by_a_later_tick(
    world, sagemaker, lambda_context, faults, candidate_joined
):
    minute = 1
    while rollout_record(world)["phase"]["S"] != "RETIRING":
        tick(lambda_context, AT + timedelta(minutes=minute))
        minute += 1
    final_config = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    faults("sagemaker", "DeleteEndpointConfig", kind="5xx", times=SDK_ATTEMPTS)

    assert tick(lambda_context, AT + timedelta(minutes=minute))["errors"] == 1
    assert rollout_record(world)["phase"] == {"S": "COMPLETED"}
    left_over = {config["EndpointConfigName"] for config in sagemaker.list_endpoint_configs()["EndpointConfigs"]}
    assert len(left_over) > 1  # the previous and shift configs are still there

    tick(lambda_context, AT + timedelta(minutes=minute + 1))

    configs = [config["EndpointConfigName"] for config in sagemaker.list_endpoint_configs()["EndpointConfigs"]]
    final = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    assert configs == [final_config] == [final]  # what the endpoint runs, and nothing else
    models = [model["ModelName"] for model in sagemaker.list_models()["Models"]]
    assert [name.rsplit("-", 1)[-1] for name in models] == ["v2"]  # v1's model went with its variant
