"""The cost ledger through the handlers on moto (issue 23, rule 5): what the end announcements carry,
what the rollout record keeps, and the stack's own price table (InstancePriceTable, an SSM parameter).

v1 serves on one ml.m5.large (the first deployment's default); v2, its candidate, runs the same.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import boto3
import pytest

from shepherd import bootstrap
from tests.handlers.conftest import load_handler
from tests.handlers.lifecycle import ENDPOINT, START, promote, promotion, registered_version, tick
from tests.handlers.test_rollback import rollback_command
from tests.iam.template_roles import PRICE_TABLE_PARAMETER

rollback = load_handler("rollback")

AT = START + timedelta(hours=1)
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 900}
BUILT_IN_TABLE = "Shepherd's built-in approximate table (us-east-1 on-demand, 2026-12-06)"


def stored_rollout(world, rollout_id: str) -> dict[str, Any]:
    item = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": f"ROLLOUT#{rollout_id}"}}
    )["Item"]
    return item


def ledger_hours(item: dict[str, Any]) -> float:
    """Instance-hours in the stored record's ledger (DynamoDB's own shape)."""
    usage = item["rollout"]["M"]["cost"]["M"]["usage"]["L"]
    return sum(float(entry["M"]["instance_seconds"]["N"]) for entry in usage) / 3600


def ticks(lambda_context, start, minutes: int) -> None:
    for minute in range(minutes):
        tick(lambda_context, start + timedelta(minutes=minute))


@pytest.fixture
def own_prices(request, world, monkeypatch) -> None:
    """The stack's InstancePriceTable set, its parameter holding `request.param` (None: never created).
    Set before the first deployment: a container reads the table once, at its first announced end."""
    if request.param is not None:
        boto3.client("ssm").put_parameter(Name=PRICE_TABLE_PARAMETER, Value=request.param, Type="String")
    monkeypatch.setenv("INSTANCE_PRICE_TABLE", PRICE_TABLE_PARAMETER)


def prices(table: str | None) -> Any:
    return pytest.mark.parametrize("own_prices", [table], indirect=True)


def test_a_completed_rollout_announces_its_ledger_so_far_then_closed(
    world, sagemaker, lambda_context, first_deployment
):
    # Given a canary of v2 beside v1 (10% for 10 min, then 100% watched for 15 min)
    v2 = registered_version(world, lambda_context, 2)
    assert promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)["result"] == "started"

    # When the controller runs it to the end
    ticks(lambda_context, AT, 40)

    # Then Rollout Completed carries the ledger so far: the candidate beside v1 through the canary
    [completed] = world.announcements("Rollout Completed")
    so_far = completed["cost"]
    assert so_far["final"] is False
    assert so_far["price_table"] == BUILT_IN_TABLE
    assert 10 / 60 <= so_far["extra_instance_hours"] <= 12 / 60
    assert so_far["extra_instance_hours_by_type"] == {"ml.m5.large": so_far["extra_instance_hours"]}
    assert so_far["estimated_cost_usd"] == round(so_far["extra_instance_hours"] * 0.115, 2)
    # And Model Version Retired (the end) the closed ledger: the watch window with v1 at weight 0 added,
    # as the rollout record keeps it
    [retired] = world.announcements("Model Version Retired")
    final = retired["cost"]
    assert final["final"] is True
    assert 25 / 60 <= final["extra_instance_hours"] <= 30 / 60
    assert final["extra_instance_hours_by_role"] == {"candidate": final["extra_instance_hours"], "live-held": 0.0}
    record = stored_rollout(world, completed["rollout_id"])
    assert record["rollout"]["M"]["cost"]["M"]["running"]["L"] == []
    assert final["extra_instance_hours"] == round(ledger_hours(record), 3)


@prices(json.dumps({"ml.c5.xlarge": 0.204}))
def test_a_rollback_announces_the_ledger_at_its_flip_and_the_end_closes_it(
    world, sagemaker, lambda_context, own_prices, first_deployment
):
    # Given the stack's own price table, which has no price for ml.m5.large
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    ticks(lambda_context, AT, 6)

    # When an operator rolls it back (the rollback function in a container of its own, as in Lambda: it
    # reads the table itself, after its flip)
    with bootstrap.wired(bootstrap.Container()):
        result = rollback.lambda_handler(rollback_command(AT + timedelta(minutes=6)), lambda_context)
    assert result["results"][0]["result"] == "rolled_back"

    # Then Rollout Rolled Back carries the ledger as of the flip, unpriced, naming the table
    [rolled_back] = world.announcements("Rollout Rolled Back")
    cost = rolled_back["cost"]
    assert cost["final"] is False
    assert 4 / 60 <= cost["extra_instance_hours"] <= 6 / 60
    assert "estimated_cost_usd" not in cost
    assert cost["unpriced_instance_types"] == ["ml.m5.large"]
    assert cost["price_table"] == f"SSM parameter {PRICE_TABLE_PARAMETER}"
    # And once the controller has removed the candidate, the record's ledger is closed at the end
    ticks(lambda_context, AT + timedelta(minutes=7), 5)
    record = stored_rollout(world, rolled_back["rollout_id"])["rollout"]["M"]
    assert record["phase"]["S"] == "ROLLED_BACK"
    assert record["cost"]["M"]["running"]["L"] == []
    assert record["cost"]["M"]["last_at"]["S"] == record["ended_at"]["S"]


@prices(json.dumps({"ml.m5.large": 1.0}))
def test_the_stacks_own_table_prices_the_estimate(world, sagemaker, lambda_context, own_prices, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)

    ticks(lambda_context, AT, 15)

    [completed] = world.announcements("Rollout Completed")
    cost = completed["cost"]
    assert cost["price_table"] == f"SSM parameter {PRICE_TABLE_PARAMETER}"
    assert cost["estimated_cost_usd"] == round(cost["extra_instance_hours"] * 1.0, 2)


@prices('{"ml.m5.large": "cheap"}')
def test_an_unusable_table_falls_back_to_the_built_in_one_and_says_so(
    world, sagemaker, lambda_context, own_prices, caplog, request
):
    # The adapter's own logger, handed caplog's handler: whether the log propagates to the root (where
    # caplog listens) depends on which logging set-up ran earlier in the same worker.
    adapter_log = logging.getLogger("shepherd.adapters.ssm_prices")
    adapter_log.addHandler(caplog.handler)
    request.addfinalizer(lambda: adapter_log.removeHandler(caplog.handler))
    with caplog.at_level(logging.WARNING, logger="shepherd.adapters.ssm_prices"):
        v1 = registered_version(world, lambda_context, 1)
        promote.lambda_handler(promotion(v1, {"type": "all_at_once"}), lambda_context)
        ticks(lambda_context, START, 5)
        v2 = registered_version(world, lambda_context, 2)
        promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
        ticks(lambda_context, AT, 15)

    *_, completed = world.announcements("Rollout Completed")
    cost = completed["cost"]
    assert cost["price_table"].startswith(BUILT_IN_TABLE)
    assert f"SSM parameter {PRICE_TABLE_PARAMETER} unusable" in cost["price_table"]
    assert cost["estimated_cost_usd"] == round(cost["extra_instance_hours"] * 0.115, 2)
    assert "price table unreadable" in caplog.text


@prices(None)  # named, never created
def test_a_missing_parameter_falls_back_too(world, sagemaker, lambda_context, own_prices, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)

    ticks(lambda_context, AT, 15)

    [completed] = world.announcements("Rollout Completed")
    assert "(ParameterNotFound)" in completed["cost"]["price_table"]
