"""CloudWatch: the alarm states that gate a rollout, the per-rollout alarms on the candidate, and the
per-minute series of both variants that the canary judge compares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import NETWORK_ERRORS, error_code, is_transient, raise_transient_or_reraise
from shepherd.analysis.metrics import SeriesQuery, Side
from shepherd.analysis.observations import VariantSeries
from shepherd.analysis.ports import MetricsUnavailable
from shepherd.kernel.errors import TransientError
from shepherd.rollouts.errors import AlarmRequestRefused
from shepherd.rollouts.ports import DescribedAlarm
from shepherd.rollouts.strategy import Analysis

MAX_NAMES_PER_DESCRIBE = 100  # DescribeAlarms takes at most 100 names
MINUTE = 60


class CloudWatchAlarms:
    """Implements `shepherd.rollouts.ports.AlarmControl`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def alarm_states(self, alarm_names: tuple[str, ...]) -> dict[str, str]:
        """The named alarms that exist, with their state: a missing one is left out (one call per 100)."""
        return self._states(alarm_names)

    def existing(self, alarm_names: tuple[str, ...]) -> frozenset[str]:
        return frozenset(self._states(alarm_names))

    def described(self, alarm_name: str) -> DescribedAlarm | None:
        response = self._call("describe_alarms", AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        for alarm in response.get("MetricAlarms", []):
            if alarm["AlarmName"] == alarm_name:
                # A single-metric alarm has Dimensions; a metric-math alarm has them per Metrics[].
                metrics = [alarm.get("Dimensions", [])] + [
                    query.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
                    for query in alarm.get("Metrics", [])
                ]
                dimensions = tuple({d["Name"]: d["Value"] for d in each} for each in metrics if each)
                return DescribedAlarm(alarm["StateValue"], dimensions)
        for alarm in response.get("CompositeAlarms", []):
            if alarm["AlarmName"] == alarm_name:
                return DescribedAlarm(alarm["StateValue"], ())
        return None

    def _states(self, alarm_names: tuple[str, ...]) -> dict[str, str]:
        # The state is filtered here, not with StateValue: moto ignores StateValue next to AlarmNames.
        states: dict[str, str] = {}
        for start in range(0, len(alarm_names), MAX_NAMES_PER_DESCRIBE):
            batch = list(alarm_names[start : start + MAX_NAMES_PER_DESCRIBE])
            response = self._call("describe_alarms", AlarmNames=batch, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
            for kind in ("MetricAlarms", "CompositeAlarms"):
                states.update((alarm["AlarmName"], alarm["StateValue"]) for alarm in response.get(kind, []))
        return states

    def create_rollout_alarms(
        self,
        names: tuple[str, str],
        endpoint_name: str,
        variant_name: str,
        analysis: Analysis,
        action_arns: tuple[str, ...],
    ) -> None:
        try:
            self._put_rollout_alarms(names, endpoint_name, variant_name, analysis, action_arns)
        except ClientError as refused:  # not throttling or 5xx (those are TransientError): asking again won't do
            raise AlarmRequestRefused(error_code(refused), str(refused)) from refused

    def _put_rollout_alarms(
        self,
        names: tuple[str, str],
        endpoint_name: str,
        variant_name: str,
        analysis: Analysis,
        action_arns: tuple[str, ...],
    ) -> None:
        error_rate_name, latency_name = names
        dimensions = [
            {"Name": "EndpointName", "Value": endpoint_name},
            {"Name": "VariantName", "Value": variant_name},
        ]
        common = {
            "EvaluationPeriods": analysis.evaluation_periods,
            "DatapointsToAlarm": analysis.evaluation_periods,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",  # no traffic yet is not a failure
            "AlarmActions": list(action_arns),
        }

        def metric(metric_id: str, name: str) -> dict[str, Any]:
            return {
                "Id": metric_id,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dimensions},
                    "Period": analysis.period_seconds,
                    "Stat": "Sum",
                },
            }

        self._call(
            "put_metric_alarm",
            AlarmName=error_rate_name,
            AlarmDescription=f"5xx rate of {variant_name} on {endpoint_name} above "
            f"{analysis.max_error_rate_percent}% (Shepherd rollout alarm)",
            Metrics=[
                metric("errors", "Invocation5XXErrors"),
                metric("invocations", "Invocations"),
                {
                    "Id": "error_rate",
                    "Expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
                    "Label": "5xx error rate (%)",
                    "ReturnData": True,
                },
            ],
            Threshold=analysis.max_error_rate_percent,
            **common,
        )
        self._call(
            "put_metric_alarm",
            AlarmName=latency_name,
            AlarmDescription=f"p99 model latency of {variant_name} on {endpoint_name} above "
            f"{analysis.max_latency_p99_ms} ms (Shepherd rollout alarm)",
            Namespace="AWS/SageMaker",
            MetricName="ModelLatency",
            Dimensions=dimensions,
            ExtendedStatistic="p99",
            Period=analysis.period_seconds,
            Threshold=analysis.max_latency_p99_ms * 1000,  # SageMaker reports ModelLatency in microseconds
            Unit="Microseconds",
            **common,
        )

    def delete_alarms(self, alarm_names: tuple[str, ...]) -> None:
        for start in range(0, len(alarm_names), MAX_NAMES_PER_DESCRIBE):
            self._call("delete_alarms", AlarmNames=list(alarm_names[start : start + MAX_NAMES_PER_DESCRIBE]))

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._client, operation)(**params)
        except ClientError as error:
            raise_transient_or_reraise(error)
        except NETWORK_ERRORS as error:
            raise TransientError(f"{operation}: {error}") from error


class CloudWatchVariantMetrics:
    """Implements `shepherd.analysis.ports.VariantMetrics` with one GetMetricData call.

    Each series becomes two queries, ``<id>_c`` (candidate) and ``<id>_b`` (baseline), with the
    variant's ``EndpointName`` and ``VariantName`` dimensions, at a 60-second period. 5 built-in and
    at most 20 user series are 50 queries (the API allows 500), and an hour is 3,000 data points (it
    returns 100,800 per call): a bake of up to about 33 hours is one call; longer ones page on.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def variant_series(
        self,
        series: tuple[SeriesQuery, ...],
        endpoint_name: str,
        candidate_variant: str,
        baseline_variant: str,
        start: datetime,
        end: datetime,
    ) -> dict[str, VariantSeries]:
        if not series:
            return {}
        params: dict[str, Any] = {
            "MetricDataQueries": metric_data_queries(series, endpoint_name, candidate_variant, baseline_variant),
            "StartTime": _minute(start),
            "EndTime": _minute(end),
            "ScanBy": "TimestampAscending",
        }
        results: list[dict[str, Any]] = []
        while True:
            response = self._call(**params)
            results.extend(response.get("MetricDataResults", []))
            token = response.get("NextToken")
            if not token:
                return parse_results(tuple(query.id for query in series), results)
            params["NextToken"] = token

    def _call(self, **params: Any) -> Any:
        try:
            return self._client.get_metric_data(**params)
        except ClientError as error:
            if is_transient(error):
                raise_transient_or_reraise(error)
            raise MetricsUnavailable(f"GetMetricData refused: {error_code(error)}: {error}") from error
        except NETWORK_ERRORS as error:  # CloudWatch unreachable: no new data, as for throttling
            raise TransientError(f"GetMetricData: {error}") from error


def metric_data_queries(
    series: tuple[SeriesQuery, ...], endpoint_name: str, candidate_variant: str, baseline_variant: str
) -> list[dict[str, Any]]:
    """The GetMetricData queries: each series for the candidate (``_c``) and the baseline (``_b``),
    each with its side's statistic (a tail metric's candidate threshold is not the baseline's)."""
    queries = []
    sides: tuple[tuple[str, str, Side], ...] = (
        ("c", candidate_variant, "candidate"),
        ("b", baseline_variant, "baseline"),
    )
    for query in series:
        for suffix, variant, side in sides:
            dimensions = [
                {"Name": "EndpointName", "Value": endpoint_name},
                {"Name": "VariantName", "Value": variant},
                *({"Name": name, "Value": value} for name, value in query.dimensions),
            ]
            queries.append(
                {
                    "Id": f"{query.id}_{suffix}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": query.namespace,
                            "MetricName": query.metric_name,
                            "Dimensions": dimensions,
                        },
                        "Period": MINUTE,
                        "Stat": query.statistic_of(side),
                    },
                    "ReturnData": True,
                }
            )
    return queries


def parse_results(series_ids: tuple[str, ...], results: list[dict[str, Any]]) -> dict[str, VariantSeries]:
    """MetricDataResults (all pages) -> each series' per-minute values for both variants."""
    values: dict[str, dict[str, dict[datetime, float]]] = {series_id: {"c": {}, "b": {}} for series_id in series_ids}
    for result in results:
        if result.get("StatusCode") == "InternalError":
            # CloudWatch could not compute this query now: judging without it would hide a metric.
            raise TransientError(f"GetMetricData could not compute {result.get('Id')}: InternalError")
        series_id, _, suffix = str(result["Id"]).rpartition("_")
        if series_id not in values or suffix not in ("c", "b"):
            continue  # not a query this adapter made
        for at, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=True):
            values[series_id][suffix][_minute(at)] = float(value)
    return {series_id: VariantSeries(sides["c"], sides["b"]) for series_id, sides in values.items()}


def _minute(at: datetime) -> datetime:
    """The start of the UTC minute holding ``at``: series are keyed by minute, the same on both sides."""
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at - timedelta(seconds=at.second, microseconds=at.microsecond)
