"""`Model Promotion Requested` commands, as `PromotionRequest`."""

from __future__ import annotations

from typing import Any

from shepherd.contracts import ModelPromotionRequested
from shepherd.inbound.eventbridge import EventBridgeEvent, parse_command
from shepherd.rollouts.promotion import PromotionRequest


class PromotionRequestedEvent(EventBridgeEvent):
    detail: ModelPromotionRequested


def parse_promotion(event: dict[str, Any]) -> PromotionRequest:
    parsed = parse_command(event, PromotionRequestedEvent, ModelPromotionRequested.DETAIL_TYPE)
    detail = parsed.detail
    return PromotionRequest(
        model_name=detail.model_name,
        version=detail.version,
        endpoint_name=detail.endpoint_name,
        strategy=detail.strategy,
        alarms=tuple(detail.alarms),
        instance_type=detail.instance_type,
        initial_instance_count=detail.initial_instance_count,
        requested_by=detail.requested_by,
        reason=detail.reason,
        allow_rolled_back=detail.allow_rolled_back,
        replace_model=detail.replace_model,
        headroom=detail.headroom,
        min_capacity=detail.min_capacity,
        max_capacity=detail.max_capacity,
        event_id=parsed.id,
        requested_at=parsed.time,
    )
