"""The outbox: announcements are committed with the change that owes them, and published after it.

A crash or a failed PutEvents after the commit leaves them pending in the store; the next invocation
that touches the endpoint publishes them (at least once). The promotion service, the controller,
the canary judge and the rollback service all publish this way: the rollback function does so without
the others.
"""

from __future__ import annotations

import logging
from typing import Any

from shepherd.contracts import Announcement
from shepherd.kernel.publisher import EventPublisher
from shepherd.rollouts.ports import Announce, RolloutStore
from shepherd.rollouts.record import Rollout

logger = logging.getLogger(__name__)


def outbox(rollout: Rollout, *announcements: Announcement) -> Announce:
    """The announcements owed by the commit that writes `rollout` (keyed by its new revision)."""
    return Announce(rollout.endpoint_name, f"{rollout.rollout_id}#{rollout.revision:06d}", announcements)


def deliver(rollouts: RolloutStore, events: EventPublisher, announce: Announce) -> None:
    """Publish what a commit owed, then drop it from the outbox."""
    events.publish(*announce.announcements)
    rollouts.forget(announce)


def flush(rollouts: RolloutStore, events: EventPublisher, endpoint_name: str) -> None:
    """Publish what earlier commits on this endpoint still owe (a publish that failed after them)."""
    for announce in rollouts.pending_announcements(endpoint_name):
        deliver(rollouts, events, announce)


def deliver_or_keep(rollouts: RolloutStore, events: EventPublisher, announce: Announce) -> bool:
    """`deliver`, where a failed publish must not stop the caller (a controller pass that has a rollout
    to decide): the announcements stay in the outbox for a later pass. True when published."""
    try:
        deliver(rollouts, events, announce)
    except Exception:  # throttled, refused for good, unreachable: all the same here, kept and retried later
        logger.warning("announcements kept in the outbox", exc_info=True, extra={"key": announce.key})
        return False
    return True


def publish_owed(rollouts: RolloutStore, events: EventPublisher, endpoint_name: str) -> bool:
    """`flush`, where a failure (reading the outbox, or publishing) leaves everything owed for later."""
    try:
        flush(rollouts, events, endpoint_name)
    except Exception:  # as deliver_or_keep: the tick's outbox pass reports what keeps failing
        logger.warning("announcements kept in the outbox", exc_info=True, extra={"endpoint": endpoint_name})
        return False
    return True


def announced_ids(rollout: Rollout) -> dict[str, Any]:
    """The fields every rollout announcement carries."""
    return {
        "rollout_id": rollout.rollout_id,
        "endpoint_name": rollout.endpoint_name,
        "model_name": rollout.model_name,
        "version": rollout.version,
        "previous_version": rollout.previous_version,
    }
