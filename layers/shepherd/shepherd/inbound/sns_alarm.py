"""An alarm's SNS notification delivered to the rollback function: the fields used, from the AWS
documentation's shapes (events/). Imported by the first SNS delivery (see `shepherd.inbound.rollback`)."""

from typing import Any, Literal

from pydantic import Field

from shepherd.inbound.alarm import AlarmTime
from shepherd.inbound.eventbridge import AwsShape
from shepherd.rollouts.rollback import AlarmStateChange


class _SnsDimension(AwsShape):
    name: str
    value: str


class _SnsMetric(AwsShape):
    Dimensions: list[_SnsDimension] = Field(default_factory=list)


class _SnsMetricStat(AwsShape):
    Metric: _SnsMetric = Field(default_factory=_SnsMetric)


class _SnsMetricQuery(AwsShape):
    """One query of a metric-math alarm: an expression (no dimensions) or a metric with its own."""

    MetricStat: _SnsMetricStat | None = None


class _SnsTrigger(AwsShape):
    Dimensions: list[_SnsDimension] = Field(default_factory=list)  # a single-metric alarm
    Metrics: list[_SnsMetricQuery] = Field(default_factory=list)  # a metric-math alarm

    def metric_dimensions(self) -> tuple[dict[str, str], ...]:
        """As `AlarmDetail.metric_dimensions`: each metric's dimensions (a single-metric alarm has one)."""
        metrics = [query.MetricStat.Metric.Dimensions for query in self.Metrics if query.MetricStat is not None]
        if not self.Metrics:
            metrics.insert(0, self.Dimensions)
        return tuple({d.name: d.value for d in dimensions} for dimensions in metrics)


class SnsAlarmMessage(AwsShape):
    AlarmName: str
    NewStateValue: str
    NewStateReason: str = ""
    StateChangeTime: AlarmTime | None = None
    Trigger: _SnsTrigger = Field(default_factory=_SnsTrigger)


class _SnsNotification(AwsShape):
    Type: Literal["Notification"]
    MessageId: str
    Message: str


class _SnsRecord(AwsShape):
    EventSource: Literal["aws:sns"]
    Sns: _SnsNotification


class SnsEvent(AwsShape):
    """An SNS delivery to Lambda (the fields used here), from the AWS documentation's shape."""

    Records: list[_SnsRecord] = Field(min_length=1)


def sns_alarm_changes(event: dict[str, Any]) -> list[AlarmStateChange]:
    """One state change per SNS record (the message is the alarm's notification, as JSON)."""
    changes = []
    for record in SnsEvent.model_validate(event).Records:
        message = SnsAlarmMessage.model_validate_json(str(record.Sns.Message))
        changes.append(
            AlarmStateChange(
                alarm_name=message.AlarmName,
                state=message.NewStateValue,
                reason=message.NewStateReason,
                reason_data=None,
                changed_at=message.StateChangeTime,
                metric_dimensions=message.Trigger.metric_dimensions(),
                event_id=record.Sns.MessageId,
                needs_confirmation=True,  # anyone the topic policy admits could have sent it
            )
        )
    return changes
