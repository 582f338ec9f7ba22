"""What the judge is given: each series' values per minute, for both variants."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from msgspec import Struct, field


class VariantSeries(Struct, frozen=True):
    """One series per minute (keyed by the minute's start) for the candidate and the baseline."""

    candidate: Mapping[datetime, float] = field(default_factory=dict)
    baseline: Mapping[datetime, float] = field(default_factory=dict)


Observations = Mapping[str, VariantSeries]
"""Series by :attr:`shepherd.analysis.metrics.SeriesQuery.id`; a missing series has no data yet."""
