"""Parsing the ``Model Rollout Resume Requested`` command (its own module: the edge parsers are one
module per function's input, see ``inbound``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from shepherd.contracts import ModelRolloutResumeRequested
from shepherd.rollouts.service import ResumeRequest


class ResumeRequestedEvent(EventBridgeModel):
    detail: ModelRolloutResumeRequested


def is_resume(event: dict[str, Any]) -> bool:
    """Whether the controller was invoked by the resume command (else: a tick, whatever its shape)."""
    return isinstance(event, dict) and event.get("detail-type") == ModelRolloutResumeRequested.DETAIL_TYPE


def parse_resume(event: dict[str, Any]) -> ResumeRequest:
    parsed = parse(event, model=ResumeRequestedEvent)
    detail = parsed.detail
    return ResumeRequest(
        endpoint_name=detail.endpoint_name,
        rollout_id=detail.rollout_id,
        requested_by=detail.requested_by,
        reason=detail.reason,
        event_id=parsed.id,
        requested_at=parsed.time,
    )
