"""Simulated canary traffic, and what CloudWatch answers about it minute by minute.

A *trial* is one judged traffic step: the baseline variant serving alone for the 10 minutes before
the step (``shepherd.analysis.look.LOOKBACK``), then both variants for 70 minutes (a 60-minute bake
and the longest extension, 10 minutes). Every per-minute statistic is a statistic of that minute's
simulated requests, never of the true distribution.

Assumptions of the traffic model (each one a knob below; a condition switches the mess on or off):

- **Requests.** Total requests per minute are Poisson around ``rps x 60 x load``; each goes to the
  candidate with its step's weight (binomial). Before the step the baseline has all of them and the
  candidate none.
- **Load.** ``flat``: 1. ``diurnal``: a 24-hour sine of amplitude 40% at a random phase (80 minutes see
  up to about 14% of change). ``steep``: the traffic doubles over the 80 minutes simulated (a morning
  ramp). With common noise (below) the load also has bursts: AR(1) on the log scale, coefficient 0.8,
  stationary sd 0.15. Latency rises with load as ``load^0.2``, for both variants alike.
- **Hosts.** The candidate runs on 1 instance, the baseline on 3 (requests spread evenly). Each
  instance has a fixed latency factor, uniform in [0.95, 1.05], and a fixed 5xx factor, uniform in
  [0.9, 1.1], drawn per trial: even an identical model differs from the baseline by host alone.
- **5xx.** 1% of requests, times the host factor, times a per-variant per-minute gamma factor of
  mean 1 and coefficient of variation ``error_cv`` (errors are then negative binomial: 0 clean, 0.3,
  0.7), times the common factor (below), times the regression. 4xx: 2% of the non-5xx requests,
  times their own per-variant gamma factor and a common client factor (lognormal, sd 0.3); the
  candidate never changes them; no host factor. ModelLatency is recorded for every request but 5xx.
- **Common noise and shocks** (both variants, the same minute): a per-minute 5xx factor (lognormal
  of mean 1, sd 0.3) and latency factor (lognormal, sd 0.05); and shocks, in 3% of minutes (about two
  a bake), multiplying both variants' 5xx rate by U(2, 10) and their latency by U(1.2, 2). Each
  variant's latency also has its own per-minute factor (lognormal, sd ``0.1 x error_cv``).
- **Latency.** ModelLatency (microseconds) is lognormal with median 20 ms and sigma 1 (p99 about
  205 ms), times the factors above; 0.1% of requests are 10 times slower (rare outliers).
- **Warm-up** (candidate only, from the step's start). ``typical``: for D minutes, D uniform in
  2..5, latency times 1 + (P - 1)(1 - m / D) in minute m (P uniform in [1.5, 3]), and up to +2%
  5xx in minute one (uniform in [0, 2%]). ``worst``: D = 5, P = 3, +2%.
- **Regressions.** Errors xF multiply the candidate's 5xx rate by F. A tail-only latency regression
  leaves every quantile up to p90 unchanged and stretches the slowest 10%: log latency
  ``sigma z + c max(0, z - z90)`` for the body's standard normal ``z``, with ``c`` chosen so that p99
  is F times the baseline's (median unchanged; the printed check computes both from the model).

Sampling method (exact, not request by request). In a minute a variant's ModelLatency values are
``n`` independent draws from its minute's distribution ``F`` (a mixture over its instances and the
outliers), so ``F(value)`` are ``n`` independent uniforms. The nearest-rank p99 is the ``k99``-th
smallest (``k99 = ceil(0.99 n)``): its uniform is Beta(k99, n - k99 + 1); given it, the p50's uniform
is it times Beta(k50, k99 - k50) (uniform order statistics). Values are ``F^-1`` of the uniforms,
by bisection. Any other statistic of the same minute is drawn later, exactly, conditionally on what
is known of that minute's requests (:class:`LatencySample`): the known order statistics split the
uniforms into cells of known counts, each cell's values independent uniforms within it; a trimmed
count above ``T`` splits the cell holding ``F(T)`` binomially, a new percentile is a Beta order
statistic within its cell. So the TC and the p99 of a minute come from one set of requests, at a
cost that does not depend on the traffic. Counts (Invocations, 5xx, 4xx) are drawn whole (binomial).
CloudWatch's percentiles are taken as exact nearest-rank values (CloudWatch's own are approximate).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Literal, Protocol

import numpy as np
from scipy import special

from shepherd.analysis.look import LOOKBACK

Side = Literal["candidate", "baseline"]

LOOKBACK_MINUTES = int(LOOKBACK / timedelta(minutes=1))
STEP_MINUTES = 70  # the bake and the longest extension: every minute a step can be judged
MINUTES = LOOKBACK_MINUTES + STEP_MINUTES

BASE_5XX = 0.01
BASE_4XX = 0.02
MEDIAN_US = 20_000.0
SIGMA = 1.0
OUTLIER_SHARE = 0.001
OUTLIER_FACTOR = 10.0
Z90 = float(special.ndtri(0.90))  # a tail-only regression leaves everything up to p90 unchanged
Z99 = float(special.ndtri(0.99))
LOAD_LATENCY_EXPONENT = 0.2
BASELINE_HOSTS = 3
HOST_LATENCY_SPREAD = 0.05
HOST_ERROR_SPREAD = 0.10
SHOCK_SHARE = 0.03
_LOG_OUTLIER_FACTOR = math.log(OUTLIER_FACTOR)
_BISECTIONS = 45  # log-latency bracket of 29 halved 45 times: 1e-12


@dataclass(frozen=True)
class Mess:
    """What a condition adds to ideal traffic (the module docstring says what each means)."""

    name: str
    error_cv: float = 0.0
    hosts: bool = False
    common: bool = False  # common noise and shocks, bursty load
    load: Literal["flat", "diurnal", "steep"] = "flat"
    warmup: Literal["none", "typical", "worst"] = "none"


@dataclass(frozen=True)
class Condition:
    mess: Mess
    rps: float
    percent: int  # the candidate's weight at the step

    @property
    def name(self) -> str:
        return f"{self.mess.name}, {self.rps:g} rps, {self.percent}%"


@dataclass(frozen=True)
class Change:
    """What the candidate does differently from the baseline (nothing: A/A)."""

    name: str
    error_factor: float = 1.0
    p99_factor: float = 1.0  # tail-only: p99 times this, median unchanged

    @property
    def slope(self) -> float:
        return math.log(self.p99_factor) / (Z99 - Z90)


@dataclass
class Variant:
    """One variant's per-minute data over many trials: arrays of shape (trials, MINUTES)."""

    requests: np.ndarray
    errors_5xx: np.ndarray
    errors_4xx: np.ndarray
    latency_count: np.ndarray
    log_scale: np.ndarray  # log of the minute's median latency before host factors
    log_hosts: np.ndarray  # (trials, hosts): each instance's log latency factor
    slope: float  # the tail-only regression's (0: none)
    rank50: np.ndarray
    rank99: np.ndarray
    u50: np.ndarray  # F(p50), F(p99): the uniforms of the two order statistics
    u99: np.ndarray
    p50: np.ndarray  # microseconds; NaN where the minute has no latency values
    p99: np.ndarray


@dataclass
class Batch:
    condition: Condition
    change: Change
    candidate: Variant
    baseline: Variant

    @property
    def trials(self) -> int:
        return int(self.candidate.requests.shape[0])

    def variant(self, side: Side) -> Variant:
        return self.candidate if side == "candidate" else self.baseline


# --- the latency distribution of a variant's minute -------------------------------------------------


def latency_cdf(log_x: np.ndarray, log_scale: np.ndarray, log_hosts: np.ndarray, slope: float) -> np.ndarray:
    """F(x): the share of a minute's requests at most x. ``log_hosts`` has the instances on its last
    axis, broadcast against ``log_x[..., None]``; requests are spread evenly over the instances."""
    y = np.asarray(log_x)[..., None] - np.asarray(log_scale)[..., None] - log_hosts
    body = _body_cdf(y, slope)
    outliers = _body_cdf(y - _LOG_OUTLIER_FACTOR, slope)
    return np.asarray(((1.0 - OUTLIER_SHARE) * body + OUTLIER_SHARE * outliers).mean(axis=-1))


def _body_cdf(y: np.ndarray, slope: float) -> np.ndarray:
    # log latency = SIGMA z + slope max(0, z - Z90): invert for z, piecewise linear.
    z = np.where(y <= SIGMA * Z90, y / SIGMA, (y + slope * Z90) / (SIGMA + slope))
    return np.asarray(special.ndtr(z))


def latency_quantile(u: np.ndarray, log_scale: np.ndarray, log_hosts: np.ndarray, slope: float) -> np.ndarray:
    """F^-1(u), by bisection on the log scale (F is a mixture: no closed form)."""
    low = np.asarray(log_scale) - 13.0 + np.zeros_like(u)
    high = low + 29.0
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        below = latency_cdf(middle, log_scale, log_hosts, slope) < u
        low = np.where(below, middle, low)
        high = np.where(below, high, middle)
    return np.asarray(np.exp((low + high) / 2))


@dataclass(frozen=True)
class LatencyDistribution:
    """F of one variant's minute (scalars), for the statistics drawn after the first two.

    ``cdf`` is :func:`latency_cdf` in plain Python: numpy costs some 80 µs per scalar call, and a
    step asks for some 300 trimmed counts."""

    log_scale: float
    log_hosts: np.ndarray
    slope: float

    def cdf(self, x: float) -> float:
        y = math.log(x) - self.log_scale
        shares = (
            (1.0 - OUTLIER_SHARE) * _body_cdf_scalar(y - host, self.slope)
            + OUTLIER_SHARE * _body_cdf_scalar(y - host - _LOG_OUTLIER_FACTOR, self.slope)
            for host in self.log_hosts.tolist()
        )
        return math.fsum(shares) / len(self.log_hosts)

    def quantile(self, u: float) -> float:
        return float(latency_quantile(np.asarray(u), np.asarray(self.log_scale), self.log_hosts, self.slope))


def _body_cdf_scalar(y: float, slope: float) -> float:
    z = y / SIGMA if y <= SIGMA * Z90 else (y + slope * Z90) / (SIGMA + slope)
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


# --- one minute's requests, as CloudWatch would summarise them ----------------------------------------


class Sample(Protocol):
    """One minute's values of one metric for one variant: what a CloudWatch statistic is computed on."""

    @property
    def count(self) -> int: ...

    def total(self) -> float: ...

    def value_at_rank(self, rank: int) -> float:
        """The rank-th smallest value (1-based)."""
        ...

    def count_at_most(self, value: float) -> int: ...


@dataclass(frozen=True)
class CountSample:
    """A per-request 0/1 metric (Invocation5XXErrors) or a count of 1s (Invocations): ``ones`` of ``count``."""

    count: int
    ones: int

    def total(self) -> float:
        return float(self.ones)

    def value_at_rank(self, rank: int) -> float:
        return 0.0 if rank <= self.count - self.ones else 1.0

    def count_at_most(self, value: float) -> int:
        return 0 if value < 0 else self.count - self.ones if value < 1 else self.count


class LatencySample:
    """A minute's ModelLatency values, revealed lazily but exactly (see the module docstring).

    Knots, in increasing order: values (an order statistic: ``below + 1 == at_most``) or cuts (a
    count: ``below == at_most``), each with its uniform ``F(x)``. Between two knots lie
    ``below[right] - at_most[left]`` values, independent and uniform (on F's scale) in that cell.
    """

    def __init__(
        self,
        count: int,
        distribution: LatencyDistribution,
        known: Sequence[tuple[int, float, float]],  # (rank, uniform, value) of known order statistics
        rng: np.random.Generator,
    ) -> None:
        self.count = count
        self._distribution = distribution
        self._rng = rng
        self._x, self._u, self._below, self._at_most = [-math.inf], [0.0], [0], [0]
        for rank, uniform, value in sorted(set(known)):
            self._x.append(value)
            self._u.append(uniform)
            self._below.append(rank - 1)
            self._at_most.append(rank)
        self._x.append(math.inf)
        self._u.append(1.0)
        self._below.append(count)
        self._at_most.append(count)

    def total(self) -> float:
        raise NotImplementedError("the sum of a minute's ModelLatency values is not simulated")

    def value_at_rank(self, rank: int) -> float:
        right = bisect_left(self._at_most, rank)
        if self._below[right] < rank:
            return self._x[right]  # a known order statistic
        left = right - 1
        within = rank - self._at_most[left]
        values = self._below[right] - self._at_most[left]
        u = self._u[left] + (self._u[right] - self._u[left]) * self._rng.beta(within, values - within + 1)
        value = self._distribution.quantile(u)
        self._insert(right, value, u, rank - 1, rank)
        return value

    def count_at_most(self, value: float) -> int:
        right = bisect_right(self._x, value)
        left = right - 1
        if self._x[left] == value:
            return self._at_most[left]
        values = self._below[right] - self._at_most[left]
        if values == 0:
            return self._at_most[left]
        u = self._distribution.cdf(value)
        share = min(1.0, max(0.0, (u - self._u[left]) / (self._u[right] - self._u[left])))
        counted = self._at_most[left] + int(self._rng.binomial(values, share))
        self._insert(right, value, u, counted, counted)
        return counted

    def _insert(self, at: int, value: float, u: float, below: int, at_most: int) -> None:
        self._x.insert(at, value)
        self._u.insert(at, u)
        self._below.insert(at, below)
        self._at_most.insert(at, at_most)


_STATISTIC = re.compile(
    r"(?P<name>Sum|SampleCount|Average|Minimum|Maximum)"
    r"|p(?P<percentile>\d{1,2}(?:\.\d+)?|100)"
    r"|(?P<range>TC|PR)\((?P<low>-?[\d.]*):(?P<high>-?[\d.]*)\)"
)


def statistic(sample: Sample, name: str) -> float | None:
    """CloudWatch's statistic ``name`` of one minute's values; None (no datapoint) without values.

    Sum, SampleCount, Average, Minimum, Maximum, pNN (nearest rank), and TC(a:b) / PR(a:b) with
    absolute bounds, either optional: the count / percentage of values in (a, b].
    """
    if sample.count == 0:
        return None
    kind, percentile, low_bound, high_bound = _parsed(name)
    if kind == "p":
        return sample.value_at_rank(max(1, math.ceil(percentile * sample.count / 100)))
    if kind in ("TC", "PR"):
        high = sample.count if high_bound is None else sample.count_at_most(high_bound)
        low = 0 if low_bound is None else sample.count_at_most(low_bound)
        return float(high - low) if kind == "TC" else 100.0 * (high - low) / sample.count
    return _named(sample, kind)


@cache
def _parsed(name: str) -> tuple[str, Decimal, float | None, float | None]:
    """(Sum, SampleCount, ..., "p" or "TC" / "PR"; the percentile; the bounds), parsed once per name."""
    found = _STATISTIC.fullmatch(name)
    if found is None:
        raise ValueError(f"the bench does not simulate the statistic {name!r}")
    if found["percentile"]:
        return "p", Decimal(found["percentile"]), None, None
    if found["range"]:
        low, high = (float(found[bound]) if found[bound] else None for bound in ("low", "high"))
        return found["range"], Decimal(0), low, high
    return found["name"], Decimal(0), None, None


def _named(sample: Sample, name: str) -> float:
    if name == "SampleCount":
        return float(sample.count)
    if name == "Minimum":
        return sample.value_at_rank(1)
    if name == "Maximum":
        return sample.value_at_rank(sample.count)
    return sample.total() / (sample.count if name == "Average" else 1)


class SimulatedCloudWatch:
    """GetMetricData's per-minute answers for one trial: any statistic of its built-in metrics.

    Minute 0 is the first of the LOOKBACK minutes before the step. ``rng`` draws the statistics that
    were not drawn with the batch (trimmed counts, other percentiles), conditionally on those that were.
    """

    _ROWS = ("requests", "errors_5xx", "errors_4xx", "latency_count", "rank50", "u50", "p50", "rank99", "u99", "p99")

    def __init__(self, batch: Batch, trial: int, rng: np.random.Generator) -> None:
        self._rng = rng
        # The trial's minutes as Python lists: indexing numpy arrays one scalar at a time is slow.
        self._rows = {
            side: {row: getattr(batch.variant(side), row)[trial].tolist() for row in (*self._ROWS, "log_scale")}
            for side in ("candidate", "baseline")
        }
        self._hosts = {side: batch.variant(side).log_hosts[trial] for side in ("candidate", "baseline")}
        self._slope = {side: batch.variant(side).slope for side in ("candidate", "baseline")}
        self._latency: dict[tuple[Side, int], LatencySample] = {}

    def datapoint(self, metric_name: str, statistic_name: str, side: Side, minute: int) -> float | None:
        return statistic(self._sample(metric_name, side, minute), statistic_name)

    def _sample(self, metric_name: str, side: Side, minute: int) -> Sample:
        rows = self._rows[side]
        requests = rows["requests"][minute]
        if metric_name == "Invocations":
            return CountSample(requests, requests)
        if metric_name == "Invocation5XXErrors":
            return CountSample(requests, rows["errors_5xx"][minute])
        if metric_name == "Invocation4XXErrors":
            return CountSample(requests, rows["errors_4xx"][minute])
        if metric_name == "ModelLatency":
            return self._latency_sample(side, minute)
        raise ValueError(f"the bench does not simulate the metric {metric_name!r}")

    def _latency_sample(self, side: Side, minute: int) -> LatencySample:
        found = self._latency.get((side, minute))
        if found is None:
            rows = self._rows[side]
            count = rows["latency_count"][minute]
            known = [(rows[f"rank{q}"][minute], rows[f"u{q}"][minute], rows[f"p{q}"][minute]) for q in (50, 99)]
            distribution = LatencyDistribution(rows["log_scale"][minute], self._hosts[side], self._slope[side])
            found = LatencySample(count, distribution, known if count else [], self._rng)
            self._latency[side, minute] = found
        return found


# --- many trials at once ---------------------------------------------------------------------------


def simulate(condition: Condition, change: Change, trials: int, rng: np.random.Generator) -> Batch:
    """Many trials of one condition and one change, every minute of both variants."""
    mess, shape = condition.mess, (trials, MINUTES)
    step_minute = np.arange(MINUTES) - LOOKBACK_MINUTES  # < 0 before the step
    load = _load(mess, rng, trials)
    total = rng.poisson(condition.rps * 60 * load)
    candidate_requests = np.where(step_minute >= 0, rng.binomial(total, condition.percent / 100), 0)
    requests = {"candidate": candidate_requests, "baseline": total - candidate_requests}
    common = _Common.draw(mess, rng, shape)
    hosts = _Hosts.draw(mess, rng, trials)
    warmup = _Warmup.draw(mess, rng, trials, step_minute)
    variants = {}
    for side in ("candidate", "baseline"):
        is_candidate = side == "candidate"
        p5xx = BASE_5XX * hosts.errors[side] * common.errors_5xx * _gamma(rng, mess.error_cv, shape)
        if is_candidate:
            p5xx = p5xx * change.error_factor + warmup.extra_5xx
        n = requests[side]
        errors_5xx = rng.binomial(n, np.minimum(p5xx, 1.0))
        p4xx = BASE_4XX * common.errors_4xx * _gamma(rng, mess.error_cv, shape)
        errors_4xx = rng.binomial(n - errors_5xx, np.minimum(p4xx, 1.0))
        log_scale = (
            math.log(MEDIAN_US)
            + LOAD_LATENCY_EXPONENT * np.log(load)
            + common.log_latency
            + rng.normal(0.0, 0.1 * mess.error_cv, shape)
            + (np.log(warmup.latency) if is_candidate else 0.0)
        )
        slope = change.slope if is_candidate else 0.0
        variants[side] = _variant(n, errors_5xx, errors_4xx, log_scale, hosts.log_latency[side], slope, rng)
    return Batch(condition, change, variants["candidate"], variants["baseline"])


def _load(mess: Mess, rng: np.random.Generator, trials: int) -> np.ndarray:
    minute = np.arange(MINUTES)
    if mess.load == "diurnal":
        phase = rng.uniform(0, 1440, (trials, 1))
        level = 1.0 + 0.4 * np.sin(2 * math.pi * (minute + phase) / 1440)
    elif mess.load == "steep":
        level = np.broadcast_to(0.7 * 2.0 ** (minute / MINUTES), (trials, MINUTES))
    else:
        level = np.ones((trials, MINUTES))
    if not mess.common:
        return np.asarray(level)
    bursts = np.empty((trials, MINUTES))
    bursts[:, 0] = rng.normal(0, 0.15, trials)
    innovations = rng.normal(0, 0.15 * math.sqrt(1 - 0.8**2), (trials, MINUTES))
    for t in range(1, MINUTES):
        bursts[:, t] = 0.8 * bursts[:, t - 1] + innovations[:, t]
    return np.asarray(level * np.exp(bursts))


def _gamma(rng: np.random.Generator, cv: float, shape: tuple[int, int]) -> np.ndarray | float:
    """Mean 1, coefficient of variation cv: a Poisson count times it is negative binomial."""
    return rng.gamma(1 / cv**2, cv**2, shape) if cv > 0 else 1.0


def _lognormal_mean_one(rng: np.random.Generator, sd: float, shape: tuple[int, int]) -> np.ndarray:
    return np.asarray(np.exp(rng.normal(-(sd**2) / 2, sd, shape)))


@dataclass(frozen=True)
class _Common:
    """What hits both variants in the same minute."""

    errors_5xx: np.ndarray | float
    errors_4xx: np.ndarray | float
    log_latency: np.ndarray | float

    @classmethod
    def draw(cls, mess: Mess, rng: np.random.Generator, shape: tuple[int, int]) -> _Common:
        if not mess.common:
            return cls(1.0, 1.0, 0.0)
        shock = rng.random(shape) < SHOCK_SHARE
        errors = _lognormal_mean_one(rng, 0.3, shape) * np.where(shock, rng.uniform(2, 10, shape), 1.0)
        latency = rng.normal(0, 0.05, shape) + np.where(shock, np.log(rng.uniform(1.2, 2, shape)), 0.0)
        return cls(errors, _lognormal_mean_one(rng, 0.3, shape), latency)


@dataclass(frozen=True)
class _Hosts:
    """Each variant's fixed instance factors: latency per instance, 5xx averaged over its instances."""

    errors: dict[str, np.ndarray]  # (trials, 1)
    log_latency: dict[str, np.ndarray]  # (trials, instances)

    @classmethod
    def draw(cls, mess: Mess, rng: np.random.Generator, trials: int) -> _Hosts:
        count = {"candidate": 1, "baseline": BASELINE_HOSTS}
        if not mess.hosts:
            return cls({s: np.ones((trials, 1)) for s in count}, {s: np.zeros((trials, n)) for s, n in count.items()})
        errors = {
            s: rng.uniform(1 - HOST_ERROR_SPREAD, 1 + HOST_ERROR_SPREAD, (trials, n)).mean(axis=1, keepdims=True)
            for s, n in count.items()
        }
        latency = {
            s: np.log(rng.uniform(1 - HOST_LATENCY_SPREAD, 1 + HOST_LATENCY_SPREAD, (trials, n)))
            for s, n in count.items()
        }
        return cls(errors, latency)


@dataclass(frozen=True)
class _Warmup:
    """The candidate's first minutes: a latency factor per minute, and extra 5xx in minute one."""

    latency: np.ndarray | float
    extra_5xx: np.ndarray | float

    @classmethod
    def draw(cls, mess: Mess, rng: np.random.Generator, trials: int, step_minute: np.ndarray) -> _Warmup:
        if mess.warmup == "none":
            return cls(1.0, 0.0)
        if mess.warmup == "worst":
            minutes, peak, extra = np.full((trials, 1), 5.0), np.full((trials, 1), 3.0), np.full((trials, 1), 0.02)
        else:
            minutes = rng.integers(2, 6, (trials, 1)).astype(float)
            peak, extra = rng.uniform(1.5, 3.0, (trials, 1)), rng.uniform(0.0, 0.02, (trials, 1))
        warming = (step_minute >= 0) & (step_minute < minutes)
        latency = np.where(warming, 1 + (peak - 1) * (1 - step_minute / minutes), 1.0)
        return cls(latency, np.where(step_minute == 0, extra, 0.0))


def _variant(
    requests: np.ndarray,
    errors_5xx: np.ndarray,
    errors_4xx: np.ndarray,
    log_scale: np.ndarray,
    log_hosts: np.ndarray,
    slope: float,
    rng: np.random.Generator,
) -> Variant:
    """The variant's minutes, with the nearest-rank p50 and p99 of its latency values drawn exactly."""
    n = requests - errors_5xx
    rank50, rank99 = (n + 1) // 2, (99 * n + 99) // 100  # ceil(0.5 n), ceil(0.99 n)
    has = n > 0
    u99 = rng.beta(np.maximum(rank99, 1), np.maximum(n - rank99 + 1, 1))
    u50 = np.where(rank50 < rank99, u99 * rng.beta(np.maximum(rank50, 1), np.maximum(rank99 - rank50, 1)), u99)
    u50, u99 = np.where(has, u50, np.nan), np.where(has, u99, np.nan)
    hosts = log_hosts[:, None, :]
    p50 = np.where(has, latency_quantile(np.nan_to_num(u50, nan=0.5), log_scale, hosts, slope), np.nan)
    p99 = np.where(has, latency_quantile(np.nan_to_num(u99, nan=0.5), log_scale, hosts, slope), np.nan)
    return Variant(requests, errors_5xx, errors_4xx, n, log_scale, log_hosts, slope, rank50, rank99, u50, u99, p50, p99)


def true_ratios(change: Change) -> tuple[float, float]:
    """The candidate's true p50 and p99 over the baseline's, one instance each (a check of the model)."""
    hosts = np.zeros(1)
    quantile = {
        slope: latency_quantile(np.array([0.5, 0.99]), np.zeros(2), hosts, slope) for slope in (0.0, change.slope)
    }
    ratio = quantile[change.slope] / quantile[0.0]
    return float(ratio[0]), float(ratio[1])
