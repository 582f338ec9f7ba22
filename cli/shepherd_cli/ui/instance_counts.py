"""Each variant's current and desired instance counts over the last hour, for the endpoint page's chart.

Where the points come from (SageMaker publishes no instance-count metric, and
``DescribeScalingActivities`` gives a new count only in its description's text):

* **Local mode**: the simulation records every variant's ``CurrentInstanceCount`` and
  ``DesiredInstanceCount`` each simulated minute in the emulator's CloudWatch, namespace
  ``Shepherd/Local`` (`local/capacity_record.py`), so the chart has the whole last hour, autoscaling's
  moves included, even before the dashboard was opened.
* **AWS** (and local mode's present): what the dashboard itself sees. Each time the endpoint page is
  read, `CountSampler` keeps the counts ``DescribeEndpoint`` reports for that minute, in this process's
  memory: the chart shows the counts since the page was first opened, and nothing from before.
* The last point is now, as ``DescribeEndpoint`` reports it.

The chart is a step line per variant and count (``current``: instances serving; ``desired``: what
SageMaker is moving to, e.g. after a scale-out), beside `instances.configured_instances` (what each
rollout's configs asked for).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shepherd_cli.endpoint_metrics import variant_series

RECORD_NAMESPACE = "Shepherd/Local"  # local/capacity_record.py (not imported: it loads moto)
CURRENT, DESIRED = "CurrentInstanceCount", "DesiredInstanceCount"
WINDOW = timedelta(hours=1)
COUNTS = (("current", CURRENT, "instance_count"), ("desired", DESIRED, "desired_instance_count"))

Counts = dict[tuple[str, str], int]  # (variant, "current" | "desired") -> count


class CountSampler:
    """The counts the dashboard saw, per endpoint and minute (the last read of a minute wins), for an hour."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[datetime, Counts]] = {}
        self._lock = threading.Lock()  # the dashboard reads pages in a thread pool

    def record(self, endpoint_name: str, now: datetime, described: Sequence[Mapping[str, Any]]) -> None:
        counts = _described_counts(described)
        with self._lock:
            seen = self._seen.setdefault(endpoint_name, {})
            seen[now.replace(second=0, microsecond=0)] = counts
            for minute in [minute for minute in seen if minute < now - WINDOW]:
                del seen[minute]

    def seen(self, endpoint_name: str) -> dict[datetime, Counts]:
        with self._lock:
            return dict(self._seen.get(endpoint_name, {}))


def instance_counts(
    cloudwatch: Any,
    endpoint_name: str,
    variants: Sequence[str],
    described: Sequence[Mapping[str, Any]],
    now: datetime,
    sampled: Mapping[datetime, Counts] | None = None,
) -> dict[str, Any]:
    """``{"times": [epoch seconds...], "variants": [{"variant_name", "count": "current"|"desired",
    "label", "instances": [...]}]}``, each series aligned on ``times`` (None: no count known then)."""
    points: dict[datetime, Counts] = {minute: dict(counts) for minute, counts in (sampled or {}).items()}
    for minute, counts in _recorded(cloudwatch, endpoint_name, variants, now).items():
        points.setdefault(minute, {}).update(counts)  # the simulation's record wins over a sample
    points[now] = _described_counts(described)
    times = sorted(at for at in points if at >= now - WINDOW)
    names = list(dict.fromkeys([*variants, *(name for at in times for name, _ in points[at])]))
    rows = [
        {
            "variant_name": name,
            "count": kind,
            "label": f"{name} {kind}",
            "instances": [points[at].get((name, kind)) for at in times],
        }
        for name in names
        for kind, _, _ in COUNTS
    ]
    rows = [row for row in rows if any(value is not None for value in row["instances"])]
    return {"times": [at.timestamp() for at in times], "variants": rows}


def _described_counts(described: Sequence[Mapping[str, Any]]) -> Counts:
    return {
        (str(variant["variant_name"]), kind): int(variant[field])
        for variant in described
        for kind, _, field in COUNTS
        if variant.get(field) is not None
    }


def _recorded(cloudwatch: Any, endpoint_name: str, variants: Sequence[str], now: datetime) -> dict[datetime, Counts]:
    """The counts local mode's simulation recorded (nothing on AWS: no one publishes that namespace)."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    series = tuple((kind, RECORD_NAMESPACE, metric, "Maximum") for kind, metric, _ in COUNTS)
    values = variant_series(cloudwatch, endpoint_name, variants, series, end - WINDOW, end)
    found: dict[datetime, Counts] = {}
    for index, variant in enumerate(variants):
        for kind, _, _ in COUNTS:
            for at, value in values[f"v{index}_{kind}"].items():
                found.setdefault(at, {})[(variant, kind)] = round(value)
    return found
