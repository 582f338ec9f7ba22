"""Local mode's time: the simulated clock, and when a schedule expression (`rate(...)`, `cron(...)`) fires."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta


class SimulatedClock:
    """The time schedules fire at and events carry; moved forward by the pump only."""

    def __init__(self, start: datetime | None = None) -> None:
        self.start = (start or datetime.now(UTC)).replace(microsecond=0)
        self._now = self.start

    @property
    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError(f"the clock cannot go back from {self._now} to {moment}")
        self._now = moment


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6}
_MONTHS |= {"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def _cron_field(text: str, low: int, high: int, names: dict[str, int]) -> set[int] | None:
    """One field of an EventBridge cron expression; None matches anything. No L, W or #."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        span, _, step = part.partition("/")
        first, _, last = span.partition("-")
        start = low if first == "*" else names.get(first.upper()) or int(first)
        end = names.get(last.upper()) or int(last) if last else (high if step or first == "*" else start)
        values.update(range(start, end + 1, int(step or 1)))
    return values


class Timer:
    """When a schedule expression fires: ``rate(N unit)`` from the clock's start, or ``cron(...)`` (UTC)."""

    def __init__(self, expression: str, origin: datetime) -> None:
        self.expression = expression
        self._origin = origin
        rate = _RATE.fullmatch(expression.strip())
        self._period: timedelta | None = None
        self._fields: list[set[int] | None] = []
        if rate:
            self._period = timedelta(seconds=int(rate.group(1)) * _UNIT_SECONDS[rate.group(2).rstrip("s")])
        elif expression.startswith("cron(") and expression.endswith(")"):
            fields = expression[5:-1].split()
            if len(fields) != 6:
                raise ValueError(f"unsupported schedule expression {expression!r}")
            bounds = [(0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (1, 7, _WEEKDAYS), (1970, 2199, {})]
            self._fields = [_cron_field(text, *bound) for text, bound in zip(fields, bounds, strict=True)]
        else:
            raise ValueError(f"unsupported schedule expression {expression!r}")

    def next_after(self, moment: datetime, until: datetime) -> datetime | None:
        """The first firing strictly after `moment` and not after `until`, if any."""
        if self._period is not None:
            periods = int((moment - self._origin) / self._period) + 1
            candidate = self._origin + periods * self._period
            return candidate if candidate <= until else None
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while candidate <= until:
            if self._cron_matches(candidate):
                return candidate
            candidate += timedelta(minutes=1)
        return None

    def _cron_matches(self, moment: datetime) -> bool:
        weekday = (moment.weekday() + 1) % 7 + 1  # EventBridge: 1 = Sunday
        values = (moment.minute, moment.hour, moment.day, moment.month, weekday, moment.year)
        return all(allowed is None or value in allowed for value, allowed in zip(values, self._fields, strict=True))
