"""Every alarm state change made in the emulator, whoever made it, seen by local mode.

moto changes an alarm's state when asked (``SetAlarmState`` from the AWS CLI, boto3, or the pump
itself) and emits nothing. ``install()`` wraps moto's ``Alarm.update_state`` so each change is
also handed to the listeners: local mode's pump queues it and makes CloudWatch's three deliveries
(EventBridge, the alarm action, SNS) from its own thread. Listeners must only record the change:
they run inside moto's request handling, where a call back into the emulator could wait on a lock
the pump holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.cloudwatch.models import Alarm as FakeAlarm


@dataclass(frozen=True)
class AlarmChange:
    """One state change of one metric alarm, with the state it left."""

    alarm_name: str
    alarm_arn: str
    state: str
    reason: str
    reason_data: str | None
    previous_state: str
    previous_reason: str
    previous_reason_data: str | None
    previous_updated_at: datetime


Listener = Callable[[AlarmChange], None]

_lock = threading.Lock()
_listeners: list[Listener] = []
_moto_update_state = FakeAlarm.update_state


def install() -> None:
    """Wrap moto's alarm state update. Idempotent."""
    if FakeAlarm.update_state is not _update_state:
        FakeAlarm.update_state = _update_state  # type: ignore[method-assign]


def subscribe(listener: Listener) -> None:
    with _lock:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def _update_state(self: FakeAlarm, reason: str, reason_data: Any, state_value: str) -> None:
    change = AlarmChange(
        alarm_name=self.name,
        alarm_arn=self.alarm_arn,
        state=state_value,
        reason=reason,
        reason_data=reason_data,
        previous_state=self.state_value,
        previous_reason=self.state_reason or "",
        previous_reason_data=self.state_reason_data,
        previous_updated_at=self.state_updated_timestamp,
    )
    _moto_update_state(self, reason, reason_data, state_value)
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(change)
