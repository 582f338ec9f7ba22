"""The rollback function's triggers: which of its four shapes an event is, and that shape's parser.

CloudWatch alarms arrive in three shapes (the alarm's Lambda action, EventBridge's `CloudWatch Alarm
State Change`, an SNS notification), operators' commands in a fourth; each has its own module. A shape's
module is imported by its first delivery, not at cold start: a function sees one or two of the four.
"""

from typing import Any, Literal

from shepherd.contracts import ModelRollbackRequested
from shepherd.rollouts.rollback import AlarmStateChange, RollbackRequest

TriggerShape = Literal["alarm_action", "sns_alarm", "rollback_command", "alarm_state_change"]


def trigger_shape(event: dict[str, Any]) -> TriggerShape:
    """Which shape `event` has, by the field only that shape has. The state change is the rest: its
    parser refuses an event that is not one."""
    if "alarmData" in event:
        return "alarm_action"
    if "Records" in event:
        return "sns_alarm"
    if event.get("detail-type") == ModelRollbackRequested.DETAIL_TYPE:
        return "rollback_command"
    return "alarm_state_change"


def parse_rollback_trigger(event: dict[str, Any]) -> list[AlarmStateChange | RollbackRequest]:
    """Any of the four ways the rollback function is invoked, as domain inputs."""
    if not isinstance(event, dict):
        raise ValueError(f"expected a JSON object, got {type(event).__name__}")
    try:
        return _parse(trigger_shape(event), event)
    except (TypeError, AttributeError) as error:  # a damaged record (found by tests/unit/test_fuzz_parsers.py)
        raise ValueError(f"malformed rollback trigger: {error}") from error


def _parse(shape: TriggerShape, event: dict[str, Any]) -> list[AlarmStateChange | RollbackRequest]:
    if shape == "alarm_action":
        from shepherd.inbound.alarm_action import alarm_action_changes

        return list(alarm_action_changes(event))
    if shape == "sns_alarm":
        from shepherd.inbound.sns_alarm import sns_alarm_changes

        return list(sns_alarm_changes(event))
    if shape == "rollback_command":
        from shepherd.inbound.rollback_command import rollback_requests

        return list(rollback_requests(event))
    from shepherd.inbound.alarm_state_change import alarm_state_changes

    return list(alarm_state_changes(event))
