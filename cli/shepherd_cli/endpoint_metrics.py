"""An endpoint's last hour per variant and minute, from CloudWatch: requests, 5xx error rate, latency.

What an on-call engineer looks at next to the weights: is the candidate failing more requests, is it
slower, does it take the traffic it should. SageMaker publishes ``Invocations``,
``Invocation5XXErrors`` and ``ModelLatency`` (microseconds) per variant each minute; one
GetMetricData call reads them all. Values come back in the units people read: requests per minute,
the error rate in percent, the latency's p99 in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

NAMESPACE = "AWS/SageMaker"
MINUTE = 60
WINDOW = timedelta(hours=1)
MICROSECONDS_PER_MS = 1000.0
# (query suffix, metric, statistic): three queries per variant, 500 allowed per call.
_QUERIES = (
    ("req", "Invocations", "Sum"),
    ("err", "Invocation5XXErrors", "Sum"),
    ("p99", "ModelLatency", "p99"),
)


def variant_minutes(cloudwatch: Any, endpoint_name: str, variants: Sequence[str], now: datetime) -> dict[str, Any]:
    """``{"minutes": [epoch seconds...], "variants": [{"variant_name", "requests", "error_rate_percent",
    "latency_p99_ms"}]}``, each series aligned on ``minutes`` (None where the variant had no data)."""
    end = now.replace(second=0, microsecond=0)
    series = tuple((suffix, NAMESPACE, metric, statistic) for suffix, metric, statistic in _QUERIES)
    values = variant_series(cloudwatch, endpoint_name, variants, series, end - WINDOW, end)
    minutes = sorted({at for series in values.values() for at in series})
    rows = []
    for index, variant in enumerate(variants):
        # Not named `requests`: bandit takes `requests.get` for an HTTP call without a timeout.
        served, errors, p99 = (values[f"v{index}_{suffix}"] for suffix, _, _ in _QUERIES)
        rows.append(
            {
                "variant_name": variant,
                "requests": [served.get(at) for at in minutes],
                "error_rate_percent": [_percent(errors.get(at), served.get(at)) for at in minutes],
                "latency_p99_ms": [None if at not in p99 else p99[at] / MICROSECONDS_PER_MS for at in minutes],
            }
        )
    return {"minutes": [at.timestamp() for at in minutes], "variants": rows}


def variant_series(
    cloudwatch: Any,
    endpoint_name: str,
    variants: Sequence[str],
    series: Sequence[tuple[str, str, str, str]],
    start: datetime,
    end: datetime,
) -> dict[str, dict[datetime, float]]:
    """Each variant's per-minute values of each ``(suffix, namespace, metric, statistic)`` in ``series``
    between ``start`` and ``end``, keyed ``v{variant's index}_{suffix}`` (every key present, empty when
    CloudWatch has nothing): GetMetricData, every page; no call when there is no variant."""
    queries: list[dict[str, Any]] = [
        {
            "Id": f"v{index}_{suffix}",
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint_name},
                        {"Name": "VariantName", "Value": variant},
                    ],
                },
                "Period": MINUTE,
                "Stat": statistic,
            },
            "ReturnData": True,
        }
        for index, variant in enumerate(variants)
        for suffix, namespace, metric, statistic in series
    ]
    values: dict[str, dict[datetime, float]] = {str(query["Id"]): {} for query in queries}
    params: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
    while queries:
        response = cloudwatch.get_metric_data(**params)
        for result in response.get("MetricDataResults", []):
            found = values.setdefault(str(result["Id"]), {})
            for at, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=True):
                found[at.replace(second=0, microsecond=0)] = float(value)
        if not response.get("NextToken"):
            break
        params["NextToken"] = response["NextToken"]
    return values


def _percent(errors: float | None, requests: float | None) -> float | None:
    if errors is None or not requests:
        return None  # no request that minute: no rate, rather than a 0% that was never measured
    return 100.0 * errors / requests
