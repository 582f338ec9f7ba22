"""Shepherd's extension of moto 5.2.5's CloudWatch metrics, for the tests and local mode only.

Never imported by Lambda code. Importing this module changes nothing; ``install()`` applies every patch
(calling it again is harmless). The patches live on moto's classes, so they work both in-process under
``moto.mock_aws`` and in ``ThreadedMotoServer`` when the server runs in the same process. There is no
state of its own to reset: the metric data stays in moto's backend (cleared by moto's reset).

What is extended, and why (the moto gap each closes):

* **Distributions are stored as one datum.** moto stores a ``PutMetricData`` datum with
  ``Values``/``Counts`` as one object per count (3,000 objects for a minute of 50 requests a second),
  and every ``GetMetricData`` scans them all. Here such a datum is one object that keeps its values and
  counts, and reports Sum, Minimum, Maximum and SampleCount to moto's own statistics.
* **Extended statistics** in ``GetMetricData`` (as a ``MetricStat`` ``Stat``) and
  ``GetMetricStatistics`` (``ExtendedStatistics``): percentiles (``p50``, ``p99.9``), trimmed means,
  counts and sums (``TM(a:b)``, ``TC(a:b)``, ``TS(a:b)``, ``tm99``, ``IQM``) and percentile ranks
  (``PR(a:b)``), as `cloudwatch_statistics` computes them; moto computes only Sum, Average, Minimum,
  Maximum and SampleCount. They are computed over every sample of the period: each value of a
  ``Values``/``Counts`` datum ``count`` times, each single ``Value`` once, and a ``StatisticValues``
  set only when CloudWatch can (its ``SampleCount`` is 1 or its ``Minimum`` equals its ``Maximum``);
  otherwise, or when a value is negative, the period has no such statistic, as in CloudWatch. A
  malformed one is a ``ValidationError``. (The API reference documents only percentiles for
  ``GetMetricStatistics``; the others are answered there too.)
* **Metric math** in ``GetMetricData``: moto returns an expression's data only when the expression is
  the id of another query. Here an expression is evaluated point by point over the ``MetricStat``
  queries it names: numbers, ids, ``+ - * /``, unary minus, comparisons (1 or 0), ``AND``/``OR``
  and ``IF(condition, a, b)``. A point is computed where every named series has data; a result that
  is not a finite number (division by zero) leaves no point. Other functions (``FILL``, ``METRICS()``,
  ``SEARCH``...) are rejected with a ``ValidationError`` that names them.
"""

from __future__ import annotations

import ast
import math
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, SupportsFloat

from moto.cloudwatch import models as cloudwatch_models
from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum, MetricDatum, Statistics
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from shepherd_cli.local import cloudwatch_statistics
from shepherd_cli.local.cloudwatch_statistics import ExtendedStatistic

_lock = threading.Lock()
_installed = False

# moto's own behaviour, kept so the patched methods can delegate to it.
_moto_put_metric_data = CloudWatchBackend.put_metric_data
_moto_statistic = Statistics.get_statistics_for_type
_moto_get_metric_statistics = CloudWatchResponse.get_metric_statistics
_moto_get_metric_data = CloudWatchBackend.get_metric_data


def install() -> None:
    """Patch moto's CloudWatch classes. Idempotent: a second call changes nothing."""
    global _installed
    with _lock:
        if _installed:
            return
        CloudWatchBackend.put_metric_data = _put_metric_data  # type: ignore[method-assign]
        Statistics.get_statistics_for_type = _statistic  # type: ignore[method-assign]
        CloudWatchBackend.get_metric_data = _get_metric_data  # type: ignore[method-assign]
        CloudWatchResponse.get_metric_statistics = _get_metric_statistics_response  # type: ignore[method-assign]
        # moto's get_metric_data calls the module-level name, so that is what is replaced.
        cloudwatch_models.parse_expression = _evaluate_expression  # type: ignore[attr-defined]  # moto imports it
        _installed = True


# --- storage ------------------------------------------------------------------------------------------


class DistributionDatum(MetricAggregatedDatum):
    """A ``Values``/``Counts`` datum kept whole: moto's statistics see its sum, min, max and count."""

    def __init__(
        self,
        namespace: str,
        name: str,
        values: list[float],
        counts: list[float],
        dimensions: list[dict[str, str]],
        timestamp: datetime | None,
        unit: Any = None,
    ) -> None:
        super().__init__(
            namespace,
            name,
            min_stat=min(values),
            max_stat=max(values),
            sample_count=sum(counts),
            sum_stat=sum(value * count for value, count in zip(values, counts, strict=True)),
            dimensions=dimensions,
            timestamp=timestamp,
            unit=unit,
        )
        self.values = values
        self.counts = counts


def _put_metric_data(self: CloudWatchBackend, namespace: str, metric_data: list[dict[str, Any]]) -> None:
    # moto validates every datum first, then stores; distributions are validated the same way.
    for number, datum in enumerate(metric_data, start=1):
        self._validate_parameters_put_metric_data(datum, number)
    others = []
    for datum in metric_data:
        values = datum.get("Values")
        if not values:
            others.append(datum)
            continue
        counts = datum.get("Counts") or ["1"] * len(values)
        pairs = [(float(value), float(count)) for value, count in zip(values, counts, strict=True) if float(count) > 0]
        if not pairs:
            continue
        self.metric_data.append(
            DistributionDatum(
                namespace,
                datum["MetricName"],
                [value for value, _count in pairs],
                [count for _value, count in pairs],
                datum.get("Dimensions", []),
                datum.get("Timestamp"),
                datum.get("Unit"),
            )
        )
    if others:
        _moto_put_metric_data(self, namespace, others)


# --- extended statistics ------------------------------------------------------------------------------


def extended_statistic(stat: str) -> ExtendedStatistic | None:
    """The extended statistic ``stat`` names (None for moto's own); a malformed one is refused."""
    try:
        return cloudwatch_statistics.parse(stat)
    except ValueError as error:
        raise ValidationError(f"Invalid statistic: {error}") from None


def _samples(metric_data: Iterable[Any]) -> list[tuple[float, float]] | None:
    """Every sample of a period as (value, count); None when CloudWatch could not compute an extended
    statistic from them (a statistic set of several different values, or a negative value)."""
    samples: list[tuple[float, float]] = []
    for datum in metric_data:
        if isinstance(datum, DistributionDatum):
            samples.extend(zip(datum.values, datum.counts, strict=True))
        elif isinstance(datum, MetricDatum):
            samples.append((datum.value, 1.0))
        elif isinstance(datum, MetricAggregatedDatum) and (datum.sample_count == 1 or datum.min == datum.max):
            samples.append((datum.min, float(datum.sample_count)))
        else:
            return None
    return None if any(value < 0 for value, _count in samples) else samples


def _statistic(self: Statistics, stat: str) -> SupportsFloat | None:
    extended = extended_statistic(stat)
    if extended is None:
        return _moto_statistic(self, stat)
    samples = _samples(self.metric_data)
    return None if samples is None else cloudwatch_statistics.compute(extended, samples)


def _get_metric_data(
    self: CloudWatchBackend, queries: list[dict[str, Any]], *args: Any, **kwargs: Any
) -> list[dict[str, Any]]:
    """moto's GetMetricData, with every statistic checked first, and without the periods whose
    statistic has no value (a percentile of a period with only statistic sets, a trimmed mean of no
    sample): CloudWatch leaves such a period out, moto would fail to render it."""
    for query in queries:
        if "MetricStat" in query:
            extended_statistic(str(query["MetricStat"]["Stat"]))
    results = _moto_get_metric_data(self, queries, *args, **kwargs)
    for result in results:
        points = zip(result["timestamps"], result["values"], strict=True)
        kept = [(moment, value) for moment, value in points if value is not None]
        result["timestamps"] = [moment for moment, _value in kept]
        result["values"] = [value for _moment, value in kept]
    return results


def _get_metric_statistics_response(self: CloudWatchResponse) -> ActionResult:
    """moto's GetMetricStatistics, plus each datapoint's ``ExtendedStatistics``."""
    extended = [str(name) for name in self._get_param("ExtendedStatistics", []) or []]
    for name in extended:
        if extended_statistic(name) is None:
            raise ValidationError(f"The value {name} for parameter ExtendedStatistics is not supported.")
    statistics = self._get_param("Statistics", []) or []
    if not statistics and not extended:
        return _moto_get_metric_statistics(self)  # moto's own error for that case
    datapoints = self.cloudwatch_backend.get_metric_statistics(
        self._get_param("Namespace"),
        self._get_param("MetricName"),
        self._get_param("StartTime"),
        self._get_param("EndTime"),
        self._get_int_param("Period"),
        statistics,
        unit=self._get_param("Unit"),
        dimensions=self._get_param("Dimensions", []),
    )
    for datapoint in datapoints:
        values = {name: _statistic(datapoint, name) for name in extended}
        # moto renders each attribute named like a response field (extended_statistics -> ExtendedStatistics).
        datapoint.extended_statistics = {name: value for name, value in values.items() if value is not None}  # type: ignore[attr-defined]
    return ActionResult({"Label": self._get_param("MetricName"), "Datapoints": datapoints})


# --- metric math --------------------------------------------------------------------------------------

Series = dict[datetime, float]

_ARITHMETIC: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_COMPARISONS: dict[type, Callable[[float, float], bool]] = {
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}


def parse_metric_math(expression: str) -> ast.expr:
    """The expression as a Python syntax tree (CloudWatch's operators map onto Python's)."""
    text = f" {expression} ".replace("&&", " and ").replace("||", " or ")
    text = text.replace(" AND ", " and ").replace(" OR ", " or ")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValidationError(f"Unsupported metric math expression: {expression}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id == "IF"):
            name = node.func.id if isinstance(node.func, ast.Name) else "?"
            raise ValidationError(f"Unsupported metric math function {name} in: {expression} (local emulator)")
    return tree


def evaluate_point(tree: ast.expr, values: dict[str, float]) -> float:
    """One point of the expression, given each named series' value at that point."""
    match tree:
        case ast.Constant(value=int() | float() as number):
            return float(number)
        case ast.Name(id=name) if name in values:
            return values[name]
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -evaluate_point(operand, values)
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _ARITHMETIC:
            return _ARITHMETIC[type(op)](evaluate_point(left, values), evaluate_point(right, values))
        case ast.Compare(left=left, ops=[op], comparators=[right]) if type(op) in _COMPARISONS:
            return float(_COMPARISONS[type(op)](evaluate_point(left, values), evaluate_point(right, values)))
        case ast.BoolOp(op=ast.And(), values=operands):
            return float(all(evaluate_point(operand, values) != 0 for operand in operands))
        case ast.BoolOp(op=ast.Or(), values=operands):
            return float(any(evaluate_point(operand, values) != 0 for operand in operands))
        case ast.Call(args=[condition, then, otherwise]):  # IF, the only call parse_metric_math lets through
            chosen = then if evaluate_point(condition, values) != 0 else otherwise
            return evaluate_point(chosen, values)
    raise ValidationError(f"Unsupported metric math: {ast.unparse(tree)}")


def series_names(tree: ast.expr) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id != "IF"}


def _evaluate_expression(expression: str, results: list[dict[str, Any]]) -> tuple[list[SupportsFloat], list[datetime]]:
    """Replaces moto's ``parse_expression``: the expression over the MetricStat results it names."""
    tree = parse_metric_math(expression)
    by_id: dict[str, Series] = {
        result["id"]: {
            moment: float(value)
            for moment, value in zip(result["timestamps"], result["values"], strict=True)
            if value is not None
        }
        for result in results
    }
    names = series_names(tree)
    unknown = names - by_id.keys()
    if unknown:
        raise ValidationError(f"Metric math expression {expression!r} names unknown ids: {', '.join(sorted(unknown))}")
    if not names:
        return [], []
    moments = sorted(set.intersection(*(set(by_id[name]) for name in names)))
    values: list[SupportsFloat] = []
    timestamps: list[datetime] = []
    for moment in moments:
        try:
            value = evaluate_point(tree, {name: by_id[name][moment] for name in names})
        except ZeroDivisionError:
            continue
        if math.isfinite(value):
            values.append(value)
            timestamps.append(moment)
    return values, timestamps
