"""An alarm's state change delivered by EventBridge (`CloudWatch Alarm State Change`)."""

from typing import Any

from shepherd.inbound.alarm import AlarmDetail, alarm_change
from shepherd.inbound.eventbridge import EventBridgeEvent, expect_detail_type
from shepherd.rollouts.rollback import AlarmStateChange

DETAIL_TYPE = "CloudWatch Alarm State Change"


class AlarmStateChangeEvent(EventBridgeEvent):
    detail: AlarmDetail


def alarm_state_changes(event: dict[str, Any]) -> list[AlarmStateChange]:
    state_change = AlarmStateChangeEvent.model_validate(event)
    expect_detail_type(state_change, DETAIL_TYPE)
    return [alarm_change(state_change.detail, state_change.id)]
