"""Parsing at the edge: raw Lambda events into typed domain inputs, with Powertools' models.

An event that does not parse raises `pydantic.ValidationError`: the invocation fails, so Lambda's
retries and the dead-letter queue keep it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.exceptions import InvalidModelTypeError
from aws_lambda_powertools.utilities.parser.models import (
    EventBridgeModel,
    S3EventNotificationEventBridgeModel,
    S3Model,
    S3RecordModel,
    SnsModel,
)
from pydantic import BaseModel, BeforeValidator, Field

from shepherd.contracts import ModelPromotionRequested, ModelRollbackRequested, ModelVersionApprovalRequested
from shepherd.registry.model import ArtifactRef
from shepherd.registry.service import ApprovalDecision, ArtifactUploaded
from shepherd.rollouts.rollback import AlarmStateChange, RollbackRequest
from shepherd.rollouts.service import PromotionRequest

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


# --- Alarms and rollback commands ------------------------------------------------------------------
# Powertools has no parser models for CloudWatch alarm events, so these are written from the real
# shapes in events/ (Lambda alarm action, EventBridge "CloudWatch Alarm State Change", SNS message).


def _alarm_time(value: Any) -> Any:
    """CloudWatch writes `2026-11-20T10:02:41.490+0000`: an offset without a colon."""
    if isinstance(value, str) and len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    return value


AlarmTime = Annotated[datetime, BeforeValidator(_alarm_time)]


class _AlarmState(BaseModel):
    value: str
    reason: str = ""
    reasonData: str | None = None
    timestamp: AlarmTime | None = None


class _Metric(BaseModel):
    dimensions: dict[str, str] = Field(default_factory=dict)


class _MetricStat(BaseModel):
    metric: _Metric = Field(default_factory=_Metric)


class _AlarmMetric(BaseModel):
    metricStat: _MetricStat | None = None


class _AlarmConfiguration(BaseModel):
    metrics: list[_AlarmMetric] = Field(default_factory=list)


class AlarmDetail(BaseModel):
    """`alarmData` of the Lambda action, and `detail` of the EventBridge event: the same fields."""

    alarmName: str
    state: _AlarmState
    configuration: _AlarmConfiguration = Field(default_factory=_AlarmConfiguration)

    def dimensions(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for metric in self.configuration.metrics:
            if metric.metricStat is not None:
                found.update(metric.metricStat.metric.dimensions)
        return found


class AlarmActionEvent(BaseModel):
    source: Literal["aws.cloudwatch"]
    alarmArn: str
    time: AlarmTime
    alarmData: AlarmDetail


class AlarmStateChangeEvent(EventBridgeModel):
    detail: AlarmDetail


class _SnsDimension(BaseModel):
    name: str
    value: str


class _SnsTrigger(BaseModel):
    Dimensions: list[_SnsDimension] = Field(default_factory=list)


class SnsAlarmMessage(BaseModel):
    AlarmName: str
    NewStateValue: str
    NewStateReason: str = ""
    StateChangeTime: AlarmTime | None = None
    Trigger: _SnsTrigger = Field(default_factory=_SnsTrigger)


class RollbackRequestedEvent(EventBridgeModel):
    detail: ModelRollbackRequested


def parse_rollback_trigger(event: dict[str, Any]) -> list[AlarmStateChange | RollbackRequest]:
    """Any of the four ways the rollback function is invoked, as domain inputs."""
    if not isinstance(event, dict):
        raise ValueError(f"expected a JSON object, got {type(event).__name__}")
    try:
        return _rollback_trigger(event)
    except (TypeError, AttributeError) as error:  # Powertools' SNS pre-validator on a damaged record
        raise ValueError(f"malformed rollback trigger: {error}") from error


def _rollback_trigger(event: dict[str, Any]) -> list[AlarmStateChange | RollbackRequest]:
    if "alarmData" in event:
        action = AlarmActionEvent.model_validate(event)
        return [_alarm_change(action.alarmData, action.alarmArn + "@" + action.time.isoformat())]
    if "Records" in event:
        changes: list[AlarmStateChange | RollbackRequest] = []
        for record in parse(event, model=SnsModel).Records:
            message = SnsAlarmMessage.model_validate_json(str(record.Sns.Message))
            changes.append(
                AlarmStateChange(
                    alarm_name=message.AlarmName,
                    state=message.NewStateValue,
                    reason=message.NewStateReason,
                    reason_data=None,
                    changed_at=message.StateChangeTime,
                    dimensions={d.name: d.value for d in message.Trigger.Dimensions},
                    event_id=record.Sns.MessageId,
                )
            )
        return changes
    if event.get("detail-type") == ModelRollbackRequested.DETAIL_TYPE:
        command = parse(event, model=RollbackRequestedEvent)
        detail = command.detail
        return [
            RollbackRequest(
                endpoint_name=detail.endpoint_name,
                reason=detail.reason,
                requested_by=detail.requested_by,
                to_version=detail.to_version,
                event_id=command.id,
                requested_at=command.time,
            )
        ]
    state_change = parse(event, model=AlarmStateChangeEvent)
    _expect_detail_type(state_change, "CloudWatch Alarm State Change")
    return [_alarm_change(state_change.detail, state_change.id)]


def _alarm_change(detail: AlarmDetail, event_id: str) -> AlarmStateChange:
    return AlarmStateChange(
        alarm_name=detail.alarmName,
        state=detail.state.value,
        reason=detail.state.reason,
        reason_data=detail.state.reasonData,
        changed_at=detail.state.timestamp,
        dimensions=detail.dimensions(),
        event_id=event_id,
    )
