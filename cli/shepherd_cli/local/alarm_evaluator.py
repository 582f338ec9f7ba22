"""Local mode's CloudWatch alarm evaluation: moto never changes an alarm's state by itself.

At the end of each of an alarm's periods (simulated time, periods aligned to the epoch as CloudWatch
aligns them), the alarm's last ``EvaluationPeriods`` periods are fetched with GetMetricData - the
alarm's own ``Metrics`` queries for a metric-math alarm, one ``MetricStat`` query from its
``Statistic``/``ExtendedStatistic`` otherwise (percentiles and metric math come from
`cloudwatch_emulator`) - and judged the way CloudWatch does:

* a datapoint breaches when it compares with ``Threshold`` by ``ComparisonOperator``;
* ``TreatMissingData``: ``breaching`` and ``notBreaching`` count a missing period as such; with
  ``missing`` (the default) and ``ignore``, only the periods with data are judged;
* ALARM when at least ``DatapointsToAlarm`` (default ``EvaluationPeriods``) periods breach; else, when
  every period is missing, INSUFFICIENT_DATA (``missing``) or the current state (``ignore``); else OK.

Simplified from CloudWatch: it does not look further back than the evaluation range for missing
periods, ignores ``EvaluateLowSampleCountPercentile``, and skips anomaly-detection alarms (logged).
A change of state goes through ``set_alarm_state(name, state, reason, reason_data)`` - the pump's one
path that emits what CloudWatch emits (the EventBridge event, the Lambda and SNS alarm actions) - with
a reason and reason data in CloudWatch's format.
"""

from __future__ import annotations

import json
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

logger = logging.getLogger(__name__)

SetAlarmState = Callable[[str, str, str, str], None]

_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
DEFAULT_PERIOD_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str
    reason_data: dict[str, Any]


def _cloudwatch_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _short_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%d/%m/%y %H:%M:%S")


def alarm_period(alarm: dict[str, Any]) -> int:
    """The alarm's period: its own, or its metric queries' longest (a metric-math alarm has none)."""
    if alarm.get("Period"):
        return int(alarm["Period"])
    periods = [int(query["MetricStat"]["Period"]) for query in alarm.get("Metrics", []) if "MetricStat" in query]
    return max(periods, default=DEFAULT_PERIOD_SECONDS)


def alarm_queries(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The GetMetricData queries whose returned series the alarm judges."""
    if alarm.get("Metrics"):
        return [dict(query) for query in alarm["Metrics"]]
    metric_stat: dict[str, Any] = {
        "Metric": {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions", []),
        },
        "Period": int(alarm["Period"]),
        "Stat": alarm.get("Statistic") or alarm["ExtendedStatistic"],
    }
    if alarm.get("Unit"):
        metric_stat["Unit"] = alarm["Unit"]
    return [{"Id": "m", "MetricStat": metric_stat, "ReturnData": True}]


def judge(alarm: dict[str, Any], slots: list[tuple[datetime, float | None]], now: datetime) -> Verdict | None:
    """The state the alarm should be in given its evaluation range (oldest first); None: not judged."""
    comparison = _COMPARISONS.get(alarm.get("ComparisonOperator", ""))
    if comparison is None:
        return None
    compare, words = comparison
    threshold = float(alarm["Threshold"])
    treat_missing = alarm.get("TreatMissingData", "missing")
    needed = int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
    present = [(moment, value) for moment, value in slots if value is not None]
    missing = len(slots) - len(present)
    breaching = sum(1 for _moment, value in present if compare(value, threshold))
    if treat_missing == "breaching":
        breaching += missing
    newest_first = sorted(present, key=lambda point: point[0], reverse=True)
    data = {
        "version": "1.0",
        "queryDate": _cloudwatch_time(now),
        "startDate": _cloudwatch_time(slots[0][0]),
        "period": alarm_period(alarm),
        "recentDatapoints": [value for _moment, value in newest_first],
        "threshold": threshold,
        "evaluatedDatapoints": [{"timestamp": _cloudwatch_time(moment), "value": value} for moment, value in present],
    }
    stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
    if stat:
        data["statistic"] = stat
    points = ", ".join(f"{value} ({_short_time(moment)})" for moment, value in newest_first)
    if breaching >= needed:
        reason = (
            f"Threshold Crossed: {breaching} out of the last {len(slots)} datapoints [{points}] were {words} the "
            f"threshold ({threshold}) (minimum {needed} datapoints for OK -> ALARM transition)."
        )
        return Verdict("ALARM", reason, data)
    if not present and treat_missing in ("missing", "ignore"):
        if treat_missing == "ignore":
            return None
        return Verdict("INSUFFICIENT_DATA", f"Insufficient Data: {len(slots)} datapoints were unknown.", data)
    reason = (
        f"Threshold Crossed: {len(slots) - breaching} out of the last {len(slots)} datapoints [{points}] were not "
        f"{words} the threshold ({threshold}) (minimum {len(slots) - needed + 1} datapoints for ALARM -> OK "
        "transition)."
    )
    return Verdict("OK", reason, data)


class AlarmEvaluator:
    """Evaluates every metric alarm at the end of its periods; see the module docstring."""

    def __init__(self, cloudwatch: Any, set_alarm_state: SetAlarmState) -> None:
        self._cloudwatch = cloudwatch
        self._set_alarm_state = set_alarm_state

    def evaluate(self, now: datetime) -> list[tuple[str, str]]:
        """Judge each alarm whose period ends at ``now``; returns the (alarm, new state) changes made."""
        changes = []
        for alarm in self._alarms():
            period = alarm_period(alarm)
            if int(now.timestamp()) % period != 0:
                continue
            verdict = self._verdict(alarm, period, now)
            if verdict is None or verdict.state == alarm["StateValue"]:
                continue
            try:
                self._set_alarm_state(
                    alarm["AlarmName"], verdict.state, verdict.reason, json.dumps(verdict.reason_data)
                )
            except KeyError:
                continue  # deleted meanwhile (a rollout's handler removed its alarms): nothing to change
            changes.append((alarm["AlarmName"], verdict.state))
        return changes

    def _alarms(self) -> list[dict[str, Any]]:
        alarms: list[dict[str, Any]] = []
        for page in self._cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            alarms.extend(page.get("MetricAlarms", []))
        return alarms

    def _verdict(self, alarm: dict[str, Any], period: int, now: datetime) -> Verdict | None:
        if alarm.get("ComparisonOperator") not in _COMPARISONS:
            logger.info("local alarms: %s is not evaluated (%s)", alarm["AlarmName"], alarm.get("ComparisonOperator"))
            return None
        count = int(alarm["EvaluationPeriods"])
        start = now - timedelta(seconds=period * count)
        response = self._cloudwatch.get_metric_data(
            MetricDataQueries=alarm_queries(alarm), StartTime=start, EndTime=now, ScanBy="TimestampAscending"
        )
        returned = response["MetricDataResults"]
        if len(returned) != 1:
            logger.warning(
                "local alarms: %s returns %d series, not 1; not evaluated", alarm["AlarmName"], len(returned)
            )
            return None
        values = {
            moment.astimezone(UTC): float(value)
            for moment, value in zip(returned[0]["Timestamps"], returned[0]["Values"], strict=True)
        }
        slots = [(start + timedelta(seconds=period * index), None) for index in range(count)]
        filled = [(moment, values.get(moment.astimezone(UTC))) for moment, _none in slots]
        return judge(alarm, filled, now)
