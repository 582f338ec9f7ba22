"""Upload events: S3 `Object Created` in every delivery shape, as `ArtifactUploaded`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.exceptions import InvalidModelTypeError
from aws_lambda_powertools.utilities.parser.models import (
    S3EventNotificationEventBridgeModel,
    S3Model,
    S3RecordModel,
)

from shepherd.registry.model import ArtifactRef
from shepherd.registry.service import ArtifactUploaded

UNVERSIONED = "null"  # what S3 calls the version of an object in an unversioned bucket


def parse_uploads(event: dict[str, Any]) -> list[ArtifactUploaded]:
    """`Object Created` via EventBridge, an S3 notification, or either wrapped in SQS or SNS records."""
    # Found by tests/unit/test_fuzz_parsers.py: a non-object event, non-list Records, a non-object Sns
    # or a malformed S3 record raised TypeError/AttributeError instead of a validation error.
    if not isinstance(event, dict):
        raise ValueError(f"an upload event is a JSON object, not {type(event).__name__}")
    if "Records" not in event:
        if event.get("Event") == "s3:TestEvent":  # sent once when a notification is configured
            return []
        return [_from_eventbridge(parse(event, model=S3EventNotificationEventBridgeModel))]
    if not isinstance(event["Records"], list):
        raise ValueError("Records is not a list")
    uploads: list[ArtifactUploaded] = []
    for record in event["Records"]:
        source = (record.get("eventSource") or record.get("EventSource")) if isinstance(record, dict) else None
        if source == "aws:sqs":
            uploads.extend(parse_uploads(_json_object(record.get("body"))))
        elif source == "aws:sns":
            sns = record.get("Sns")
            uploads.extend(parse_uploads(_json_object(sns.get("Message") if isinstance(sns, dict) else None)))
        else:
            s3_record = _s3_record(record)
            if s3_record.eventName.startswith("ObjectCreated:"):
                uploads.append(_from_notification(s3_record))
    return uploads


def _s3_record(record: Any) -> S3RecordModel:
    try:
        return parse({"Records": [record]}, model=S3Model).Records[0]
    except (TypeError, InvalidModelTypeError) as error:
        # Powertools' S3RecordModel pre-validator reads eventName and s3.object before validating them.
        raise ValueError(f"not an S3 notification record: {error}") from error


def _from_eventbridge(event: S3EventNotificationEventBridgeModel) -> ArtifactUploaded:
    detail = event.detail
    return ArtifactUploaded(
        artifact=ArtifactRef(
            bucket=detail.bucket.name,
            key=detail.object.key,  # EventBridge delivers the key as it is, not URL-encoded
            s3_version_id=detail.object.version_id or UNVERSIONED,
        ),
        uploaded_at=event.time,
        uploaded_by=detail.requester,
        event_id=event.id,
    )


def _from_notification(record: S3RecordModel) -> ArtifactUploaded:
    s3 = record.s3
    if s3.object is None:
        raise ValueError("S3 record has no object")
    request_id = record.responseElements.x_amz_request_id if record.responseElements else "unknown"
    return ArtifactUploaded(
        artifact=ArtifactRef(
            bucket=s3.bucket.name,
            key=unquote_plus(s3.object.key),  # notifications URL-encode keys, with '+' for a space
            s3_version_id=s3.object.versionId or UNVERSIONED,
        ),
        uploaded_at=record.eventTime,
        uploaded_by=record.userIdentity.principalId if record.userIdentity else None,
        # A notification has no event id: the request id and sequencer identify the upload.
        event_id=f"{request_id}:{s3.object.sequencer}",
    )


def _json_object(body: Any) -> dict[str, Any]:
    try:
        value = json.loads(body) if isinstance(body, str) else body
    except json.JSONDecodeError as error:
        raise ValueError(f"record body is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise ValueError("record body is not a JSON object")
    return value
