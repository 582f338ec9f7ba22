"""The candidates' traffic as CloudWatch reports it to the canary judge in the model-based test.

Each endpoint's candidate behaves one way from a given time on: ``silent`` (no requests: every
judged step is INCONCLUSIVE, so bakes are extended and steps held), ``healthy`` (errors like the live
variant's: the errors PASS) or ``failing`` (one request in five a 5xx: a critical FAIL). The live
variant always serves 1,000 requests a minute without errors. Latency series have no data, so a
judge that keeps its latency metrics is decided by errors alone when they fail, and is otherwise
INCONCLUSIVE.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from shepherd.analysis.metrics import SeriesQuery
from shepherd.analysis.observations import VariantSeries

BEHAVIOURS = ("silent", "healthy", "failing")
_MINUTE = timedelta(minutes=1)
_BASELINE = {"invocations": 1000.0, "invocation_5xx_errors": 0.0, "invocation_4xx_errors": 0.0}
_CANDIDATE = {
    "silent": {},
    # 2,000 requests a minute without an error: within a few judged minutes the candidate's rates are
    # surely below the negligible ones (0.1%, 0.5%), which is a PASS on evidence.
    "healthy": {"invocations": 2000.0, "invocation_5xx_errors": 0.0, "invocation_4xx_errors": 0.0},
    "failing": {"invocations": 2000.0, "invocation_5xx_errors": 400.0, "invocation_4xx_errors": 0.0},
}


class CandidateTraffic:
    """`shepherd.analysis.ports.VariantMetrics` over behaviours the model switches, per endpoint."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._changes: dict[str, list[tuple[datetime, str]]] = {}

    def behave(self, endpoint_name: str, behaviour: str) -> None:
        """From the current minute on, the endpoint's candidate (whichever it is) behaves so."""
        self._changes.setdefault(endpoint_name, []).append((_floor(self._now()), behaviour))

    def variant_series(
        self,
        series: tuple[SeriesQuery, ...],
        endpoint_name: str,
        candidate_variant: str,
        baseline_variant: str,
        start: datetime,
        end: datetime,
    ) -> dict[str, VariantSeries]:
        minutes = []
        minute = _floor(start)
        while minute < _floor(end):
            minutes.append(minute)
            minute += _MINUTE
        behaviours = [self._behaviour(endpoint_name, minute) for minute in minutes]
        found = {}
        for query in series:
            baseline = {m: _BASELINE[query.id] for m in minutes if query.id in _BASELINE}
            candidate = {
                m: _CANDIDATE[b][query.id]
                for m, b in zip(minutes, behaviours, strict=True)
                if query.id in _CANDIDATE[b]
            }
            found[query.id] = VariantSeries(candidate, baseline)
        return found

    def _behaviour(self, endpoint_name: str, minute: datetime) -> str:
        behaviour = "silent"
        for since, chosen in self._changes.get(endpoint_name, ()):
            if since <= minute:
                behaviour = chosen
        return behaviour


def _floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)
