"""Raw events as Lambda receives them, built from the samples in events/ (real AWS shapes)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tests.handlers.conftest import sample_event

ALARM_SHAPES = ("lambda-action", "eventbridge", "sns")


def _alarm_stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def alarm_event(
    shape: str, alarm_name: str, state: str, at: datetime, dimensions: dict[str, str], event_id: str
) -> dict[str, Any]:
    """An alarm state change in one of its three shapes: Lambda alarm action, EventBridge, SNS."""
    reason = "Threshold Crossed: 3 out of the last 3 datapoints were greater than the threshold (5.0)."
    if shape == "sns":
        event = sample_event("cloudwatch-alarm.sns.json")
        record = event["Records"][0]["Sns"]
        message = json.loads(record["Message"])
        message.update(
            AlarmName=alarm_name, NewStateValue=state, NewStateReason=reason, StateChangeTime=_alarm_stamp(at)
        )
        message["Trigger"]["Dimensions"] = [{"name": name, "value": value} for name, value in dimensions.items()]
        record["Message"] = json.dumps(message)
        record["MessageId"] = event_id
        return event
    if shape == "lambda-action":
        event = sample_event("cloudwatch-alarm-lambda-action.json")
        event["alarmArn"] = f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{alarm_name}"
        event["time"] = _alarm_stamp(at)
        detail = event["alarmData"]
        detail["alarmName"] = alarm_name
    else:
        event = sample_event("cloudwatch-alarm-state-change.eventbridge.json")
        event["id"] = event_id
        event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = event["detail"]
        detail["alarmName"] = alarm_name
    detail["state"].update(value=state, reason=reason, timestamp=_alarm_stamp(at))
    detail["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = dimensions
    return event


def rollback_command(endpoint_name: str, to_version: int | None, at: datetime, event_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"endpoint_name": endpoint_name, "reason": "customers complain", "requested_by": "bob"}
    if to_version is not None:
        detail["to_version"] = to_version
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Model Rollback Requested",
        "source": "acme.ml-platform",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }
