"""The rollback function's triggers: CloudWatch alarms in three shapes, and operator commands."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from shepherd.contracts import ModelRollbackRequested
from shepherd.inbound.eventbridge import AwsShape, EventBridgeEvent, expect_detail_type, parse_command
from shepherd.rollouts.rollback import AlarmStateChange, RollbackRequest

# --- Alarms and rollback commands ------------------------------------------------------------------
# Written from the real shapes in events/ (Lambda alarm action, EventBridge "CloudWatch Alarm State
# Change", SNS message); Powertools has no models for the first and third, and its parser package is
# too heavy to import for the envelopes alone (see shepherd.inbound.eventbridge).


def _alarm_time(value: Any) -> Any:
    """CloudWatch writes `2026-11-20T10:02:41.490+0000`: an offset without a colon."""
    if isinstance(value, str) and len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    return value


AlarmTime = Annotated[datetime, BeforeValidator(_alarm_time)]


class _AlarmState(AwsShape):
    value: str
    reason: str = ""
    reasonData: str | None = None
    timestamp: AlarmTime | None = None


class _Metric(AwsShape):
    dimensions: dict[str, str] = Field(default_factory=dict)


class _MetricStat(AwsShape):
    metric: _Metric = Field(default_factory=_Metric)


class _AlarmMetric(AwsShape):
    metricStat: _MetricStat | None = None


class _AlarmConfiguration(AwsShape):
    metrics: list[_AlarmMetric] = Field(default_factory=list)


class AlarmDetail(AwsShape):
    """`alarmData` of the Lambda action, and `detail` of the EventBridge event: the same fields."""

    alarmName: str
    state: _AlarmState
    configuration: _AlarmConfiguration = Field(default_factory=_AlarmConfiguration)

    def metric_dimensions(self) -> tuple[dict[str, str], ...]:
        """Each metric's dimensions, in the alarm's order (a metric-math alarm has several metrics)."""
        return tuple(
            dict(metric.metricStat.metric.dimensions)
            for metric in self.configuration.metrics
            if metric.metricStat is not None
        )


class AlarmActionEvent(AwsShape):
    source: Literal["aws.cloudwatch"]
    alarmArn: str
    time: AlarmTime
    alarmData: AlarmDetail


class AlarmStateChangeEvent(EventBridgeEvent):
    detail: AlarmDetail


class RollbackRequestedEvent(EventBridgeEvent):
    detail: ModelRollbackRequested


def parse_rollback_trigger(event: dict[str, Any]) -> list[AlarmStateChange | RollbackRequest]:
    """Any of the four ways the rollback function is invoked, as domain inputs."""
    if not isinstance(event, dict):
        raise ValueError(f"expected a JSON object, got {type(event).__name__}")
    try:
        return _rollback_trigger(event)
    except (TypeError, AttributeError) as error:  # a damaged record (found by tests/unit/test_fuzz_parsers.py)
        raise ValueError(f"malformed rollback trigger: {error}") from error


def _rollback_trigger(event: dict[str, Any]) -> list[AlarmStateChange | RollbackRequest]:
    if "alarmData" in event:
        action = AlarmActionEvent.model_validate(event)
        return [_alarm_change(action.alarmData, action.alarmArn + "@" + action.time.isoformat())]
    if "Records" in event:
        # One of three alarm shapes: its models are created by the first SNS delivery, not at cold start.
        from shepherd.inbound.sns_alarm import sns_alarm_changes

        return list(sns_alarm_changes(event))
    if event.get("detail-type") == ModelRollbackRequested.DETAIL_TYPE:
        command = parse_command(event, RollbackRequestedEvent, ModelRollbackRequested.DETAIL_TYPE)
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
    state_change = AlarmStateChangeEvent.model_validate(event)
    expect_detail_type(state_change, "CloudWatch Alarm State Change")
    return [_alarm_change(state_change.detail, state_change.id)]


def _alarm_change(detail: AlarmDetail, event_id: str) -> AlarmStateChange:
    return AlarmStateChange(
        alarm_name=detail.alarmName,
        state=detail.state.value,
        reason=detail.state.reason,
        reason_data=detail.state.reasonData,
        changed_at=detail.state.timestamp,
        metric_dimensions=detail.metric_dimensions(),
        event_id=event_id,
    )
