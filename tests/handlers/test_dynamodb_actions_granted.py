"""The DynamoDB actions each function really uses are the ones it is granted.

Recorded from the functions' calls on moto through their handlers, with each TransactWriteItems
counted as the actions of its items (IAM authorises a transaction item by item: a Put needs
dynamodb:PutItem, a ConditionCheck dynamodb:ConditionCheckItem). moto enforces no policy, so without
this a new kind of transaction item passes every other test and is denied in AWS.
`tests/unit/test_template_security.py` holds template.yaml to FUNCTION_ACTIONS exactly; this holds
FUNCTION_ACTIONS to the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from tests.handlers.conftest import sample_event
from tests.handlers.lifecycle import approve, promote, promotion, registered_version, settled_weights, tick
from tests.handlers.test_rollback import AT, rollback, rollback_command
from tests.unit.test_template_security import FUNCTION_ACTIONS

ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class Recorder:
    """The IAM actions of the DynamoDB calls made while `using` a function."""

    def __init__(self) -> None:
        self.function = ""
        self.used: dict[str, set[str]] = {}

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        actions = self.used.setdefault(self.function, set())
        if model.name == "TransactWriteItems":
            actions.update(f"dynamodb:{ITEM_ACTIONS[kind]}" for item in params["TransactItems"] for kind in item)
        else:
            actions.add(f"dynamodb:{model.name}")


@pytest.fixture
def recorder(world) -> Iterator[Recorder]:
    # On moto's default session (mock_aws makes a new one), before the handlers build their clients.
    recorder = Recorder()
    events = boto3._get_default_session().events
    events.register("provide-client-params.dynamodb.*", recorder)
    yield recorder
    events.unregister("provide-client-params.dynamodb.*", recorder)


def test_the_functions_use_only_dynamodb_actions_they_are_granted(
    recorder, world, sagemaker, lambda_context, first_deployment
):
    recorder.function = "RegisterVersionFunction"
    v2 = registered_version(world, lambda_context, 2, approve_it=False)
    recorder.function = "DecideApprovalFunction"
    command = sample_event("model-version-approval-requested.json")
    command["detail"]["version"] = v2
    assert approve.lambda_handler(command, lambda_context)["result"] == "approved"
    recorder.function = "StartRolloutFunction"  # a start over a baseline (first_deployment: over none)
    assert (
        promote.lambda_handler(
            promotion(v2, {"type": "all_at_once", "post_deploy_watch_seconds": 0}, at=AT), lambda_context
        )["result"]
        == "started"
    )
    recorder.function = "RolloutControllerFunction"
    for minute in range(6):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v2": 1.0}
    recorder.function = "RollbackFunction"  # no rollout to flip back: a redeploy, which starts one
    command = rollback_command(AT + timedelta(minutes=10))
    assert rollback.lambda_handler(command, lambda_context)["results"][0]["result"] == "redeploying"

    recorder.used.pop("", None)  # the fixtures' set-up (registration, approval, v1's first deployment)
    assert set(recorder.used) == set(FUNCTION_ACTIONS)  # every function's calls seen
    assert "dynamodb:ConditionCheckItem" in recorder.used["StartRolloutFunction"]  # the recorder sees items
    for function, used in recorder.used.items():
        assert used <= FUNCTION_ACTIONS[function], f"{function} uses {sorted(used - FUNCTION_ACTIONS[function])}"
