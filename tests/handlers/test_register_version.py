"""The registration function, reached the way AWS reaches it: with the real S3 event shapes."""

from __future__ import annotations

import copy
import gzip
import json
import time

import pytest
from pydantic import ValidationError

from shepherd import bootstrap
from tests.handlers.conftest import load_handler, sample_event
from tests.world import MODEL_BYTES

handler = load_handler("register_version")

EVENTBRIDGE_KEY = "models/churn-predictor/2026-11-20T0912Z/model.tar.gz"
NOTIFICATION_KEY = "models/churn-predictor/run 2026-11-20 (retrain)/model.tar.gz"  # decoded from run+...%28


def eventbridge_upload(world, key: str = EVENTBRIDGE_KEY, body: bytes = MODEL_BYTES) -> dict:
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
        # free text in the manifest with terminal controls or a bidi override (JSON escapes)
        ("models/churn/v3/model.tar.gz", b'{"tags": {"team": "ml\\u001b[2J"}}', "tags.team: Value error"),
        ("models/churn/v4/model.tar.gz", b'{"tags": {"a\\u202eb": "x"}}', "tags.a\\u202eb.[key]"),
        ("models/churn/v5/model.tar.gz", b'{"description": "line\\r\\nforged"}', "found \\x0d at position 4"),
        ("models/churn/v6/model.tar.gz", b'{"source": {"repository": "r\\u0007", "commit": "c"}}', "source"),
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
    world.s3.put_object(Bucket=world.bucket, Key="models/churn/run-3/manifest.json", Body=b'{"parent_version": 2}')

    with bootstrap.wired(bootstrap.Container()):  # a cold start: another container
        result = handler.lambda_handler(
            eventbridge_upload(world, key="models/churn/run-3/model.tar.gz"), lambda_context
        )

    assert result["results"][0] == {"key": "models/churn/run-3/model.tar.gz", "result": "registered", "version": 3}


def test_twenty_parallel_uploads_of_one_model_become_versions_1_to_20(world, lambda_context):
    from concurrent.futures import ThreadPoolExecutor

    events = [eventbridge_upload(world, key=f"models/churn/run-{n}/model.tar.gz") for n in range(20)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda event: handler.lambda_handler(event, lambda_context)["results"][0], events))

    assert sorted(result["version"] for result in results) == list(range(1, 21))
    assert {result["key"] for result in results} == {f"models/churn/run-{n}/model.tar.gz" for n in range(20)}
    assert sorted(a["version"] for a in world.announcements("Model Version Registered")) == list(range(1, 21))


# --- every delivery shape, and only object creations ----------------------------------------------------


def s3_calls(world):
    """Names of the S3 API calls the handler's client makes from now on (its client is cached)."""
    calls: list[str] = []
    bootstrap.client("s3").meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    return calls


def with_version(event: dict, version_id: str) -> dict:
    """The S3 -> SNS sample with its S3 record's versionId set (the S3 notification is a JSON string)."""
    notification = json.loads(event["Records"][0]["Sns"]["Message"])
    notification["Records"][0]["s3"]["object"]["versionId"] = version_id
    event["Records"][0]["Sns"]["Message"] = json.dumps(notification)
    return event


@pytest.mark.parametrize(
    "sample", ["s3-object-deleted.eventbridge.json", "s3-object-restore-completed.eventbridge.json"]
)
def test_eventbridge_events_other_than_object_created_are_ignored(world, lambda_context, sample):
    world.upload(EVENTBRIDGE_KEY)  # the object exists: a creation would register it
    calls = s3_calls(world)

    response = handler.lambda_handler(sample_event(sample), lambda_context)

    assert response["results"] == []
    assert calls == []
    assert world.announcements() == []


def wrapped(notification: dict, shape: str) -> dict:
    """An S3 notification as S3 -> Lambda, S3 -> SQS, S3 -> SNS, or S3 -> SNS -> SQS deliver it."""
    if shape == "direct":
        return notification
    if shape == "sqs":
        return {"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": json.dumps(notification)}]}
    sns = sample_event("s3-object-created.sns.json")
    sns["Records"][0]["Sns"]["Message"] = json.dumps(notification)
    if shape == "sns":
        return sns
    sns_in_sqs = sample_event("s3-object-created.sns-in-sqs.json")
    envelope = json.loads(sns_in_sqs["Records"][0]["body"])
    envelope["Message"] = json.dumps(notification)
    sns_in_sqs["Records"][0]["body"] = json.dumps(envelope)
    return sns_in_sqs


@pytest.mark.parametrize("shape", ["direct", "sqs", "sns", "sns-in-sqs"])
def test_lifecycle_replication_removal_and_restore_records_are_ignored_in_every_wrapping(world, lambda_context, shape):
    # LifecycleExpiration:Delete, LifecycleTransition, Replication:OperationFailedReplication,
    # ObjectRemoved:DeleteMarkerCreated and ObjectRestore:Completed, about keys that are real artifacts.
    event = wrapped(sample_event("s3-not-created.notification.json"), shape)
    calls = s3_calls(world)

    assert handler.lambda_handler(event, lambda_context)["results"] == []
    assert calls == []
    assert world.announcements() == []


def test_s3_through_sns_registers_with_the_decoded_key(world, lambda_context):
    version_id = world.upload(NOTIFICATION_KEY)
    event = with_version(sample_event("s3-object-created.sns.json"), version_id)

    response = handler.lambda_handler(event, lambda_context)

    assert response["results"] == [{"key": NOTIFICATION_KEY, "result": "registered", "version": 1}]


def test_s3_through_sns_then_sqs_registers_the_notification_inside_the_sns_envelope(world, lambda_context):
    version_id = world.upload(NOTIFICATION_KEY)
    event = sample_event("s3-object-created.sns-in-sqs.json")
    envelope = json.loads(event["Records"][0]["body"])  # the SNS envelope, as SQS received it
    notification = json.loads(envelope["Message"])  # the S3 notification, as SNS received it
    notification["Records"][0]["s3"]["object"]["versionId"] = version_id
    envelope["Message"] = json.dumps(notification)
    event["Records"][0]["body"] = json.dumps(envelope)

    response = handler.lambda_handler(event, lambda_context)

    assert response["results"] == [{"key": NOTIFICATION_KEY, "result": "registered", "version": 1}]
    [registered] = world.announcements("Model Version Registered")
    assert registered["s3_version_id"] == version_id


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"Type": "SubscriptionConfirmation", "Message": "You have chosen to subscribe"}, "subscription confirmation"),
        ({"Type": "Notification", "Message": "not json"}, "not JSON"),
        ({"greeting": "hello"}, "not an upload event"),
    ],
)
def test_an_sqs_body_of_another_shape_is_refused_with_a_message_that_names_it(world, lambda_context, body, named):
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": json.dumps(body)}]}

    with pytest.raises(ValueError, match=named):
        handler.lambda_handler(event, lambda_context)


def test_an_event_about_another_bucket_is_ignored_without_an_aws_call(world, lambda_context):
    event = sample_event("s3-object-created.eventbridge.json")
    event["detail"]["bucket"]["name"] = "someone-elses-bucket"
    calls = s3_calls(world)

    response = handler.lambda_handler(event, lambda_context)

    assert response["results"] == [{"key": EVENTBRIDGE_KEY, "result": "ignored", "version": None}]
    assert calls == []
    assert world.announcements() == []


def test_a_record_without_version_id_registers_the_version_head_object_returns(world, lambda_context):
    world.upload(NOTIFICATION_KEY, body=gzip.compress(b"first"))
    current = world.upload(NOTIFICATION_KEY, body=gzip.compress(b"second"))
    event = sample_event("s3-object-created.notification.json")
    del event["Records"][0]["s3"]["object"]["versionId"]

    handler.lambda_handler(event, lambda_context)

    [registered] = world.announcements("Model Version Registered")
    assert registered["s3_version_id"] == current
    claim = f"CLAIM#{current}"
    assert [item["sk"]["S"] for item in artifact_items(world, NOTIFICATION_KEY)] == [claim]


def artifact_items(world, key: str) -> list[dict]:
    return world.dynamodb.query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ARTIFACT#s3://{world.bucket}/{key}"}},
    )["Items"]


def version_item(world, number: int = 1) -> dict:
    key = {"pk": {"S": "MODEL#churn-predictor"}, "sk": {"S": f"VERSION#{number:010d}"}}
    return world.dynamodb.get_item(TableName=world.table, Key=key)["Item"]


@pytest.mark.parametrize(
    ("stored_key", "delivered_key", "decoding"),
    [
        # EventBridge URL-encodes this key as notifications do: the decoded key is the object.
        (
            "models/churn-predictor/run 1 (retrain)/model.tar.gz",
            "models/churn-predictor/run+1+%28retrain%29/model.tar.gz",
            "decoded",
        ),
        # A key with a real '+' delivered as it is: the decoded key does not exist, the delivered one does.
        ("models/churn-predictor/a+b/model.tar.gz", "models/churn-predictor/a+b/model.tar.gz", "as-delivered"),
    ],
)
def test_an_eventbridge_key_is_decoded_with_a_fallback_to_the_key_as_delivered(
    world, lambda_context, stored_key, delivered_key, decoding
):
    version_id = world.upload(stored_key)
    event = sample_event("s3-object-created.eventbridge.json")
    event["detail"]["object"].update({"key": delivered_key, "version-id": version_id})

    response = handler.lambda_handler(event, lambda_context)

    assert response["results"] == [{"key": stored_key, "result": "registered", "version": 1}]
    item = version_item(world)
    assert item["artifact"]["M"]["key"]["S"] == stored_key
    assert item["key_decoding"]["S"] == decoding


# --- the manifest that was there at upload ---------------------------------------------------------------

MANIFEST_KEY = "models/churn-predictor/2026-11-20T0912Z/manifest.json"


def put_manifest(world, auc: float) -> str:
    body = json.dumps({"metrics": {"auc": auc}}).encode()
    return str(world.s3.put_object(Bucket=world.bucket, Key=MANIFEST_KEY, Body=body)["VersionId"])


def test_a_manifest_overwritten_after_the_upload_does_not_leak_into_the_version(world, lambda_context):
    ours = put_manifest(world, 0.91)
    event = eventbridge_upload(world)
    time.sleep(1.1)  # S3's LastModified has one-second resolution: the next run's manifest comes later
    put_manifest(world, 0.52)

    handler.lambda_handler(event, lambda_context)

    [registered] = world.announcements("Model Version Registered")
    assert registered["metrics"] == {"auc": 0.91}
    assert version_item(world)["manifest_version_id"]["S"] == ours


def test_a_manifest_first_written_after_the_upload_is_not_this_versions(world, lambda_context):
    event = eventbridge_upload(world)
    time.sleep(1.1)
    put_manifest(world, 0.52)

    handler.lambda_handler(event, lambda_context)

    [registered] = world.announcements("Model Version Registered")
    assert registered["metrics"] == {}
    assert "manifest_version_id" not in version_item(world) or version_item(world)["manifest_version_id"] == {
        "NULL": True
    }
