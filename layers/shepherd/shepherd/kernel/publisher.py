"""The announcement port: where a service hands the announcements it owes (EventBridge in Lambda)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the kernel depends on no other part of Shepherd at run time
    from shepherd.contracts import Announcement


class EventPublisher(Protocol):
    def publish(self, *announcements: Announcement) -> None: ...
