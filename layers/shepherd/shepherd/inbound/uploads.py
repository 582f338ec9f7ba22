"""Upload events: S3 `Object Created` in every delivery shape, as `ArtifactUploaded`.

Shapes: the EventBridge event; an S3 notification (`Records` of `aws:s3`); either inside SQS records or
SNS records; and the S3 notification inside an SNS envelope inside an SQS body (S3 -> SNS -> SQS without
raw message delivery). Anything that is not an object creation (`Object Deleted`, `Object Restore
Completed`, `ObjectRemoved:*`, `LifecycleExpiration:*`, `Replication:*`, ...) is ignored with a log line.

The models are written here from the AWS documentation's shapes rather than taken from Powertools'
parser: importing any of those imports every model Powertools has (about 40 ms at every cold start).
"""

import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from pydantic import Field

from shepherd.inbound.eventbridge import AwsShape, EventBridgeEvent
from shepherd.registry.model import ArtifactRef
from shepherd.registry.registration import UNVERSIONED, ArtifactUploaded

logger = logging.getLogger(__name__)
CREATED_DETAIL_TYPE = "Object Created"
CREATED_EVENT_PREFIX = "ObjectCreated:"


class _Bucket(AwsShape):
    name: str


class _EventBridgeObject(AwsShape):
    key: str
    version_id: str | None = Field(default=None, alias="version-id")


class _EventBridgeDetail(AwsShape):
    bucket: _Bucket
    object: _EventBridgeObject
    requester: str | None = None


class _S3EventBridgeEvent(EventBridgeEvent):
    detail: _EventBridgeDetail


class _NotificationObject(AwsShape):
    key: str
    versionId: str | None = None
    sequencer: str | None = None


class _NotificationS3(AwsShape):
    bucket: _Bucket
    object: _NotificationObject


class _UserIdentity(AwsShape):
    principalId: str


class _ResponseElements(AwsShape):
    request_id: str = Field(alias="x-amz-request-id")


class _NotificationRecord(AwsShape):
    eventName: str
    eventTime: datetime
    userIdentity: _UserIdentity | None = None
    responseElements: _ResponseElements | None = None
    s3: _NotificationS3


def parse_uploads(event: dict[str, Any]) -> list[ArtifactUploaded]:
    """`Object Created` via EventBridge, an S3 notification, or either wrapped in SQS or SNS records."""
    # Found by tests/unit/test_fuzz_parsers.py: a non-object event, non-list Records, a non-object Sns
    # or a malformed S3 record raised TypeError/AttributeError instead of a validation error.
    if not isinstance(event, dict):
        raise ValueError(f"an upload event is a JSON object, not {type(event).__name__}")
    if "Records" not in event:
        if event.get("Event") == "s3:TestEvent":  # sent once when a notification is configured
            return []
        if "detail-type" not in event and event.get("Type") == "Notification":
            return parse_uploads(_json_object(event.get("Message")))  # an SNS envelope, from an SQS body
        if "detail-type" not in event:
            raise ValueError(f"not an upload event: an object with keys {sorted(event)[:8]}")
        return _from_eventbridge(_S3EventBridgeEvent.model_validate(event))
    return _from_records(event["Records"])


def _from_records(records: Any) -> list[ArtifactUploaded]:
    if not isinstance(records, list):
        raise ValueError("Records is not a list")
    uploads: list[ArtifactUploaded] = []
    for record in records:
        if not isinstance(record, dict):
            raise ValueError("a record is not a JSON object")
        source = record.get("eventSource") or record.get("EventSource")
        if source == "aws:sqs":
            uploads.extend(parse_uploads(_sqs_body(record.get("body"))))
        elif source == "aws:sns":
            sns = record.get("Sns")
            uploads.extend(parse_uploads(_json_object(sns.get("Message") if isinstance(sns, dict) else None)))
        elif source == "aws:s3":
            uploads.extend(_from_notification(record))
        else:
            raise ValueError(f"not an S3, SQS or SNS record: eventSource {source!r}")
    return uploads


def _from_eventbridge(event: _S3EventBridgeEvent) -> list[ArtifactUploaded]:
    detail = event.detail
    if event.source != "aws.s3" or event.detail_type != CREATED_DETAIL_TYPE:
        logger.info(
            "ignored: not an object creation",
            extra={"source": event.source, "detail_type": event.detail_type, "key": detail.object.key},
        )
        return []
    # EventBridge delivers the key URL-encoded as the notifications do, for some keys at least (Powertools
    # decodes it with unquote_plus too). The registration tries the decoded key first and falls back to
    # the key as delivered if no such object exists.
    decoded = unquote_plus(detail.object.key)
    return [
        ArtifactUploaded(
            artifact=ArtifactRef(
                bucket=detail.bucket.name,
                key=decoded,
                s3_version_id=detail.object.version_id or UNVERSIONED,
            ),
            uploaded_at=event.time,
            uploaded_by=detail.requester,
            event_id=event.id,
            key_as_delivered=detail.object.key if decoded != detail.object.key else None,
        )
    ]


def _from_notification(raw: dict[str, Any]) -> list[ArtifactUploaded]:
    record = _NotificationRecord.model_validate(raw)
    s3 = record.s3
    if not record.eventName.startswith(CREATED_EVENT_PREFIX):
        logger.info("ignored: not an object creation", extra={"event_name": record.eventName, "key": s3.object.key})
        return []
    request_id = record.responseElements.request_id if record.responseElements else "unknown"
    return [
        ArtifactUploaded(
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
    ]


def _sqs_body(body: Any) -> dict[str, Any]:
    value = _json_object(body)
    if value.get("Type") == "SubscriptionConfirmation":
        raise ValueError("the SQS body is an SNS subscription confirmation, not an S3 event: confirm the subscription")
    return value


def _json_object(body: Any) -> dict[str, Any]:
    try:
        value = json.loads(body) if isinstance(body, str) else body
    except json.JSONDecodeError as error:
        raise ValueError(f"record body is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise ValueError("record body is not a JSON object")
    return value
