"""The post-deploy permission check's logic, on stub clients.

Only real AWS can say whether a policy holds (moto enforces no IAM or resource policy), so this
tests what the script does with AWS's answers: which actions it tries as each role, and how it
reads a refusal, a success and anything else.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from shepherd.contracts.catalogue import COMMANDS
from shepherd_cli import permission_probes
from shepherd_cli.permission_probes import exit_status, probes, report, run

OUTPUTS = {
    "EventBusName": "shepherd-prod",
    "ArtifactBucketName": "artifacts",
    "AlarmTopicArn": "arn:aws:sns:eu-west-1:111122223333:alarms",
    "OperatorTopicArn": "arn:aws:sns:eu-west-1:111122223333:operators",
}


class StubAws:
    """Answers every call with AccessDenied unless told otherwise; records what was tried."""

    def __init__(self, allow: set[str] = frozenset(), per_entry: bool = False, code: str = "") -> None:
        self.allow, self.per_entry, self.code = allow, per_entry, code
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, service: str) -> StubAws:
        self.service = service
        return self

    def _answer(self, operation: str, key: str, **params: Any) -> dict[str, Any]:
        self.calls.append((operation, params))
        if key in self.allow:
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}
        if self.code:
            raise ClientError({"Error": {"Code": self.code, "Message": "?"}}, operation)
        if self.per_entry and operation == "PutEvents":
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "AccessDeniedException", "ErrorMessage": "no"}]}
        code = {"PutEvents": "AccessDeniedException", "Publish": "AuthorizationError"}.get(operation, "AccessDenied")
        raise ClientError({"Error": {"Code": code, "Message": "denied"}}, operation)

    def put_events(self, Entries: list[dict[str, str]]) -> dict[str, Any]:
        [entry] = Entries
        return self._answer(
            "PutEvents", entry["DetailType"] if entry["Source"] != "shepherd" else "announce", Entries=Entries
        )

    def publish(self, TopicArn: str, Message: str) -> dict[str, Any]:
        return self._answer("Publish", TopicArn, TopicArn=TopicArn)

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:
        return self._answer("PutObject", "upload", Bucket=Bucket, Key=Key)


def test_each_role_is_tried_on_every_kind_but_its_own_and_on_announcing_and_the_topics():
    tried = {role: [p.what for p in probes(role, OUTPUTS)] for role in ("approver", "deployer", "operator", "caller")}
    assert tried["approver"] == [
        "put 'Model Promotion Requested'",
        "put 'Model Rollback Requested'",
        "put 'Model Rollout Resume Requested'",
        "announce as Shepherd",
        "publish to AlarmTopicArn",
        "publish to OperatorTopicArn",
        "upload to the artifact bucket",
    ]
    assert "put 'Model Promotion Requested'" not in tried["deployer"]
    assert "put 'Model Version Approval Requested'" in tried["deployer"]
    assert not any("Rollback" in what or "Resume" in what for what in tried["operator"])
    assert len([w for w in tried["caller"] if w.startswith("put")]) == 4  # an administrator: every kind


def test_all_refused_is_success():
    results = run("approver", OUTPUTS, StubAws())
    assert {r.answer for r in results} == {"denied"}
    assert exit_status(results) == 0
    assert "ok     denied AccessDeniedException: approver may not put 'Model Promotion Requested'" in report(results)


def test_a_refusal_reported_per_entry_is_a_refusal():
    assert {r.answer for r in run("operator", OUTPUTS, StubAws(per_entry=True))} == {"denied"}


def test_anything_allowed_is_a_hole_and_fails_the_check():
    results = run("approver", OUTPUTS, StubAws(allow={"Model Promotion Requested", OUTPUTS["AlarmTopicArn"]}))
    assert exit_status(results) == 1
    holes = [line for line in report(results).splitlines() if line.startswith("HOLE")]
    assert holes == [
        "HOLE   allowed: approver may not put 'Model Promotion Requested'",
        "HOLE   allowed: approver may not publish to AlarmTopicArn",
    ]


def test_an_answer_that_is_neither_is_reported_as_such():
    results = run("deployer", OUTPUTS, StubAws(code="ResourceNotFoundException"))
    assert exit_status(results) == 2
    assert all(r.answer == "unexpected" for r in results)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.DETAIL_TYPE)
def test_what_a_probe_sends_is_a_valid_command_about_nothing_that_exists(command):
    # Valid, so that one that gets through is refused as unknown (and recorded), not as malformed.
    detail = permission_probes.COMMANDS[command.DETAIL_TYPE]
    command.model_validate(detail)
    assert permission_probes.PROBE in detail.values()
