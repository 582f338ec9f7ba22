"""Serialise moto's DynamoDB requests, as DynamoDB itself makes each request atomic.

moto's DynamoDB backend has no locking: two threads running `TransactWriteItems` at once can both pass
the same condition (or crash deep-copying a table mid-write). Real DynamoDB never does that, and
Shepherd's exactly-once registration relies on it, so local mode and the concurrency tests run every
DynamoDB request under one lock. Requests from many client threads still interleave request by
request, which is what the tests need to exercise.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

_LOCK = threading.RLock()
_installed = False


def install() -> None:
    """Idempotent: wrap `DynamoHandler.call_action` once."""
    global _installed
    if _installed:
        return
    original = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with _LOCK:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    _installed = True
