"""Each function announces only detail-types its role may put (issue 20), recorded through the handlers.

The template lets each function role put only its own announcements (`events:detail-type`, checked
in tests/unit/test_template_account_roles.py). moto enforces no policy, so a new announcement would
pass every other test and be denied in AWS: here every PutEvents entry the handlers make, on the
main paths of each function, is judged against the role's policy as template.yaml writes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.handlers.conftest import sample_event
from tests.handlers.lifecycle import (
    approve,
    controller,
    promote,
    promotion,
    register,
    registered_version,
    settled_weights,
    tick,
)
from tests.handlers.test_register_version import eventbridge_upload
from tests.handlers.test_rollback import AT, rollback, rollback_command
from tests.policy import Deployment, arn_of, identity_allows, put_events
from tests.unit.test_template_security import ROOT, function_statements

TEMPLATE: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
BUS = arn_of("ShepherdBus", "Arn")


class Recorder:
    """The (source, detail-type) of every entry put while `function` runs."""

    def __init__(self) -> None:
        self.function = ""
        self.put: dict[str, set[tuple[str, str]]] = {}

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        entries = self.put.setdefault(self.function, set())
        entries.update((entry["Source"], entry["DetailType"]) for entry in params["Entries"])


@pytest.fixture
def recorder(world) -> Iterator[Recorder]:
    # On moto's default session, before the handlers build their clients.
    recorder = Recorder()
    events = boto3._get_default_session().events
    events.register("provide-client-params.events.PutEvents", recorder)
    yield recorder
    events.unregister("provide-client-params.events.PutEvents", recorder)


def may_put(function: str, source: str, detail_type: str) -> bool:
    statements = Deployment(TEMPLATE, {}).resolve(function_statements(TEMPLATE, function))
    return identity_allows(put_events(arn_of(f"{function}Role", "Arn"), BUS, (source, detail_type)), statements)


def malformed(name: str) -> dict[str, Any]:
    command = sample_event(name)
    command["detail"] = {"nonsense": True}
    return command


def test_every_announcement_a_function_makes_is_one_its_role_may_put(
    recorder, world, sagemaker, lambda_context, first_deployment
):
    recorder.function = "RegisterVersionFunction"  # registered, ignored, rejected
    v2 = registered_version(world, lambda_context, 2, approve_it=False)
    register.lambda_handler(eventbridge_upload(world, key="notes/readme.txt"), lambda_context)
    register.lambda_handler(
        eventbridge_upload(world, key="models/churn-predictor/x/model.tar.gz", body=b"no"), lambda_context
    )
    recorder.function = "DecideApprovalFunction"  # approved, refused, malformed
    command = sample_event("model-version-approval-requested.json")
    command["detail"]["version"] = v2
    assert approve.lambda_handler(command, lambda_context)["result"] == "approved"
    command["id"] = "another-approval"
    assert approve.lambda_handler(command, lambda_context)["result"] == "refused"
    approve.lambda_handler(malformed("model-version-approval-requested.json"), lambda_context)
    recorder.function = "StartRolloutFunction"  # started, rejected, malformed
    strategy = {"type": "all_at_once", "post_deploy_watch_seconds": 0}
    assert promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)["result"] == "started"
    assert promote.lambda_handler(promotion(99, strategy, at=AT), lambda_context)["result"] == "rejected"
    promote.lambda_handler({**promotion(v2, strategy), "detail": {"nonsense": True}}, lambda_context)
    recorder.function = "RolloutControllerFunction"  # the rollout's announcements, a refused resume
    for minute in range(6):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v2": 1.0}
    controller.lambda_handler(sample_event("model-rollout-resume-requested.json"), lambda_context)
    recorder.function = "RollbackFunction"  # a redeploy (a rollout started), a refused one
    assert rollback.lambda_handler(rollback_command(AT + timedelta(minutes=10)), lambda_context)["results"]
    assert rollback.lambda_handler(rollback_command(AT + timedelta(minutes=11), to_version=99), lambda_context)

    recorder.put.pop("", None)  # the fixtures' set-up
    assert set(recorder.put) == {
        "RegisterVersionFunction",
        "DecideApprovalFunction",
        "StartRolloutFunction",
        "RolloutControllerFunction",
        "RollbackFunction",
    }
    seen = {detail_type for entries in recorder.put.values() for _, detail_type in entries}
    assert {"Model Artifact Ignored", "Command Refused", "Rollout Resume Refused", "Rollback Skipped"} <= seen
    for function, entries in recorder.put.items():
        denied = sorted(entry for entry in entries if not may_put(function, *entry))
        assert not denied, f"{function} announces what its role may not put: {denied}"


def test_the_recorder_sees_a_denial():
    # The judge must be able to say no: the registration's role may not announce a rollout.
    assert may_put("RegisterVersionFunction", "shepherd", "Model Version Registered")
    assert not may_put("RegisterVersionFunction", "shepherd", "Rollout Started")
    assert not may_put("RollbackFunction", "shepherd", "Model Version Approved")
