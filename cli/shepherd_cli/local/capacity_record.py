"""Local mode's record of each variant's instance counts, one datum a simulated minute, in CloudWatch.

SageMaker publishes no instance-count metric (its ``AWS/SageMaker`` metrics are invocations, errors,
latency and utilisation), so on AWS a history of the counts exists only where someone sampled
``DescribeEndpoint``. In local mode the simulation sees every variant's ``CurrentInstanceCount`` and
``DesiredInstanceCount`` each minute (`autoscaling.TargetTrackingScaler.evaluate`); it puts them to the
emulator's CloudWatch under Shepherd's own namespace ``RECORD_NAMESPACE``, so that `shepherd ui` (another
process, which reads only AWS APIs) can plot them (`ui/instance_counts.py`). Never published on AWS: the
namespace says it is local mode's, not SageMaker's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from shepherd_cli.local.autoscaling import CapacitySample

RECORD_NAMESPACE = "Shepherd/Local"
CURRENT, DESIRED = "CurrentInstanceCount", "DesiredInstanceCount"
MAX_DATA_PER_CALL = 1000  # PutMetricData's limit on MetricData entries


def publish_counts(cloudwatch: Any, samples: Sequence[CapacitySample]) -> None:
    """Put each sample's counts, stamped with its minute (a serverless variant has none: skipped)."""
    data = [
        {
            "MetricName": metric,
            "Dimensions": [
                {"Name": "EndpointName", "Value": sample.endpoint_name},
                {"Name": "VariantName", "Value": sample.variant_name},
            ],
            "Timestamp": sample.at,
            "Value": float(count),
            "Unit": "Count",
        }
        for sample in samples
        for metric, count in ((CURRENT, sample.current), (DESIRED, sample.desired))
        if count is not None
    ]
    for chunk in _chunks(data):
        cloudwatch.put_metric_data(Namespace=RECORD_NAMESPACE, MetricData=chunk)


def _chunks(data: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(data), MAX_DATA_PER_CALL):
        yield data[start : start + MAX_DATA_PER_CALL]
