"""Issue 20, point 1: what was approved is what runs. Through the handlers, on moto, and the template."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from shepherd import bootstrap
from tests.handlers.conftest import ROOT, load_handler, sample_event
from tests.handlers.lifecycle import ENDPOINT, promotion, registered_version, status
from tests.handlers.test_register_version import eventbridge_upload
from tests.world import MODEL_BYTES

register = load_handler("register_version")
approve = load_handler("decide_approval")
promote = load_handler("start_rollout")
APPROVED_KEY = "approved/churn-predictor/1/model.tar.gz"
TEMPLATE: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())


def create_model_requests() -> list[dict[str, Any]]:
    """The CreateModel requests the functions send. moto keeps only some fields of a model (not
    EnableNetworkIsolation), so the request is read as botocore builds it: no call is changed."""
    seen: list[dict[str, Any]] = []
    client = bootstrap.container().client("sagemaker")
    client.meta.events.register("provide-client-params.sagemaker.CreateModel", lambda params, **_: seen.append(params))
    return seen


def approval(version: int = 1) -> dict[str, Any]:
    command = sample_event("model-version-approval-requested.json")
    command["id"] = str(uuid.uuid4())
    command["detail"]["version"] = version
    return command


def approved_object(world) -> bytes:
    return bytes(world.s3.get_object(Bucket=world.bucket, Key=APPROVED_KEY)["Body"].read())


def test_sagemaker_serves_the_approved_copy_of_the_registered_version_not_the_key(world, sagemaker, lambda_context):
    # Given version 1 registered, and its key overwritten after registration (whoever can write it)
    requests = create_model_requests()
    registered_version(world, lambda_context, 1, approve_it=False)
    key = "models/churn-predictor/run-1/model.tar.gz"
    world.upload(key, body=gzip.compress(b"someone else's model", mtime=0))

    # When it is approved and promoted
    assert approve.lambda_handler(approval(), lambda_context)["result"] == "approved"
    assert promote.lambda_handler(promotion(1, {"type": "all_at_once"}), lambda_context)["result"] == "started"

    # Then the approved copy holds the registered bytes, and the model is made from it, isolated
    assert gzip.decompress(approved_object(world)) == b"model-bytes"
    [request] = requests
    assert request["PrimaryContainer"]["ModelDataUrl"] == f"s3://{world.bucket}/{APPROVED_KEY}"
    assert request["EnableNetworkIsolation"] is True
    [approved] = world.announcements("Model Version Approved")
    assert approved["approved_artifact_uri"] == f"s3://{world.bucket}/{APPROVED_KEY}"


def test_an_artifact_changed_since_registration_is_refused_recorded_and_announced(world, sagemaker, lambda_context):
    # Given an unversioned bucket, where the registered object ("null" version) can be overwritten
    world.s3.put_bucket_versioning(Bucket=world.bucket, VersioningConfiguration={"Status": "Suspended"})
    key = "models/churn-predictor/run-1/model.tar.gz"
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=MODEL_BYTES, ChecksumAlgorithm="SHA256")
    event = sample_event("s3-object-created.eventbridge.json")
    event["detail"]["object"] = {"key": key, "size": len(MODEL_BYTES)}
    assert register.lambda_handler(event, lambda_context)["results"][0]["result"] == "registered"
    world.s3.put_object(
        Bucket=world.bucket,
        Key="models/churn-predictor/run-1/model.tar.gz",
        Body=gzip.compress(b"swapped", mtime=0),
        ChecksumAlgorithm="SHA256",
    )

    # When it is approved
    response = approve.lambda_handler(approval(), lambda_context)

    # Then the approval is refused, the version REJECTED, both announced, and no copy is left
    assert response["result"] == "refused"
    assert status(world, 1) == "REJECTED"
    [refused] = world.announcements("Model Version Approval Refused")
    assert "does not match its registration" in refused["reason"] and refused["current_status"] == "REJECTED"
    [rejected] = world.announcements("Model Version Rejected")
    assert rejected["requested_by"] == "shepherd"
    assert "Contents" not in world.s3.list_objects_v2(Bucket=world.bucket, Prefix="approved/")
    # and a redelivery of the command says the same
    assert approve.lambda_handler(approval() | {"id": refused["command_id"]}, lambda_context)["result"] == "refused"


def test_a_version_promoted_without_approval_is_copied_before_its_first_promotion(
    world, sagemaker, lambda_context, monkeypatch
):
    monkeypatch.setenv("REQUIRE_APPROVAL", "false")
    requests = create_model_requests()
    registered_version(world, lambda_context, 1, approve_it=False)

    assert promote.lambda_handler(promotion(1, {"type": "all_at_once"}), lambda_context)["result"] == "started"

    [request] = requests
    assert request["PrimaryContainer"]["ModelDataUrl"] == f"s3://{world.bucket}/{APPROVED_KEY}"
    item = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": "MODEL#churn-predictor"}, "sk": {"S": "VERSION#0000000001"}}
    )["Item"]
    assert item["approved_artifact"]["M"]["key"]["S"] == APPROVED_KEY


def test_a_promotion_whose_artifact_is_gone_is_refused_and_leaves_the_endpoint_unlocked(
    world, sagemaker, lambda_context, monkeypatch
):
    monkeypatch.setenv("REQUIRE_APPROVAL", "false")
    registered_version(world, lambda_context, 1, approve_it=False)
    key = "models/churn-predictor/run-1/model.tar.gz"
    for version in world.s3.list_object_versions(Bucket=world.bucket, Prefix=key)["Versions"]:
        world.s3.delete_object(Bucket=world.bucket, Key=key, VersionId=version["VersionId"])

    response = promote.lambda_handler(promotion(1, {"type": "all_at_once"}), lambda_context)

    assert response["result"] == "rejected" and "no longer exists" in response["reason"]
    [rejected] = world.announcements("Promotion Rejected")
    assert "artifact not approvable" in rejected["reason"]
    lock = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "LOCK"}}
    )
    assert "Item" not in lock


def test_shepherds_own_copies_are_never_registered(world, lambda_context):
    event = eventbridge_upload(world, key=APPROVED_KEY)

    assert register.lambda_handler(event, lambda_context)["results"][0]["result"] == "ignored"
    assert world.announcements() == []  # no version, no rejection announced


@pytest.mark.parametrize(("body", "reason"), [(b"", "is empty"), (b"PK\x03\x04zip", "not gzip-compressed")])
def test_an_empty_or_non_gzip_artifact_is_rejected_at_registration(world, lambda_context, body, reason):
    event = eventbridge_upload(world, key="models/churn-predictor/run-1/model.tar.gz", body=body)

    assert register.lambda_handler(event, lambda_context)["results"][0]["result"] == "rejected"
    [rejected] = world.announcements("Model Artifact Rejected")
    assert rejected["code"] == "INVALID_ARTIFACT" and reason in rejected["reason"]


# --- the template --------------------------------------------------------------------------------


def resource(name: str) -> dict[str, Any]:
    return dict(TEMPLATE["Resources"][name]["Properties"])


def test_only_the_copying_functions_may_write_approved_artifacts():
    statements = resource("ArtifactBucketPolicy")["PolicyDocument"]["Statement"]
    [deny] = [s for s in statements if s.get("Sid") == "OnlyShepherdWritesApprovedArtifacts"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(deny["Action"])
    assert deny["Resource"] == {"Fn::Sub": "${ArtifactBucket.Arn}/approved/*"}
    allowed = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert allowed == [
        {"Fn::GetAtt": [f"{name}FunctionRole", "Arn"]} for name in ("DecideApproval", "StartRollout", "Rollback")
    ]


def test_sagemaker_reads_approved_copies_only_and_uploads_under_approved_never_reach_registration():
    [policy] = resource("SageMakerExecutionRole")["Policies"]
    [read] = policy["PolicyDocument"]["Statement"]
    assert read["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactBucket}/approved/*"}
    pattern = resource("RegisterVersionFunction")["Events"]["ArtifactUploaded"]["Properties"]["Pattern"]
    assert pattern["detail"]["object"]["key"] == [{"anything-but": {"prefix": "approved/"}}]
