"""The service's clock, and whose time counts: the sender's `time` only as far as the receiving clock allows.

An event's `time` is what its sender wrote, and nothing checks it: a future-dated tick would push a
record's `updated_at` ahead (every later, honest tick then looks stale and the lock is frozen), and a
future-dated command would skip a bake. Every time that comes in an event is therefore taken as
`min(event time, now + MAX_CLOCK_SKEW)`, where "now" is the service's own clock (the simulated clock
in local mode). Times in the past are kept: replays and late deliveries stay deterministic, and the
controller already treats a tick older than the record as stale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

# The service's own clock: wall time in Lambda, the simulated clock in local mode (bootstrap wires it).
Clock = Callable[[], datetime]

# EventBridge stamps `time` itself for its own events; clocks of other senders may drift a little.
MAX_CLOCK_SKEW = timedelta(seconds=30)


def received_time(event_time: datetime, now: datetime) -> datetime:
    """The event's time, but never later than the receiver's `now` plus the allowed skew."""
    return min(event_time, now + MAX_CLOCK_SKEW)
