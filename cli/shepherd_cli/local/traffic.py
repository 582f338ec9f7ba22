"""Local mode's simulated traffic: requests to every endpoint, and SageMaker's per-variant metrics.

Once a simulated minute, each endpoint that serves (``InService`` or ``Updating``) receives
``rps * 60`` requests (``rps``: the `load`'s rate for that minute, one number or a ramp; a load that
`shepherd local traffic --rps` stores in SSM replaces it from the next minute), split between its
variants by their *current* weights (a multinomial draw, so a 10% canary gets about 10%, with the
noise real traffic has). Each variant's version behaves as `traffic_behaviour` says: a share of 5xx
errors (binomial; with the behaviour's bursts, on a rate that varies from minute to minute) and a
log-normal latency with the given median and p99, slower and failing more while the variant warms up
(its first minutes after it starts taking traffic).
What SageMaker would publish for that minute is then put to CloudWatch, stamped with the minute's
start: namespace ``AWS/SageMaker``, dimensions ``EndpointName`` and ``VariantName``,
metrics ``Invocations``, ``Invocation4XXErrors`` (always 0: clients are not simulated),
``Invocation5XXErrors`` (Count) and ``ModelLatency`` (Microseconds, one sample per invocation, sent as
``Values``/``Counts`` on a 1% logarithmic grid so that percentiles can be computed, see
`cloudwatch_emulator`), and ``InvocationsPerInstance`` (invocations over the variant's current instance
count: what target tracking scales on, see `autoscaling`). SageMaker sends ``InvocationsPerInstance``
with each request, so a minute without invocations has no datum (and target tracking no reason to scale in).

The cost stays low: no request is made; per variant-minute the simulator draws one normal number per
invocation for the latency and a few binomials, then makes one PutMetricData call per endpoint.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.sagemaker.models import sagemaker_backends

from shepherd_cli.local.load import Load, stored_load
from shepherd_cli.local.traffic_behaviour import HEALTHY, Behaviour, behaviours_by_variant

logger = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
SERVING_STATUSES = ("InService", "Updating", "SystemUpdating")
Z_99 = 2.3263478740408408  # the standard normal's 99th percentile
LATENCY_GRID_STEPS_PER_E = 100  # ModelLatency values are rounded to exp(k / 100) us: 1% apart
MAX_VALUES_PER_DATUM = 150  # PutMetricData's limit for Values/Counts


@dataclass(frozen=True)
class ServingVariant:
    name: str
    weight: float
    instances: int | None = None  # CurrentInstanceCount; None for a serverless variant


@dataclass(frozen=True)
class ServingEndpoint:
    name: str
    variants: tuple[ServingVariant, ...]


EndpointSource = Callable[[], list[ServingEndpoint]]


@dataclass(frozen=True)
class VariantMinute:
    """One variant's simulated minute: what SageMaker would count and time."""

    endpoint_name: str
    variant_name: str
    invocations: int
    errors_5xx: int
    errors_4xx: int = 0
    latency_us: dict[float, int] = field(default_factory=dict)  # microseconds -> how many invocations
    instances: int | None = None  # the variant's current instance count during the minute


def moto_endpoints(account_id: str, region: str) -> EndpointSource:
    """The serving endpoints and their current weights, read from moto's SageMaker backend.

    Read in-process rather than with DescribeEndpoint, because in the emulator each DescribeEndpoint
    moves an endpoint's update forward (see `emulator`): the simulator must not change what the
    controller sees.
    """

    def endpoints() -> list[ServingEndpoint]:
        backend = sagemaker_backends[account_id][region]
        serving = []
        for endpoint in list(backend.endpoints.values()):
            if endpoint.endpoint_status not in SERVING_STATUSES:
                continue
            variants = tuple(
                ServingVariant(
                    variant["VariantName"],
                    float(variant.get("CurrentWeight") or 0.0),
                    variant.get("CurrentInstanceCount"),
                )
                for variant in list(endpoint.production_variants)
            )
            serving.append(ServingEndpoint(endpoint.endpoint_name, variants))
        return serving

    return endpoints


# --- drawing a minute ---------------------------------------------------------------------------------


def binomial(trials: int, probability: float, rng: random.Random) -> int:
    """A binomial draw: exact for small expected counts, a rounded normal approximation otherwise."""
    if trials <= 0 or probability <= 0:
        return 0
    if probability >= 1:
        return trials
    variance = trials * probability * (1 - probability)
    if variance < 25:
        return sum(1 for _ in range(trials) if rng.random() < probability)
    drawn = round(rng.gauss(trials * probability, math.sqrt(variance)))
    return min(trials, max(0, drawn))


def split_requests(total: int, variants: tuple[ServingVariant, ...], rng: random.Random) -> list[int]:
    """A multinomial split of ``total`` requests by weight (SageMaker routes weight / sum of weights)."""
    remaining_weight = sum(max(0.0, variant.weight) for variant in variants)
    remaining = total
    counts = []
    for variant in variants:
        weight = max(0.0, variant.weight)
        share = weight / remaining_weight if remaining_weight > 0 else 0.0
        count = binomial(remaining, share, rng)
        counts.append(count)
        remaining -= count
        remaining_weight -= weight
    return counts


def latency_histogram(
    invocations: int, behaviour: Behaviour, rng: random.Random, slower: float = 1.0
) -> dict[float, int]:
    """``invocations`` log-normal latencies (microseconds), ``slower`` times the behaviour's, counted
    on a 1% logarithmic grid."""
    mu = math.log(behaviour.latency_ms * 1000 * slower)
    sigma = math.log(behaviour.p99_ms / behaviour.latency_ms) / Z_99
    steps = LATENCY_GRID_STEPS_PER_E
    counts = Counter(round((mu + sigma * rng.gauss(0.0, 1.0)) * steps) for _ in range(invocations))
    return {round(math.exp(step / steps), 1): count for step, count in counts.items()}


def burst_factor(cv: float, rng: random.Random) -> float:
    """A gamma factor of mean 1 and coefficient of variation ``cv`` (1 when cv is 0, with no draw)."""
    return rng.gammavariate(1 / cv**2, cv**2) if cv > 0 else 1.0


def shock_factor(cv: float, shock: float) -> float:
    """The log-normal factor of mean 1 and coefficient of variation ``cv`` at the standard normal
    ``shock`` shared by the endpoint's variants this minute."""
    sigma = math.sqrt(math.log1p(cv**2))
    return math.exp(sigma * shock - sigma**2 / 2)


def error_probability(behaviour: Behaviour, age: int | None, shock: float, rng: random.Random) -> float:
    """The minute's 5xx probability: the behaviour's, times its bursts and the endpoint's shock, plus
    the warm-up's extra errors."""
    rate = behaviour.error_percent / 100 * burst_factor(behaviour.error_bursts, rng)
    if behaviour.common_shocks > 0:
        rate *= shock_factor(behaviour.common_shocks, shock)
    return min(1.0, rate + behaviour.extra_5xx_percent(age) / 100)


def simulate_minute(
    endpoint: ServingEndpoint,
    behaviours: dict[str, Behaviour],
    rps: float,
    rng: random.Random,
    ages: Mapping[str, int | None] | None = None,
) -> list[VariantMinute]:
    """One minute of ``endpoint``; ``ages``: each variant's minutes since it started taking traffic
    (0 in its first minute; None or absent: warm)."""
    requests = split_requests(round(rps * 60), endpoint.variants, rng)
    serving = [behaviours.get(variant.name, HEALTHY) for variant in endpoint.variants]
    # Drawn only when asked for, so that traffic without shocks draws the same numbers as before.
    shock = rng.gauss(0.0, 1.0) if any(behaviour.common_shocks > 0 for behaviour in serving) else 0.0
    minutes = []
    for variant, behaviour, invocations in zip(endpoint.variants, serving, requests, strict=True):
        age = (ages or {}).get(variant.name)
        errors = binomial(invocations, error_probability(behaviour, age, shock, rng), rng)
        latency = latency_histogram(invocations, behaviour, rng, behaviour.latency_factor(age))
        minutes.append(
            VariantMinute(
                endpoint.name, variant.name, invocations, errors, latency_us=latency, instances=variant.instances
            )
        )
    return minutes


def metric_data(minute: VariantMinute, timestamp: datetime) -> list[dict[str, Any]]:
    """The PutMetricData entries SageMaker would publish for one variant-minute."""
    dimensions = [
        {"Name": "EndpointName", "Value": minute.endpoint_name},
        {"Name": "VariantName", "Value": minute.variant_name},
    ]
    counts = (
        ("Invocations", minute.invocations),
        ("Invocation4XXErrors", minute.errors_4xx),
        ("Invocation5XXErrors", minute.errors_5xx),
    )
    data: list[dict[str, Any]] = [
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp, "Value": float(value), "Unit": "Count"}
        for name, value in counts
    ]
    if minute.instances and minute.invocations > 0:
        data.append(
            {
                "MetricName": "InvocationsPerInstance",
                "Dimensions": dimensions,
                "Timestamp": timestamp,
                "Value": minute.invocations / minute.instances,
                "Unit": "None",
            }
        )
    for values in _chunks(sorted(minute.latency_us.items())):
        data.append(
            {
                "MetricName": "ModelLatency",
                "Dimensions": dimensions,
                "Timestamp": timestamp,
                "Values": [value for value, _count in values],
                "Counts": [float(count) for _value, count in values],
                "Unit": "Microseconds",
            }
        )
    return data


def _constant(rps: float) -> Load:
    if isinstance(rps, bool) or not isinstance(rps, int | float) or rps < 0 or not math.isfinite(rps):
        raise ValueError(f"rps: must be a number >= 0, got {rps!r}")
    return Load.constant(rps)


def _chunks(items: list[tuple[float, int]]) -> Iterator[list[tuple[float, int]]]:
    for start in range(0, len(items), MAX_VALUES_PER_DATUM):
        yield items[start : start + MAX_VALUES_PER_DATUM]


# --- publishing ---------------------------------------------------------------------------------------


class TrafficSimulator:
    """Publishes a simulated minute of every serving endpoint's metrics (see the module docstring)."""

    def __init__(
        self, cloudwatch: Any, ssm: Any, endpoints: EndpointSource, *, rps: float | Load, rng: random.Random
    ) -> None:
        self.load = rps if isinstance(rps, Load) else _constant(rps)
        self._cloudwatch = cloudwatch
        self._ssm = ssm
        self._endpoints = endpoints
        self._rng = rng
        # (endpoint, variant) -> the first minute it took traffic; None: it did before the first
        # minute simulated here (after a restart, say), so it is taken as warm.
        self._serving_since: dict[tuple[str, str], datetime | None] = {}
        self._stored_version: int | None = None  # the stored load's version last taken (see `_follow_stored_load`)
        self._refused = ""  # the last stored load refused (logged once)
        self.last_rps: float | None = None  # the rate of the last minute simulated
        self._first_minute = True

    @property
    def rps(self) -> float:
        """The rate of the last minute simulated (the load's first rate before any)."""
        return self.last_rps if self.last_rps is not None else self.load.points[0].rps

    @rps.setter
    def rps(self, rps: float) -> None:
        """From the next minute on, ``rps`` all along (as `shepherd local up --rps N`)."""
        self.load = _constant(rps)
        self.last_rps = None

    def publish_minute(self, minute_start: datetime) -> list[VariantMinute]:
        """Simulate the minute starting at ``minute_start`` and publish it; returns what was published."""
        first, self._first_minute = self._first_minute, False
        self._follow_stored_load()
        if self.load.start is None:  # a ramp given to `local up` starts with its first minute
            self.load = self.load.starting(minute_start)
        rps = self.last_rps = self.load.rps_during(minute_start)
        if rps == 0:
            return []
        endpoints = self._endpoints()
        if not endpoints:
            return []
        behaviours = behaviours_by_variant(self._ssm)
        published = []
        for endpoint in endpoints:
            minutes = simulate_minute(endpoint, behaviours, rps, self._rng, self._ages(endpoint, minute_start, first))
            data = [entry for minute in minutes for entry in metric_data(minute, minute_start)]
            if data:
                self._cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
            published.extend(minutes)
        return published

    def _follow_stored_load(self) -> None:
        """Take the load `shepherd local traffic --rps` stored, once per change of the parameter (so
        that a rate set in-process since is not overridden by an older stored one)."""
        try:
            stored = stored_load(self._ssm)
        except ValueError as error:
            if str(error) != self._refused:
                logger.warning("local traffic: ignoring the stored load: %s", error)
                self._refused = str(error)
            return
        if stored is not None and stored[1] != self._stored_version:
            (self.load, self._stored_version), self.last_rps = stored, None

    def _ages(self, endpoint: ServingEndpoint, minute_start: datetime, first: bool) -> dict[str, int | None]:
        """Each variant's whole minutes since it started taking traffic (a weight above 0). A variant
        that leaves the endpoint is forgotten: one of the same name later is new, and cold."""
        present = {(endpoint.name, variant.name) for variant in endpoint.variants}
        for key in [key for key in self._serving_since if key[0] == endpoint.name and key not in present]:
            del self._serving_since[key]
        ages: dict[str, int | None] = {}
        for variant in endpoint.variants:
            key = (endpoint.name, variant.name)
            if key not in self._serving_since and variant.weight > 0:
                self._serving_since[key] = None if first else minute_start
            since = self._serving_since.get(key)
            ages[variant.name] = None if since is None else int((minute_start - since).total_seconds() // 60)
        return ages
