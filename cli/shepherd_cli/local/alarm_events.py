"""What CloudWatch emits when an alarm changes state, in its own shapes: the EventBridge event's
detail, the Lambda alarm action's event, and the SNS alarm notification (see the AWS documentation
and /work/shared/aws-events/)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shepherd_cli.local.alarm_changes import AlarmChange
from shepherd_cli.local.stack_description import Stack


def alarm_time(moment: datetime) -> str:
    """CloudWatch's format: 2026-11-20T10:02:41.490+0000."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def state_change_detail(change: AlarmChange, alarm: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The `detail` of "CloudWatch Alarm State Change" (and the alarm action's `alarmData`)."""
    previous = {
        "value": change.previous_state,
        "reason": change.previous_reason,
        "reasonData": change.previous_reason_data or "{}",
        "timestamp": alarm_time(change.previous_updated_at),
    }
    current = {"value": change.state, "reason": change.reason, "timestamp": alarm_time(now)}
    if change.reason_data is not None:
        current["reasonData"] = change.reason_data
    return {
        "alarmName": change.alarm_name,
        "state": current,
        "previousState": previous,
        "configuration": alarm_configuration(alarm),
    }


def lambda_alarm_event(alarm: dict[str, Any], detail: dict[str, Any], stack: Stack, now: datetime) -> dict[str, Any]:
    """The event an alarm's Lambda action invokes the function with."""
    return {
        "source": "aws.cloudwatch",
        "alarmArn": alarm["AlarmArn"],
        "accountId": stack.account_id,
        "time": alarm_time(now),
        "region": stack.region,
        "alarmData": detail,
    }


def _metric_stat(metric: dict[str, Any], period: Any, stat: Any) -> dict[str, Any]:
    return {
        "metric": {
            "namespace": metric.get("Namespace"),
            "name": metric.get("MetricName"),
            "dimensions": {dimension["Name"]: dimension["Value"] for dimension in metric.get("Dimensions", [])},
        },
        "period": period,
        "stat": stat,
    }


def alarm_configuration(alarm: dict[str, Any]) -> dict[str, Any]:
    """The alarm's `configuration` as CloudWatch puts it in its events."""
    metrics = []
    if alarm.get("MetricName"):
        stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
        metric_id = str(uuid.uuid5(uuid.NAMESPACE_URL, alarm["AlarmArn"]))
        metrics.append(
            {"id": metric_id, "metricStat": _metric_stat(alarm, alarm.get("Period"), stat), "returnData": True}
        )
    for query in alarm.get("Metrics", []):
        entry: dict[str, Any] = {"id": query["Id"], "returnData": query.get("ReturnData", True)}
        if "MetricStat" in query:
            stat = query["MetricStat"]
            entry["metricStat"] = _metric_stat(stat["Metric"], stat.get("Period"), stat.get("Stat"))
        if "Expression" in query:
            entry["expression"] = query["Expression"]
        if "Label" in query:
            entry["label"] = query["Label"]
        metrics.append(entry)
    configuration: dict[str, Any] = {"metrics": metrics}
    if alarm.get("AlarmDescription"):
        configuration["description"] = alarm["AlarmDescription"]
    return configuration


def sns_alarm_message(alarm: dict[str, Any], detail: dict[str, Any], stack: Stack) -> dict[str, Any]:
    """The JSON message CloudWatch publishes to an SNS alarm action."""
    return {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": stack.account_id,
        "AlarmConfigurationUpdatedTimestamp": alarm_time(alarm["AlarmConfigurationUpdatedTimestamp"]),
        "NewStateValue": detail["state"]["value"],
        "NewStateReason": detail["state"]["reason"],
        "StateChangeTime": detail["state"]["timestamp"],
        "Region": stack.region,
        "AlarmArn": alarm["AlarmArn"],
        "OldStateValue": detail["previousState"]["value"],
        "Trigger": {
            "MetricName": alarm.get("MetricName"),
            "Namespace": alarm.get("Namespace"),
            "StatisticType": "ExtendedStatistic" if alarm.get("ExtendedStatistic") else "Statistic",
            "Statistic": (alarm.get("Statistic") or "").upper() or None,
            "ExtendedStatistic": alarm.get("ExtendedStatistic"),
            "Unit": alarm.get("Unit"),
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm.get("Period"),
            "EvaluationPeriods": alarm.get("EvaluationPeriods"),
            "ComparisonOperator": alarm.get("ComparisonOperator"),
            "Threshold": alarm.get("Threshold"),
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": alarm.get("EvaluateLowSampleCountPercentile", ""),
        },
    }
