"""What the alarm action and the EventBridge state change share: the alarm's detail, and its time.

Written from the real shapes in events/; Powertools has no model for the alarm action, and its parser
package is too heavy to import for the envelopes alone (see shepherd.inbound.eventbridge).
"""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from shepherd.inbound.eventbridge import AwsShape
from shepherd.rollouts.rollback import AlarmStateChange


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


def alarm_change(detail: AlarmDetail, event_id: str) -> AlarmStateChange:
    return AlarmStateChange(
        alarm_name=detail.alarmName,
        state=detail.state.value,
        reason=detail.state.reason,
        reason_data=detail.state.reasonData,
        changed_at=detail.state.timestamp,
        metric_dimensions=detail.metric_dimensions(),
        event_id=event_id,
    )
