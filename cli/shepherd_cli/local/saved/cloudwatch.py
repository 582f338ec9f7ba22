"""CloudWatch's saved part: the alarms with their states, and the metric data.

The rollout controller and the canary judge read the alarms' states and the endpoints' metrics back
(the judge over the whole canary, the alarm evaluator over its periods), so both are kept: each alarm as
PutMetricAlarm made it, then its state, reason and timestamps set on it directly, not through
SetAlarmState or `Alarm.update_state`, which local mode listens to (`alarm_changes`): a restored
state is not a state change, and nothing is delivered for it. Each datum is kept in the form it was
stored: a single value, a statistic set, or a distribution (`cloudwatch_emulator.DistributionDatum`).
Not kept: alarm history (moto does not serve it), dashboards (the template's deployment makes them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from moto.cloudwatch.models import (
    Alarm,
    Dimension,
    Metric,
    MetricAggregatedDatum,
    MetricDataQuery,
    MetricDatum,
    MetricDatumBase,
    MetricStat,
    cloudwatch_backends,
)
from pydantic import Field

from shepherd_cli.local.cloudwatch_emulator import DistributionDatum
from shepherd_cli.local.saved.document import Document, Saved

# What moto stores as it was given: a number, or the request's text for it.
Scalar = str | int | float | bool | None


class SavedMetricStat(Saved):
    metric_name: str
    namespace: str | None
    dimensions: list[tuple[str | None, str | None]]
    period: Scalar
    stat: str | None
    unit: str | None


class SavedQuery(Saved):
    id: str | None
    label: str | None
    period: Scalar
    return_data: Scalar
    expression: str | None
    metric_stat: SavedMetricStat | None


class SavedAlarm(Saved):
    name: str
    namespace: str | None
    metric_name: str | None
    queries: list[SavedQuery]
    comparison_operator: str | None
    evaluation_periods: Scalar
    datapoints_to_alarm: Scalar
    period: Scalar
    threshold: Scalar
    statistic: str | None
    extended_statistic: str | None
    description: str | None
    dimensions: list[tuple[str | None, str | None]]
    alarm_actions: list[str]
    ok_actions: list[str]
    insufficient_data_actions: list[str]
    unit: str | None
    actions_enabled: bool
    treat_missing_data: str | None
    evaluate_low_sample_count_percentile: str | None
    threshold_metric_id: str | None
    rule: str | None
    tags: dict[str, str]
    configuration_updated_timestamp: datetime
    state_value: str
    state_reason: str
    state_reason_data: str | None
    state_updated_timestamp: datetime


class _Datum(Saved):
    namespace: str
    name: str
    dimensions: list[tuple[str, str]]
    timestamp: datetime
    unit: str | None


class SavedValue(_Datum):
    kind: Literal["value"] = "value"
    value: float


class SavedStatistics(_Datum):
    kind: Literal["statistics"] = "statistics"
    minimum: float
    maximum: float
    sample_count: float
    sum: float


class SavedDistribution(_Datum):
    kind: Literal["distribution"] = "distribution"
    values: list[float]
    counts: list[float]


SavedDatum = Annotated[SavedValue | SavedStatistics | SavedDistribution, Field(discriminator="kind")]


class Region(Saved):
    account: str
    region: str
    alarms: list[SavedAlarm]
    metric_data: list[SavedDatum]


class CloudWatchDocument(Document):
    service: Literal["cloudwatch"] = "cloudwatch"
    regions: list[Region]


def capture() -> CloudWatchDocument:
    regions = []
    for account, by_region in cloudwatch_backends.items():
        for region, backend in by_region.items():
            alarms = [_alarm(alarm, backend) for alarm in list(backend.alarms.values())]
            data = [_datum(datum) for datum in list(backend.metric_data)]
            if alarms or data:
                regions.append(Region(account=account, region=region, alarms=alarms, metric_data=data))
    return CloudWatchDocument(regions=regions)


def _alarm(alarm: Alarm, backend: Any) -> SavedAlarm:
    return SavedAlarm(
        name=alarm.name,
        namespace=alarm.namespace,
        metric_name=alarm.metric_name,
        queries=[_query(query) for query in alarm.metric_data_queries],
        comparison_operator=alarm.comparison_operator,
        evaluation_periods=alarm.evaluation_periods,
        datapoints_to_alarm=alarm.datapoints_to_alarm,
        period=alarm.period,
        threshold=alarm.threshold,
        statistic=alarm.statistic,
        extended_statistic=alarm.extended_statistic,
        description=alarm.description,
        dimensions=[(dimension.name, dimension.value) for dimension in alarm.dimensions],
        alarm_actions=list(alarm.alarm_actions or []),
        ok_actions=list(alarm.ok_actions),
        insufficient_data_actions=list(alarm.insufficient_data_actions),
        unit=alarm.unit,
        actions_enabled=bool(alarm.actions_enabled),
        treat_missing_data=alarm.treat_missing_data,
        evaluate_low_sample_count_percentile=alarm.evaluate_low_sample_count_percentile,
        threshold_metric_id=alarm.threshold_metric_id,
        rule=alarm.rule,
        tags=dict(backend.tagger.get_tag_dict_for_resource(alarm.alarm_arn)),
        configuration_updated_timestamp=alarm.configuration_updated_timestamp,
        state_value=alarm.state_value,
        state_reason=alarm.state_reason,
        state_reason_data=alarm.state_reason_data,
        state_updated_timestamp=alarm.state_updated_timestamp,
    )


def _query(query: MetricDataQuery) -> SavedQuery:
    stat = query.metric_stat
    return SavedQuery(
        id=query.id,
        label=query.label,
        period=query.period,
        return_data=query.return_data,
        expression=query.expression,
        metric_stat=None
        if stat is None
        else SavedMetricStat(
            metric_name=stat.metric.metric_name,
            namespace=stat.metric.namespace,
            dimensions=[(dimension.name, dimension.value) for dimension in stat.metric.dimensions],
            period=stat.period,
            stat=stat.stat,
            unit=stat.unit,
        ),
    )


def _datum(datum: MetricDatumBase) -> SavedValue | SavedStatistics | SavedDistribution:
    common: dict[str, Any] = {
        "namespace": datum.namespace,
        "name": datum.name,
        "dimensions": [(str(dimension.name), str(dimension.value)) for dimension in datum.dimensions],
        "timestamp": datum.timestamp,
        "unit": datum.unit,
    }
    if isinstance(datum, DistributionDatum):
        return SavedDistribution(**common, values=datum.values, counts=datum.counts)
    if isinstance(datum, MetricAggregatedDatum):
        return SavedStatistics(
            **common, minimum=datum.min, maximum=datum.max, sample_count=datum.sample_count, sum=datum.sum
        )
    if isinstance(datum, MetricDatum):
        return SavedValue(**common, value=datum.value)
    raise TypeError(f"a metric datum local mode does not know how to save: {type(datum).__name__}")


def apply(document: CloudWatchDocument) -> None:
    for saved in document.regions:
        backend: Any = cloudwatch_backends[saved.account][saved.region]
        for alarm in saved.alarms:
            _restore_alarm(backend, alarm)
        backend.metric_data = [_restored_datum(datum) for datum in saved.metric_data]


def _restore_alarm(backend: Any, saved: SavedAlarm) -> None:
    alarm = backend.put_metric_alarm(
        name=saved.name,
        namespace=saved.namespace,
        metric_name=saved.metric_name,
        metric_data_queries=[_restored_query(query) for query in saved.queries] or None,
        comparison_operator=saved.comparison_operator,
        evaluation_periods=saved.evaluation_periods,
        datapoints_to_alarm=saved.datapoints_to_alarm,
        period=saved.period,
        threshold=saved.threshold,
        statistic=saved.statistic,
        extended_statistic=saved.extended_statistic,
        description=saved.description,
        dimensions=[{"Name": name, "Value": value} for name, value in saved.dimensions],
        alarm_actions=list(saved.alarm_actions),
        ok_actions=list(saved.ok_actions),
        insufficient_data_actions=list(saved.insufficient_data_actions),
        unit=saved.unit,
        actions_enabled=saved.actions_enabled,
        treat_missing_data=saved.treat_missing_data,
        evaluate_low_sample_count_percentile=saved.evaluate_low_sample_count_percentile,
        threshold_metric_id=saved.threshold_metric_id,
        rule=saved.rule,
        tags=[{"Key": key, "Value": value} for key, value in saved.tags.items()],
    )
    # Set, not changed: update_state would record and announce a state change (see the docstring).
    alarm.configuration_updated_timestamp = saved.configuration_updated_timestamp
    alarm.state_value = saved.state_value
    alarm.state_reason = saved.state_reason
    alarm.state_reason_data = saved.state_reason_data
    alarm.state_updated_timestamp = saved.state_updated_timestamp


def _restored_query(saved: SavedQuery) -> MetricDataQuery:
    stat = saved.metric_stat
    metric_stat = (
        None
        if stat is None
        else MetricStat(
            metric=Metric(
                metric_name=stat.metric_name,
                namespace=stat.namespace,  # type: ignore[arg-type]  # moto keeps what the request gave
                dimensions=[Dimension(name, value) for name, value in stat.dimensions],
            ),
            period=stat.period,  # type: ignore[arg-type]
            stat=stat.stat,  # type: ignore[arg-type]
            unit=stat.unit,  # type: ignore[arg-type]
        )
    )
    return MetricDataQuery(
        query_id=saved.id,  # type: ignore[arg-type]
        label=saved.label,  # type: ignore[arg-type]
        period=saved.period,  # type: ignore[arg-type]
        return_data=saved.return_data,  # type: ignore[arg-type]
        expression=saved.expression,
        metric_stat=metric_stat,
    )


def _restored_datum(saved: SavedValue | SavedStatistics | SavedDistribution) -> MetricDatumBase:
    dimensions = [{"Name": name, "Value": value} for name, value in saved.dimensions]
    if isinstance(saved, SavedDistribution):
        return DistributionDatum(
            saved.namespace, saved.name, saved.values, saved.counts, dimensions, saved.timestamp, saved.unit
        )
    if isinstance(saved, SavedStatistics):
        return MetricAggregatedDatum(
            saved.namespace,
            saved.name,
            min_stat=saved.minimum,
            max_stat=saved.maximum,
            sample_count=saved.sample_count,
            sum_stat=saved.sum,
            dimensions=dimensions,
            timestamp=saved.timestamp,
            unit=saved.unit,
        )
    return MetricDatum(saved.namespace, saved.name, saved.value, dimensions, saved.timestamp, saved.unit)
