"""Serialise moto's DynamoDB requests, as DynamoDB itself makes each request atomic.

moto's DynamoDB backend has no locking: two threads running `TransactWriteItems` at once can both pass
the same condition (or crash deep-copying a table mid-write). Real DynamoDB never does that, and
Shepherd's exactly-once registration relies on it, so local mode and the concurrency tests run every
DynamoDB request under one lock. Requests from many client threads still interleave request by
request, which is what the tests need to exercise.
"""

from __future__ import annotations

import threading

from moto.dynamodb.responses import DynamoHandler

from shepherd_cli.local.atomic_requests import serialise

_LOCK = threading.RLock()


def install() -> None:
    """Idempotent: wrap `DynamoHandler.call_action` once."""
    serialise(DynamoHandler, _LOCK)
