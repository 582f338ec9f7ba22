"""`Model Rollout Resume Requested` commands (to the controller function), as `ResumeRequest`."""

from __future__ import annotations

from typing import Any

from shepherd.contracts import ModelRolloutResumeRequested
from shepherd.inbound.eventbridge import EventBridgeEvent, parse_command
from shepherd.rollouts.hold import ResumeRequest


class ResumeRequestedEvent(EventBridgeEvent):
    detail: ModelRolloutResumeRequested


def parse_resume(event: dict[str, Any]) -> ResumeRequest:
    parsed = parse_command(event, ResumeRequestedEvent, ModelRolloutResumeRequested.DETAIL_TYPE)
    detail = parsed.detail
    return ResumeRequest(
        endpoint_name=detail.endpoint_name,
        rollout_id=detail.rollout_id,
        requested_by=detail.requested_by,
        reason=detail.reason,
        event_id=parsed.id,
        requested_at=parsed.time,
    )
