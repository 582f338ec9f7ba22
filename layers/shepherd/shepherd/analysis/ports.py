"""What the canary analysis needs from the outside world: the per-minute series of both variants."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shepherd.analysis.metrics import SeriesQuery
from shepherd.analysis.observations import VariantSeries
from shepherd.kernel.errors import ShepherdError


class MetricsUnavailable(ShepherdError):
    """The metrics were refused for good (a missing permission, a query CloudWatch rejects).

    The controller treats it as it treats a TransientError: no new data for the judge, never a
    reason to fail or roll back the rollout.
    """


class VariantMetrics(Protocol):
    def variant_series(
        self,
        series: tuple[SeriesQuery, ...],
        endpoint_name: str,
        candidate_variant: str,
        baseline_variant: str,
        start: datetime,
        end: datetime,
    ) -> dict[str, VariantSeries]:
        """Every series for both variants, per minute in [start, end); a series without data is empty.

        Raises ``TransientError`` when the metrics cannot be read now (the tick tries again), and
        ``MetricsUnavailable`` when they are refused for good.
        """
        ...
