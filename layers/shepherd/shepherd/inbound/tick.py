"""The controller's ticks: any EventBridge event, as ("now", event id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shepherd.inbound.eventbridge import EventBridgeEvent


def parse_tick(event: dict[str, Any]) -> tuple[datetime, str]:
    """("now", event id) from any EventBridge event: the schedule's or one of Shepherd's own.

    The controller takes "now" from the event's `time`, so a rollout can be replayed deterministically.
    """
    parsed = EventBridgeEvent.model_validate(event)
    return parsed.time, parsed.id
