"""Each function that makes approved copies (issue 20, point 1), on each path its role is granted for:
the approval, a first promotion without approval, and a rollback redeploying a version approved before
approved copies existed; a registered version in a versioned bucket or, once versioning is suspended,
the "null" version; a copy that does not match its registration deleted again. Through the handlers,
so the IAM proof (tests/iam/) judges every call against the role that makes it."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

import pytest

from tests.handlers.lifecycle import promotion, registered_version, settled_weights, status, tick
from tests.handlers.test_approved_artifacts import APPROVED_KEY, approval, approve, create_model_requests, promote
from tests.handlers.test_rollback import AT, rollback, rollback_command
from tests.world import MODEL_BYTES

VERSION_1 = {"pk": {"S": "MODEL#churn-predictor"}, "sk": {"S": "VERSION#0000000001"}}
ARTIFACT_1 = "models/churn-predictor/run-1/model.tar.gz"


def version_item(world) -> dict[str, Any]:
    return dict(world.dynamodb.get_item(TableName=world.table, Key=VERSION_1)["Item"])


def approved_copies(world) -> set[str]:
    """The version ids of every copy S3 holds at version 1's approved key."""
    listed = world.s3.list_object_versions(Bucket=world.bucket, Prefix=APPROVED_KEY)
    return {copy["VersionId"] for copy in listed.get("Versions", [])}


def names_no_copy(item: dict[str, Any]) -> bool:
    return item.get("approved_artifact", {"NULL": True}) == {"NULL": True}


def as_approved_before_approved_copies(world) -> None:
    """Version 1's record as written before approved copies existed: it names none."""
    world.dynamodb.update_item(TableName=world.table, Key=VERSION_1, UpdateExpression="REMOVE approved_artifact")


def registered_unversioned(world) -> None:
    """Version 1 registered as the "null" version of a bucket whose versioning was suspended (same bytes)."""
    world.s3.put_bucket_versioning(Bucket=world.bucket, VersioningConfiguration={"Status": "Suspended"})
    world.s3.put_object(Bucket=world.bucket, Key=ARTIFACT_1, Body=MODEL_BYTES, ChecksumAlgorithm="SHA256")
    world.dynamodb.update_item(
        TableName=world.table,
        Key=VERSION_1,
        UpdateExpression="SET artifact.s3_version_id = :null",
        ExpressionAttributeValues={":null": {"S": "null"}},
    )


def registered_with_other_bytes(world) -> None:
    """Version 1's record names a checksum its artifact does not have: its copy cannot match."""
    other = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    world.dynamodb.update_item(
        TableName=world.table,
        Key=VERSION_1,
        UpdateExpression="SET checksum.#value = :other",
        ExpressionAttributeNames={"#value": "value"},
        ExpressionAttributeValues={":other": {"S": other}},
    )


def version_2_completed(world, sagemaker, lambda_context) -> None:
    """After the first deployment (v1), v2 rolled out and complete: v1 RETIRED, redeployable."""
    v2 = registered_version(world, lambda_context, 2)
    strategy = {"type": "all_at_once", "post_deploy_watch_seconds": 0}
    assert promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)["result"] == "started"
    for minute in range(6):
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert settled_weights(sagemaker) == {"churn-predictor-v2": 1.0} and status(world, 1) == "RETIRED"


def copying(function: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 1 registered (and, for a rollback, live once, then retired), not yet copied."""
    world, lambda_context = request.getfixturevalue("world"), request.getfixturevalue("lambda_context")
    if function == "rollback":
        request.getfixturevalue("first_deployment")
        version_2_completed(world, request.getfixturevalue("sagemaker"), lambda_context)
        as_approved_before_approved_copies(world)
    else:
        request.getfixturevalue("sagemaker")
        monkeypatch.setenv("REQUIRE_APPROVAL", "false")  # a first promotion copies it (approval does anyway)
        registered_version(world, lambda_context, 1, approve_it=False)


def copy_now(function: str, lambda_context) -> str:
    """The function's answer to what makes it copy version 1."""
    if function == "approval":
        return str(approve.lambda_handler(approval(), lambda_context)["result"])
    if function == "promotion":
        return str(promote.lambda_handler(promotion(1, {"type": "all_at_once"}), lambda_context)["result"])
    command = rollback_command(AT + timedelta(minutes=10))
    return str(rollback.lambda_handler(command, lambda_context)["results"][0]["result"])


FUNCTIONS = ["approval", "promotion", "rollback"]
COPIED = {"approval": "approved", "promotion": "started", "rollback": "redeploying"}
REFUSED = {"approval": "refused", "promotion": "rejected", "rollback": "skipped"}


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "null-version"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_copying_function_copies_the_registered_version_and_models_are_made_from_the_copy(
    function, versioned, request, monkeypatch, world, lambda_context
):
    # Given version 1, registered and not yet copied
    copying(function, request, monkeypatch)
    if not versioned:
        registered_unversioned(world)
    assert names_no_copy(version_item(world))
    requests = create_model_requests()

    # When the function comes to need its approved copy
    result = copy_now(function, lambda_context)

    # Then the version's record names the copy it made, which S3 holds, and any model is made from it
    assert result == COPIED[function]
    approved = version_item(world)["approved_artifact"]["M"]
    assert approved["key"]["S"] == APPROVED_KEY
    assert approved["s3_version_id"]["S"] in approved_copies(world)
    assert all(r["PrimaryContainer"]["ModelDataUrl"] == f"s3://{world.bucket}/{APPROVED_KEY}" for r in requests)


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "null-version"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_copy_that_does_not_match_its_registration_is_deleted_and_refused(
    function, versioned, request, monkeypatch, world, lambda_context
):
    # Given version 1, whose record names bytes its artifact does not have
    copying(function, request, monkeypatch)
    if not versioned:
        registered_unversioned(world)
    registered_with_other_bytes(world)
    copies_before = approved_copies(world)

    # When the function copies it
    result = copy_now(function, lambda_context)

    # Then it refuses, the copy it made is gone (its version too, where the bucket keeps versions), and
    # the version's record names none
    assert result == REFUSED[function]
    assert approved_copies(world) <= copies_before
    assert names_no_copy(version_item(world))
