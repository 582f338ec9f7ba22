"""Local mode has one clock, the simulated one: the time moto stamps on events follows it.

EventBridge stamps an event put without a ``Time`` with the time of the call, and S3 its object
notifications with the time of the upload. moto takes both from the wall clock, while everything
else in local mode (the functions' clock, schedules, metrics, alarms, the CLI's commands) reads the
simulated one, which runs `--speed` times faster and, after a restart, continues from where it
stopped. Announcements, and `shepherd events` and `status --watch`'s "Last announcements" that print
their times, then showed another time than the records next to them.

`follow(clock)` makes moto read ``clock`` for these two stamps while a `LocalShepherd` runs
(`follow(None)`: the wall clock again). moto's server runs in the same process, so its modules'
``unix_time`` is replaced by one that asks the clock; nothing else in moto changes. Only events put
without a ``Time`` are concerned: a sender that gives one keeps it, as on AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import moto.events.models
import moto.s3.notifications
from moto.core.utils import unix_time as wall_clock

_lock = threading.Lock()
_clock: Callable[[], datetime] | None = None
STAMPING_MODULES = (moto.events.models, moto.s3.notifications)


def _now(dt: datetime | None = None) -> float:
    """moto's `unix_time`, reading the simulated clock when one is followed."""
    clock = _clock
    if dt is not None or clock is None:
        return wall_clock(dt)
    return clock().timestamp()


def follow(clock: Callable[[], datetime] | None) -> None:
    global _clock
    with _lock:
        _clock = clock
        for module in STAMPING_MODULES:
            module.unix_time = _now  # type: ignore[attr-defined]
