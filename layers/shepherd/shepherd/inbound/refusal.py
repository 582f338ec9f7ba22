"""Commands that break their contract are answered, not retried: `Command Refused`.

A `MalformedCommand` raised while a handler parses its event would otherwise fail the invocation;
Lambda would retry it twice (the same answer each time) and park it in the dead-letter queue, and
whoever sent it would never hear why. Instead the refusal is announced with the command's event id
and the failing fields, logged once, and the invocation ends normally.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from shepherd.inbound.eventbridge import MalformedCommand

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def answers_malformed_commands(handler: Handler) -> Handler:
    """Wrap a command handler: a malformed command is announced as refused instead of raising."""

    @functools.wraps(handler)
    def wrapper(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return handler(event, context)
        except MalformedCommand as malformed:
            from shepherd import bootstrap  # the wiring, only on this rare path
            from shepherd.contracts import CommandRefused

            bootstrap.publisher().publish(
                CommandRefused(
                    command_id=malformed.command_id,
                    command=malformed.detail_type,
                    source=malformed.source,
                    reason=malformed.reason,
                )
            )
            logger.warning("command refused: %s", malformed, extra={"command_id": malformed.command_id})
            return {"result": "refused", "reason": malformed.reason, "command_id": malformed.command_id}

    return wrapper
