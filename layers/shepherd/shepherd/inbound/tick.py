"""The controller's ticks: any EventBridge event, as ("now", event id); and which event is rather the
resume command (parsed by `inbound.resume`, imported only then)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shepherd.inbound.eventbridge import EventBridgeEvent

RESUME_DETAIL_TYPE = "Model Rollout Resume Requested"  # contracts.ModelRolloutResumeRequested.DETAIL_TYPE


def is_resume(event: dict[str, Any]) -> bool:
    """Whether the controller was invoked by the resume command (else: a tick, whatever its shape)."""
    return isinstance(event, dict) and event.get("detail-type") == RESUME_DETAIL_TYPE


def parse_tick(event: dict[str, Any]) -> tuple[datetime, str]:
    """("now", event id) from any EventBridge event: the schedule's or one of Shepherd's own.

    The controller takes "now" from the event's `time`, so a rollout can be replayed deterministically.
    """
    parsed = EventBridgeEvent.model_validate(event)
    return parsed.time, parsed.id
