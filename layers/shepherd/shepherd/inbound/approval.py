"""`Model Version Approval Requested` commands, as `ApprovalDecision`."""

from __future__ import annotations

from typing import Any

from shepherd.contracts import ModelVersionApprovalRequested
from shepherd.inbound.eventbridge import EventBridgeEvent, parse_command
from shepherd.registry.approval import ApprovalDecision


class ApprovalRequestedEvent(EventBridgeEvent):
    detail: ModelVersionApprovalRequested


def parse_approval(event: dict[str, Any]) -> ApprovalDecision:
    parsed = parse_command(event, ApprovalRequestedEvent, ModelVersionApprovalRequested.DETAIL_TYPE)
    detail = parsed.detail
    return ApprovalDecision(
        model_name=detail.model_name,
        version=detail.version,
        decision=detail.decision,
        requested_by=detail.requested_by,
        reason=detail.reason,
        event_id=parsed.id,
    )
