"""Announcements on the Shepherd bus."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import raise_transient_or_reraise
from shepherd.contracts import SOURCE, Announcement
from shepherd.kernel.errors import TransientError

# PutEvents can accept a request yet fail some entries (throttled, internal): those are re-sent.
MAX_ENTRY_ATTEMPTS = 4
BATCH_SIZE = 10  # PutEvents takes at most 10 entries per call


class EventBridgePublisher:
    """Implements `shepherd.kernel.publisher.EventPublisher`."""

    def __init__(self, client: Any, bus_name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._bus_name = bus_name
        self._sleep = sleep

    def publish(self, *announcements: Announcement) -> None:
        entries = [self._entry(announcement) for announcement in announcements]
        for start in range(0, len(entries), BATCH_SIZE):
            self._put(entries[start : start + BATCH_SIZE])

    def _entry(self, announcement: Announcement) -> dict[str, str]:
        return {
            "Source": SOURCE,
            "DetailType": announcement.DETAIL_TYPE,
            "Detail": announcement.model_dump_json(exclude_none=True),  # absent, not null: e.g. previous_version
            "EventBusName": self._bus_name,
        }

    def _put(self, entries: list[dict[str, str]]) -> None:
        for attempt in range(MAX_ENTRY_ATTEMPTS):
            try:
                response = self._client.put_events(Entries=entries)
            except ClientError as error:
                raise_transient_or_reraise(error)
            if not response.get("FailedEntryCount"):
                return
            entries = [
                entry for entry, result in zip(entries, response["Entries"], strict=True) if result.get("ErrorCode")
            ]
            self._sleep(0.05 * 2**attempt)
        raise TransientError(f"{len(entries)} announcement(s) still failing after {MAX_ENTRY_ATTEMPTS} attempts")
