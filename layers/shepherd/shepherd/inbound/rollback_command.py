"""An operator's rollback command (`Model Rollback Requested`), as the domain's rollback request."""

from typing import Any

from shepherd.contracts import ModelRollbackRequested
from shepherd.inbound.eventbridge import EventBridgeEvent, parse_command
from shepherd.rollouts.rollback import RollbackRequest


class RollbackRequestedEvent(EventBridgeEvent):
    detail: ModelRollbackRequested


def rollback_requests(event: dict[str, Any]) -> list[RollbackRequest]:
    command = parse_command(event, RollbackRequestedEvent, ModelRollbackRequested.DETAIL_TYPE)
    detail = command.detail
    return [
        RollbackRequest(
            endpoint_name=detail.endpoint_name,
            reason=detail.reason,
            requested_by=detail.requested_by,
            to_version=detail.to_version,
            event_id=command.id,
            requested_at=command.time,
        )
    ]
