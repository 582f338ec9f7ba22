"""The lifecycle as a user drives it, through the handlers: upload, approve, promote, tick, observe."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.handlers.conftest import load_handler, sample_event
from tests.handlers.test_register_version import eventbridge_upload

register = load_handler("register_version")
approve = load_handler("decide_approval")
promote = load_handler("start_rollout")
controller = load_handler("rollout_controller")

ENDPOINT = "churn-prod"
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def registered_version(world, lambda_context, number: int, approve_it: bool = True) -> int:
    key = f"models/churn-predictor/run-{number}/model.tar.gz"
    result = register.lambda_handler(eventbridge_upload(world, key=key), lambda_context)["results"][0]
    if approve_it:
        command = sample_event("model-version-approval-requested.json")
        command["id"] = str(uuid.uuid4())
        command["detail"]["version"] = result["version"]
        assert approve.lambda_handler(command, lambda_context)["result"] == "approved"
    return int(result["version"])


def promotion(version: Any, strategy: dict[str, Any], at: datetime = START, **detail: Any) -> dict[str, Any]:
    """A promotion command. The canary judge is off unless the strategy configures ``analysis``:
    these tests are about steps, alarms and failures; the judge's path is test_rollout_analysis.py."""
    if "analysis" not in strategy and strategy.get("type") != "all_at_once":
        strategy = {**strategy, "analysis": {"judge": {"enabled": False}}}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Model Promotion Requested",
        "source": "acme.ml-platform",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "model_name": "churn-predictor",
            "version": version,
            "endpoint_name": ENDPOINT,
            "strategy": strategy,
            "instance_type": "ml.m5.large",
            "initial_instance_count": 1,
            "requested_by": "alice@example.com",
            "reason": "better AUC",
            **detail,
        },
    }


def tick(lambda_context, at: datetime) -> dict[str, Any]:
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/shepherd-dev-every-minute"],
        "detail": {},
    }
    return dict(controller.lambda_handler(event, lambda_context))


def weights(sagemaker) -> dict[str, float]:
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    return {variant["VariantName"]: variant["CurrentWeight"] for variant in described["ProductionVariants"]}


def settled_weights(sagemaker) -> dict[str, float]:
    """Describe until InService (the emulator settles after one describe), then the weights."""
    for _ in range(5):
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        if described["EndpointStatus"] == "InService":
            return {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    raise AssertionError("endpoint never settled")


def endpoint_state(sagemaker) -> dict[str, Any]:
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    described.pop("ResponseMetadata")
    return dict(described)


def status(world, version: int) -> str:
    key = {"pk": {"S": "MODEL#churn-predictor"}, "sk": {"S": f"VERSION#{version:010d}"}}
    return str(world.dynamodb.get_item(TableName=world.table, Key=key)["Item"]["status"]["S"])


def run_controller(lambda_context, sagemaker, start: datetime, minutes: int) -> list[dict[str, float]]:
    """Tick once a minute; collect each distinct settled weight map, in order."""
    seen: list[dict[str, float]] = []
    for minute in range(minutes):
        tick(lambda_context, start + timedelta(minutes=minute))
        if sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService":
            current = weights(sagemaker)
            if not seen or seen[-1] != current:
                seen.append(current)
    return seen
