"""CloudWatch alarms: the states that gate a rollout, and the per-rollout alarms on the candidate."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import raise_transient_or_reraise
from shepherd.rollouts.strategy import Analysis

MAX_NAMES_PER_DESCRIBE = 100  # DescribeAlarms takes at most 100 names


class CloudWatchAlarms:
    """Implements `shepherd.rollouts.ports.AlarmControl`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def firing(self, alarm_names: tuple[str, ...]) -> frozenset[str]:
        """The named alarms that are in ALARM now. An alarm that does not exist is not firing."""
        return frozenset(name for name, state in self._states(alarm_names).items() if state == "ALARM")

    def existing(self, alarm_names: tuple[str, ...]) -> frozenset[str]:
        return frozenset(self._states(alarm_names))

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
