"""The approval function, fed the command as EventBridge delivers it."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from tests.handlers.conftest import load_handler, sample_event
from tests.handlers.test_register_version import eventbridge_upload

register = load_handler("register_version")
handler = load_handler("decide_approval")


@pytest.fixture
def registered(world, lambda_context):
    register.lambda_handler(eventbridge_upload(world), lambda_context)
    world.announcements()  # drain the registration's announcement
    return world


def version_status(world, version: int = 1) -> str:
    key = {"pk": {"S": "MODEL#churn-predictor"}, "sk": {"S": f"VERSION#{version:010d}"}}
    return str(world.dynamodb.get_item(TableName=world.table, Key=key)["Item"]["status"]["S"])


def test_an_approval_approves_and_announces(registered, lambda_context):
    command = sample_event("model-version-approval-requested.json")
    response = handler.lambda_handler(command, lambda_context)

    assert response["result"] == "approved"
    assert version_status(registered) == "APPROVED"
    [approved] = registered.announcements("Model Version Approved")
    copy = approved.pop("approved_checksum"), approved.pop("approved_s3_version_id")
    assert approved == {
        "model_name": "churn-predictor",
        "version": 1,
        "requested_by": "alice@example.com",
        "reason": "offline AUC 0.91 beats the baseline",
        "command_id": command["id"],  # the answer names the command it answers
        # what SageMaker will serve: the approved copy (tests/handlers/test_approved_artifacts.py)
        "approved_artifact_uri": "s3://acme-model-artifacts/approved/churn-predictor/1/model.tar.gz",
    }
    assert copy[0]["algorithm"] == "SHA256" and copy[1]


def test_a_second_decision_is_refused_and_announced(registered, lambda_context):
    handler.lambda_handler(sample_event("model-version-approval-requested.json"), lambda_context)
    second = sample_event("model-version-approval-requested.json")
    second["id"] = "another-command"
    second["detail"]["decision"] = "rejected"

    assert handler.lambda_handler(second, lambda_context)["result"] == "refused"

    assert version_status(registered) == "APPROVED"
    [refused] = registered.announcements("Model Version Approval Refused")
    assert refused["current_status"] == "APPROVED" and "only a REGISTERED version" in refused["reason"]


def test_a_redelivered_command_is_not_refused(registered, lambda_context):
    event = sample_event("model-version-approval-requested.json")
    results = [handler.lambda_handler(copy.deepcopy(event), lambda_context)["result"] for _ in range(2)]
    assert results == ["approved", "duplicate"]
    assert registered.announcements("Model Version Approval Refused") == []


def test_approving_an_unknown_version_is_refused(registered, lambda_context):
    event = sample_event("model-version-approval-requested.json")
    event["detail"]["version"] = 42
    assert handler.lambda_handler(event, lambda_context)["result"] == "refused"
    [refused] = registered.announcements("Model Version Approval Refused")
    assert refused["reason"] == "churn-predictor has no version 42"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"decision": "maybe"}, "detail.decision"),
        ({"model_name": "bad_name"}, "detail.model_name"),
        ({"version": 0}, "detail.version"),
        ({"unexpected": 1}, "detail.unexpected"),
        ({"reason": ""}, "detail.reason"),
        # free text with terminal controls or a bidi override is refused, not stored and shown
        ({"reason": "ok\x1b]52;c;cm0gLXJmIH4=\x07"}, "detail.reason"),
        ({"reason": "fine\r\nModel Version Approved by root"}, "detail.reason"),
        ({"requested_by": "alice\u202egro.evil"}, "detail.requested_by"),
        ({"reason": "a\x9bb"}, "detail.reason"),
    ],
)
def test_a_malformed_command_is_answered_as_refused_and_changes_nothing(registered, lambda_context, change, field):
    event = sample_event("model-version-approval-requested.json")
    event["detail"].update(change)

    response = handler.lambda_handler(event, lambda_context)

    assert response["result"] == "refused" and response["command_id"] == event["id"]
    [refused] = registered.announcements("Command Refused")
    assert refused["command_id"] == event["id"] and refused["source"] == event["source"]
    assert refused["command"] == "Model Version Approval Requested"
    assert refused["reason"].startswith(field) and "\n" not in refused["reason"]
    assert version_status(registered) == "REGISTERED"


def test_a_damaged_envelope_has_no_id_to_answer_and_raises_for_the_dead_letter_queue(registered, lambda_context):
    event = sample_event("model-version-approval-requested.json")
    del event["id"]
    with pytest.raises(ValidationError):
        handler.lambda_handler(event, lambda_context)
    assert registered.announcements("Command Refused") == []
    assert version_status(registered) == "REGISTERED"


def test_an_approval_is_not_judged_by_the_name_it_claims(registered, lambda_context):
    # Given an approval whose free-text requested_by is what S3 reported as the uploader (an account
    # id: EventBridge never says who sent a command). Comparing the two proved nothing (issue 20):
    # who may approve, and that approvers may not upload or promote, is the bus and bucket policies'
    # (tests/unit/test_template_account_roles.py). The claim is recorded, never trusted.
    uploader = sample_event("s3-object-created.eventbridge.json")["detail"]["requester"]
    event = sample_event("model-version-approval-requested.json")
    event["detail"]["requested_by"] = uploader

    response = handler.lambda_handler(event, lambda_context)

    assert response["result"] == "approved"
    assert version_status(registered) == "APPROVED"
    assert registered.announcements("Model Version Approval Refused") == []
    [approved] = registered.announcements("Model Version Approved")
    assert approved["requested_by"] == uploader
