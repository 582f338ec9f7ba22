"""What every EventBridge command parser checks."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel


def expect_detail_type(event: EventBridgeModel, detail_type: str) -> None:
    # The rule already filters on it; this guards a handler wired to the wrong rule.
    if event.detail_type != detail_type:
        raise ValueError(f"expected detail-type {detail_type!r}, got {event.detail_type!r}")
