"""Parsing at the edge: raw Lambda events into typed domain inputs, with Powertools' models.

An event that does not parse raises `pydantic.ValidationError`: the invocation fails, so Lambda's
retries and the dead-letter queue keep it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    EventBridgeModel,
    S3EventNotificationEventBridgeModel,
    S3Model,
    S3RecordModel,
)

from shepherd.contracts import ModelPromotionRequested, ModelVersionApprovalRequested
from shepherd.registry.model import ArtifactRef
from shepherd.registry.service import ApprovalDecision, ArtifactUploaded
from shepherd.rollouts.service import PromotionRequest

UNVERSIONED = "null"  # what S3 calls the version of an object in an unversioned bucket


def parse_uploads(event: dict[str, Any]) -> list[ArtifactUploaded]:
    """`Object Created` via EventBridge, an S3 notification, or either wrapped in SQS or SNS records."""
    if "Records" not in event:
        if event.get("Event") == "s3:TestEvent":  # sent once when a notification is configured
            return []
        return [_from_eventbridge(parse(event, model=S3EventNotificationEventBridgeModel))]
    uploads: list[ArtifactUploaded] = []
    for record in event["Records"]:
        source = (record.get("eventSource") or record.get("EventSource")) if isinstance(record, dict) else None
        if source == "aws:sqs":
            uploads.extend(parse_uploads(_json_object(record.get("body"))))
        elif source == "aws:sns":
            uploads.extend(parse_uploads(_json_object(record.get("Sns", {}).get("Message"))))
        else:
            s3_record = parse({"Records": [record]}, model=S3Model).Records[0]
            if s3_record.eventName.startswith("ObjectCreated:"):
                uploads.append(_from_notification(s3_record))
    return uploads


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


class ApprovalRequestedEvent(EventBridgeModel):
    detail: ModelVersionApprovalRequested


def parse_approval(event: dict[str, Any]) -> ApprovalDecision:
    parsed = parse(event, model=ApprovalRequestedEvent)
    _expect_detail_type(parsed, ModelVersionApprovalRequested.DETAIL_TYPE)
    detail = parsed.detail
    return ApprovalDecision(
        model_name=detail.model_name,
        version=detail.version,
        decision=detail.decision,
        requested_by=detail.requested_by,
        reason=detail.reason,
        event_id=parsed.id,
    )


class PromotionRequestedEvent(EventBridgeModel):
    detail: ModelPromotionRequested


def parse_promotion(event: dict[str, Any]) -> PromotionRequest:
    parsed = parse(event, model=PromotionRequestedEvent)
    _expect_detail_type(parsed, ModelPromotionRequested.DETAIL_TYPE)
    detail = parsed.detail
    return PromotionRequest(
        model_name=detail.model_name,
        version=detail.version,
        endpoint_name=detail.endpoint_name,
        strategy=detail.strategy,
        alarms=tuple(detail.alarms),
        instance_type=detail.instance_type,
        initial_instance_count=detail.initial_instance_count,
        requested_by=detail.requested_by,
        reason=detail.reason,
        event_id=parsed.id,
        requested_at=parsed.time,
    )


def parse_tick(event: dict[str, Any]) -> tuple[datetime, str]:
    """("now", event id) from any EventBridge event: the schedule's or one of Shepherd's own.

    The controller takes "now" from the event's `time`, so a rollout can be replayed deterministically.
    """
    parsed = parse(event, model=EventBridgeModel)
    return parsed.time, parsed.id


def _expect_detail_type(event: EventBridgeModel, detail_type: str) -> None:
    # The rule already filters on it; this guards a handler wired to the wrong rule.
    if event.detail_type != detail_type:
        raise ValueError(f"expected detail-type {detail_type!r}, got {event.detail_type!r}")
