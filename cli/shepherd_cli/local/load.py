"""Local mode's load: how many simulated requests a second every endpoint gets, and how that changes.

``--rps`` takes either one number (``300``: the same load all along, as before) or a ramp, a list of
``RPS@MINUTE`` points (``100@0,2000@30``: 100 requests a second now, rising linearly to 2,000 at the
30th simulated minute, then 2,000). Between two points the rate moves linearly; before the first
point it is the first rate, after the last one the last rate. Minutes count from when the ramp starts:
the first simulated minute of `shepherd local up`, or the minute in progress when
`shepherd local traffic --rps` set it. A ramp lets capacity be seen following load: the emulated
target tracking (`autoscaling`) scales on the ``InvocationsPerInstance`` the traffic produces.

`shepherd local traffic --rps` runs in another process than `local up`; as for the versions'
behaviours (`traffic_behaviour`), the channel is one SSM parameter in the emulator, ``LOAD_PARAMETER``,
read by the simulator each simulated minute. It holds the points and the ramp's start (simulated time).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import msgspec

LOAD_PARAMETER = "/shepherd/local/load"
MAX_RPS = 1_000_000.0  # a bound on the simulator's work: each request is one draw
MAX_POINTS = 100
MAX_MINUTE = 7 * 24 * 60  # a week of simulated minutes


class LoadPoint(msgspec.Struct, frozen=True):
    minute: float
    rps: float


class Load(msgspec.Struct, frozen=True):
    """Requests a second over the minutes since ``start`` (a piecewise-linear ramp; one point: constant)."""

    points: tuple[LoadPoint, ...]
    start: datetime | None = None  # when minute 0 is; None: from the simulator's first minute

    def __post_init__(self) -> None:
        if not 1 <= len(self.points) <= MAX_POINTS:
            raise ValueError(f"--rps: between 1 and {MAX_POINTS} points, got {len(self.points)}")
        for point in self.points:
            if not (math.isfinite(point.rps) and 0 <= point.rps <= MAX_RPS):
                raise ValueError(
                    f"--rps: a rate must be between 0 and {MAX_RPS:g} requests a second, got {point.rps:g}"
                )
            if not (math.isfinite(point.minute) and 0 <= point.minute <= MAX_MINUTE):
                raise ValueError(f"--rps: a minute must be between 0 and {MAX_MINUTE}, got {point.minute:g}")
        minutes = [point.minute for point in self.points]
        if minutes != sorted(minutes) or len(set(minutes)) != len(minutes):
            raise ValueError("--rps: the points' minutes must increase (100@0,2000@30)")

    @classmethod
    def constant(cls, rps: float, start: datetime | None = None) -> Load:
        return cls((LoadPoint(0.0, float(rps)),), start)

    @property
    def is_ramp(self) -> bool:
        return len({point.rps for point in self.points}) > 1

    def rps_at(self, minutes: float) -> float:
        """The rate ``minutes`` after the start: linear between points, flat before and after them."""
        first, last = self.points[0], self.points[-1]
        if minutes <= first.minute:
            return first.rps
        if minutes >= last.minute:
            return last.rps
        for low, high in zip(self.points, self.points[1:], strict=False):
            if low.minute <= minutes <= high.minute:
                return low.rps + (high.rps - low.rps) * (minutes - low.minute) / (high.minute - low.minute)
        return last.rps  # not reached: the points cover the span

    def rps_during(self, minute_start: datetime) -> float:
        """The rate for the simulated minute starting at ``minute_start`` (taken at its middle)."""
        if self.start is None:
            return self.points[0].rps if not self.is_ramp else self.rps_at(0.5)
        return self.rps_at((minute_start - self.start).total_seconds() / 60 + 0.5)

    def starting(self, start: datetime) -> Load:
        return Load(self.points, start)

    def describe(self) -> str:
        if not self.is_ramp:
            return f"{self.points[0].rps:g} requests/s"
        return "requests/s " + ", ".join(f"{p.rps:g} at minute {p.minute:g}" for p in self.points) + " (linear between)"


def parse_rps(text: str) -> Load:
    """``300`` or ``100@0,2000@30`` (see the module docstring); ValueError says what is wrong."""
    text = text.strip()
    if "@" not in text:
        try:
            rate = float(text)
        except ValueError:
            raise ValueError(f"--rps {text!r}: expected a number (300) or RPS@MINUTE points (100@0,2000@30)") from None
        return Load.constant(rate)
    points = []
    for part in text.split(","):
        rps, _, minute = part.strip().partition("@")
        try:
            point = LoadPoint(float(minute), float(rps))
        except ValueError:
            raise ValueError(f"--rps {text!r}: {part.strip()!r} is not RPS@MINUTE (2000@30)") from None
        points.append(point)
    return Load(tuple(points))


def set_load(ssm: Any, load: Load) -> None:
    """Store ``load`` (with its start) for the running simulator, which reads it within a minute."""
    ssm.put_parameter(Name=LOAD_PARAMETER, Value=msgspec.json.encode(load).decode(), Type="String", Overwrite=True)


def stored_load(ssm: Any) -> tuple[Load, int] | None:
    """The load `shepherd local traffic --rps` stored and the parameter's version, None if none.
    ValueError if it is not a load (written by hand, say)."""
    found = ssm.get_parameters(Names=[LOAD_PARAMETER])["Parameters"]
    if not found:
        return None
    try:
        return msgspec.json.decode(found[0]["Value"], type=Load), int(found[0]["Version"])
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as error:
        raise ValueError(f"{LOAD_PARAMETER} (version {found[0]['Version']}): {error}") from None
