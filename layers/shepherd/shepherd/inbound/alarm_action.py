"""An alarm's Lambda action: CloudWatch invokes the rollback function directly with `alarmData`."""

from typing import Any, Literal

from shepherd.inbound.alarm import AlarmDetail, AlarmTime, alarm_change
from shepherd.inbound.eventbridge import AwsShape
from shepherd.rollouts.rollback import AlarmStateChange


class AlarmActionEvent(AwsShape):
    source: Literal["aws.cloudwatch"]
    alarmArn: str
    time: AlarmTime
    alarmData: AlarmDetail


def alarm_action_changes(event: dict[str, Any]) -> list[AlarmStateChange]:
    action = AlarmActionEvent.model_validate(event)
    # The action has no event id: the alarm and the time of its evaluation name the delivery.
    return [alarm_change(action.alarmData, action.alarmArn + "@" + action.time.isoformat())]
