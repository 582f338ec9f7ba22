"""An alarm notification CloudWatch cannot vouch for is not acted on.

An alarm reaches the rollback function three ways. The alarm's own Lambda action and EventBridge's
`CloudWatch Alarm State Change` come from CloudWatch itself (the invoke permission names the alarm
service; `aws.*` sources cannot be put by anyone else). An SNS notification is only as trustworthy
as the topic's publishers: the topic policy admits CloudWatch alone, but an administrator may change
it, and a forged message would roll back any rollout. So an SNS alarm is confirmed first: the alarm
must exist and be in ALARM when read (one DescribeAlarms), and the rollouts it acts on are found
by the alarm's own dimensions as CloudWatch describes them, not by the message's. A real alarm that
is already back to OK by then is not acted on either; the controller still holds on it while it
fires, and its next ALARM rolls back (its other channels too).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec.structs

from shepherd.rollouts.ports import EndpointAuditEntry, RecordRefusal

if TYPE_CHECKING:
    from shepherd.rollouts.ports import AlarmControl
    from shepherd.rollouts.record import Rollout
    from shepherd.rollouts.rollback import AlarmStateChange

REFUSED_ALARM = "refused alarm"  # the audit action: listed by `shepherd rejections` with refused commands


def confirmed(alarms: AlarmControl, change: AlarmStateChange) -> AlarmStateChange | str:
    """`change` as CloudWatch confirms it, or why it is not acted on.

    Confirmed means the named alarm exists and is in ALARM; and the rollouts it acts on are then found
    by the alarm's own dimensions as CloudWatch describes them, never by the message's (a forger could
    otherwise name a real firing alarm and point it at any endpoint and variant).
    """
    if not change.needs_confirmation:
        return change
    described = alarms.described(change.alarm_name)
    if described is not None and described.state == "ALARM":
        return msgspec.structs.replace(change, metric_dimensions=described.metric_dimensions)
    now = "does not exist" if described is None else f"is {described.state}, not ALARM,"
    return (
        f"{change.alarm_name} {now} in CloudWatch: an alarm notification CloudWatch does not confirm "
        "(forged on the topic, or already recovered) rolls nothing back"
    )


def refused_alarm(rollout: Rollout, change: AlarmStateChange, why: str, now: datetime) -> RecordRefusal:
    """The refusal kept in the endpoint's audit trail (written again as is by a redelivery)."""
    return RecordRefusal(
        EndpointAuditEntry(
            endpoint_name=rollout.endpoint_name,
            rollout_id=rollout.rollout_id,
            action=REFUSED_ALARM,
            model_name=rollout.model_name,
            version=rollout.version,
            detail=why,
            actor=change.alarm_name,
            at=now,
            event_id=change.event_id,
        )
    )
