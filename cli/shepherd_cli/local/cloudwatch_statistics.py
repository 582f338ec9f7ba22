"""CloudWatch's extended statistics of one period's samples, for the local emulator (pure).

As the CloudWatch statistics definitions ("Statistics definitions" in the CloudWatch user guide) say:

* ``pNN`` (``p50``, ``p99.9``): a percentile, here the nearest-rank one.
* ``TM(a:b)`` trimmed mean, ``TC(a:b)`` trimmed count, ``TS(a:b)`` trimmed sum: the mean, number and
  sum of the samples within the bounds. A bound is a value or, with ``%``, a percentage of the
  samples (``TC(10%:90%)``); either may be left out (``TC(200000:)``, ``TM(:99%)``). With values, the
  lower bound is exclusive and the upper one inclusive (``TC(0.005:0.030)`` counts 0.005 < v <= 0.030).
  ``tm99``, ``tc99``, ``ts99`` are ``TM(:99%)``, ``TC(:99%)``, ``TS(:99%)``; ``IQM`` is ``TM(25%:75%)``.
* ``PR(a:b)`` percentile rank: the percentage (0 to 100) of the samples with a < v <= b (values only).

Where CloudWatch leaves a choice open, the choice here:

* Percentage bounds trim by rank: the samples ranked in (a% x N, b% x N] are kept, a sample that
  straddles a boundary counting for the part of it inside (CloudWatch, which approximates, may also
  return a fractional trimmed count). Exact over the samples, where CloudWatch's are approximations.
* A period whose samples all fall outside the bounds has a trimmed count and sum of 0 and a
  percentile rank of 0, and no trimmed mean (nothing to average).
* Winsorized means (``WM``, ``wm99``) are not implemented: asking for one is a ``ValueError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Samples = Iterable[tuple[float, float]]  # (value, how many samples have it)
Kind = Literal["p", "TM", "TC", "TS", "PR"]

_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_SHORT = re.compile(r"^(tm|tc|ts|wm)(\d+(?:\.\d+)?)$")
_BOUNDED = re.compile(r"^(TM|TC|TS|PR|WM)\(\s*([^:()]*?)\s*:\s*([^:()]*?)\s*\)$", re.IGNORECASE)
_BOUND = re.compile(r"^(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(%?)$")


@dataclass(frozen=True)
class ExtendedStatistic:
    """A parsed extended statistic. ``percent``: the bounds are percentages of the samples, not values."""

    kind: Kind
    lower: float | None = None
    upper: float | None = None
    percent: bool = False


def parse(statistic: str) -> ExtendedStatistic | None:
    """The extended statistic ``statistic`` names; None for the others (Sum, SampleCount...).

    Raises ValueError, saying why, for one that is malformed or not implemented here."""
    if found := _PERCENTILE.match(statistic):
        return ExtendedStatistic("p", upper=_percentage(found.group(1), statistic))
    if found := _SHORT.match(statistic):
        return _bounded(found.group(1).upper(), None, _percentage(found.group(2), statistic), True, statistic)
    if statistic == "IQM":
        return ExtendedStatistic("TM", 25.0, 75.0, percent=True)
    if found := _BOUNDED.match(statistic):
        name, lower, upper = found.group(1).upper(), _bound(found.group(2)), _bound(found.group(3))
        if lower is None and upper is None:
            raise ValueError(f"{statistic}: give at least one bound")
        kinds = {bound[1] for bound in (lower, upper) if bound is not None}
        if len(kinds) > 1:
            raise ValueError(f"{statistic}: both bounds are values or both are percentages")
        percent = kinds == {True}
        low, high = (bound[0] if bound is not None else None for bound in (lower, upper))
        return _bounded(name, low, high, percent, statistic)
    if statistic.lower().startswith(("tm", "tc", "ts", "pr(", "wm", "iqm")):
        raise ValueError(f"{statistic}: not a valid extended statistic")
    return None


def compute(statistic: ExtendedStatistic, samples: Samples) -> float | None:
    """The statistic over one period's samples; None when it has no value (no samples, no mean)."""
    ordered = sorted((value, count) for value, count in samples if count > 0)
    total = sum(count for _value, count in ordered)
    if total == 0:
        return None
    if statistic.kind == "p":
        assert statistic.upper is not None
        return nearest_rank(ordered, statistic.upper)
    kept = _by_rank(ordered, total, statistic) if statistic.percent else _by_value(ordered, statistic)
    count = sum(weight for _value, weight in kept)
    if statistic.kind == "PR":
        return 100.0 * count / total
    if statistic.kind == "TC":
        return count
    trimmed_sum = sum(value * weight for value, weight in kept)
    if statistic.kind == "TS":
        return trimmed_sum
    return trimmed_sum / count if count > 0 else None  # TM


def nearest_rank(samples: Samples, percent: float) -> float | None:
    """The nearest-rank percentile of (value, count) samples; None when there are none."""
    ordered = sorted((value, count) for value, count in samples if count > 0)
    total = sum(count for _value, count in ordered)
    if total == 0:
        return None
    rank = max(1.0, math.ceil(percent / 100 * total))
    seen = 0.0
    for value, count in ordered:
        seen += count
        if seen >= rank:
            return value
    return ordered[-1][0]


def _by_value(ordered: list[tuple[float, float]], statistic: ExtendedStatistic) -> list[tuple[float, float]]:
    lower = -math.inf if statistic.lower is None else statistic.lower
    upper = math.inf if statistic.upper is None else statistic.upper
    return [(value, count) for value, count in ordered if lower < value <= upper]


def _by_rank(
    ordered: list[tuple[float, float]], total: float, statistic: ExtendedStatistic
) -> list[tuple[float, float]]:
    """The samples ranked in (lower% x total, upper% x total], a straddling one in part."""
    low = (statistic.lower or 0.0) / 100 * total
    high = (100.0 if statistic.upper is None else statistic.upper) / 100 * total
    kept, before = [], 0.0
    for value, count in ordered:
        inside = min(before + count, high) - max(before, low)
        if inside > 0:
            kept.append((value, inside))
        before += count
    return kept


def _bounded(name: str, lower: float | None, upper: float | None, percent: bool, text: str) -> ExtendedStatistic:
    if name == "WM":
        raise ValueError(f"{text}: winsorized means are not implemented by the local emulator")
    if name == "PR" and percent:
        raise ValueError(f"{text}: a percentile rank's bounds are values, not percentages")
    if percent and any(bound is not None and not 0 <= bound <= 100 for bound in (lower, upper)):
        raise ValueError(f"{text}: a percentage bound is between 0 and 100")
    if lower is not None and upper is not None and lower >= upper:
        raise ValueError(f"{text}: the lower bound must be below the upper bound")
    kind: Kind = "TM" if name == "TM" else "TC" if name == "TC" else "TS" if name == "TS" else "PR"
    return ExtendedStatistic(kind, lower, upper, percent)


def _bound(text: str) -> tuple[float, bool] | None:
    if not text:
        return None
    found = _BOUND.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a bound (a number, or a percentage such as 90%)")
    return float(found.group(1)), found.group(2) == "%"


def _percentage(text: str, statistic: str) -> float:
    value = float(text)
    if not 0 <= value <= 100:
        raise ValueError(f"{statistic}: the percentage must be between 0 and 100")
    return value
