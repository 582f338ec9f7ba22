"""The registration function, reached the way AWS reaches it: with the real S3 event shapes."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from tests.handlers.conftest import load_handler, sample_event

handler = load_handler("register_version")

EVENTBRIDGE_KEY = "models/churn-predictor/2026-11-20T0912Z/model.tar.gz"
NOTIFICATION_KEY = "models/churn-predictor/run 2026-11-20 (retrain)/model.tar.gz"  # decoded from run+...%28


def eventbridge_upload(world, key: str = EVENTBRIDGE_KEY, body: bytes = b"weights") -> dict:
    """events/s3-object-created.eventbridge.json for an object that exists in the moto bucket."""
    version_id = world.upload(key, body=body, metadata={"team": "growth"})
    event = sample_event("s3-object-created.eventbridge.json")
    event["detail"]["object"].update({"key": key, "version-id": version_id})
    return event


def test_the_eventbridge_shape_registers_version_1(world, lambda_context):
    event = eventbridge_upload(world)

    response = handler.lambda_handler(event, lambda_context)

    assert response["results"] == [{"key": EVENTBRIDGE_KEY, "result": "registered", "version": 1}]
    [registered] = world.announcements("Model Version Registered")
    assert registered["model_name"] == "churn-predictor" and registered["version"] == 1
    assert registered["checksum"]["algorithm"] == "SHA256"
    assert registered["artifact_uri"] == f"s3://acme-model-artifacts/{EVENTBRIDGE_KEY}"
    item = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": "MODEL#churn-predictor"}, "sk": {"S": "VERSION#0000000001"}}
    )["Item"]
    assert item["status"]["S"] == "REGISTERED"
    assert item["metadata"]["M"] == {"team": {"S": "growth"}}
    assert item["uploaded_by"]["S"] == "123456789012"


def test_the_notification_shape_registers_version_1_with_the_decoded_key(world, lambda_context):
    version_id = world.upload(NOTIFICATION_KEY)
    event = sample_event("s3-object-created.notification.json")
    event["Records"][0]["s3"]["object"]["versionId"] = version_id

    response = handler.lambda_handler(event, lambda_context)

    assert response["results"] == [{"key": NOTIFICATION_KEY, "result": "registered", "version": 1}]
    [registered] = world.announcements("Model Version Registered")
    assert registered["key"] == NOTIFICATION_KEY
    assert registered["requested_by"] == "AWS:AIDAEXAMPLEID"


def test_the_notification_shape_through_sqs_registers_too(world, lambda_context):
    version_id = world.upload(NOTIFICATION_KEY)
    notification = sample_event("s3-object-created.notification.json")
    notification["Records"][0]["s3"]["object"]["versionId"] = version_id
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": json.dumps(notification)}]}

    assert handler.lambda_handler(event, lambda_context)["results"][0]["version"] == 1


def test_the_same_event_three_times_is_one_version(world, lambda_context):
    event = eventbridge_upload(world)

    results = [handler.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0] for _ in range(3)]

    assert [result["result"] for result in results] == ["registered", "duplicate", "duplicate"]
    assert {result["version"] for result in results} == {1}
    versions = world.dynamodb.query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "MODEL#churn-predictor"}},
    )["Items"]
    assert [item["sk"]["S"] for item in versions] == ["MODEL", "VERSION#0000000001"]


@pytest.mark.parametrize(
    ("key", "manifest", "reason"),
    [
        ("models/Churn_Predictor/v1/model.tar.gz", None, "must match"),
        ("models/churn/../fraud/model.tar.gz", None, "'..'"),
        ("models/churn/v1/model.tar.gz", b'{"metrics": {"auc": "great"}}', "metrics.auc"),
        ("models/churn/v2/model.tar.gz", b"not json", "Invalid JSON"),
    ],
)
def test_bad_input_is_rejected_recorded_and_announced(world, lambda_context, key, manifest, reason):
    if manifest is not None:
        world.s3.put_object(Bucket=world.bucket, Key=key.replace("model.tar.gz", "manifest.json"), Body=manifest)
    event = eventbridge_upload(world, key=key)

    assert handler.lambda_handler(event, lambda_context)["results"][0]["result"] == "rejected"

    [rejected] = world.announcements("Model Artifact Rejected")
    assert (rejected["bucket"], rejected["key"]) == (world.bucket, key) and reason in rejected["reason"]
    stored = world.dynamodb.query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ARTIFACT#s3://{world.bucket}/{key}"}},
    )["Items"]
    assert [item["sk"]["S"].split("#")[0] for item in stored] == ["REJECTION"]
    assert reason in stored[0]["reason"]["S"]
    assert not world.announcements("Model Version Registered")
    # Nothing is deleted from the bucket.
    assert world.s3.head_object(Bucket=world.bucket, Key=key)["ContentLength"] > 0


def test_an_artifact_deleted_before_delivery_is_rejected(world, lambda_context):
    event = eventbridge_upload(world)
    world.s3.delete_object(Bucket=world.bucket, Key=EVENTBRIDGE_KEY, VersionId=event["detail"]["object"]["version-id"])

    assert handler.lambda_handler(event, lambda_context)["results"][0]["result"] == "rejected"
    [rejected] = world.announcements("Model Artifact Rejected")
    assert "no longer exists" in rejected["reason"]


def test_a_manifest_upload_is_ignored(world, lambda_context):
    event = eventbridge_upload(world, key="models/churn/v1/manifest.json")
    assert handler.lambda_handler(event, lambda_context)["results"][0]["result"] == "ignored"
    assert world.announcements() == []


def test_an_unparseable_event_raises_so_lambda_retries_it(world, lambda_context):
    with pytest.raises(ValidationError):
        handler.lambda_handler({"detail-type": "Object Created", "detail": {"bucket": {}}}, lambda_context)


def test_lineage_naming_an_earlier_version_is_accepted_by_a_cold_container(world, lambda_context):
    """A fresh container has not seen the model: its first guess of the number must not reject lineage."""
    from shepherd import bootstrap

    for run in (1, 2):
        handler.lambda_handler(eventbridge_upload(world, key=f"models/churn/run-{run}/model.tar.gz"), lambda_context)
    bootstrap.reset()  # a cold start
    world.s3.put_object(Bucket=world.bucket, Key="models/churn/run-3/manifest.json", Body=b'{"parent_version": 2}')

    result = handler.lambda_handler(eventbridge_upload(world, key="models/churn/run-3/model.tar.gz"), lambda_context)

    assert result["results"][0] == {"key": "models/churn/run-3/model.tar.gz", "result": "registered", "version": 3}


def test_twenty_parallel_uploads_of_one_model_become_versions_1_to_20(world, lambda_context):
    from concurrent.futures import ThreadPoolExecutor

    events = [eventbridge_upload(world, key=f"models/churn/run-{n}/model.tar.gz") for n in range(20)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda event: handler.lambda_handler(event, lambda_context)["results"][0], events))

    assert sorted(result["version"] for result in results) == list(range(1, 21))
    assert {result["key"] for result in results} == {f"models/churn/run-{n}/model.tar.gz" for n in range(20)}
    assert sorted(a["version"] for a in world.announcements("Model Version Registered")) == list(range(1, 21))
