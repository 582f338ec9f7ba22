"""`Model Version Approval Requested` commands, as `ApprovalDecision`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from shepherd.contracts import ModelVersionApprovalRequested
from shepherd.inbound.eventbridge import expect_detail_type
from shepherd.registry.service import ApprovalDecision


class ApprovalRequestedEvent(EventBridgeModel):
    detail: ModelVersionApprovalRequested


def parse_approval(event: dict[str, Any]) -> ApprovalDecision:
    parsed = parse(event, model=ApprovalRequestedEvent)
    expect_detail_type(parsed, ModelVersionApprovalRequested.DETAIL_TYPE)
    detail = parsed.detail
    return ApprovalDecision(
        model_name=detail.model_name,
        version=detail.version,
        decision=detail.decision,
        requested_by=detail.requested_by,
        reason=detail.reason,
        event_id=parsed.id,
    )
