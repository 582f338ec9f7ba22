"""How each model version behaves under local mode's simulated traffic, and where that is kept.

`shepherd local traffic MODEL VERSION --latency-ms 120 --p99-ms 400 --error-percent 2` (and the bursts and
warm-up of `Behaviour`: ``--error-bursts``, ``--common-shocks``, ``--warmup-minutes``...) runs in another
process than `shepherd local up`, which holds the emulator. The channel between them is the emulator
itself: one SSM parameter per version, ``/shepherd/local/traffic/<model>/v<version>``, holding the
behaviour as JSON. The traffic simulator reads every parameter under the prefix each time it closes
a simulated minute, so a change applies to the whole minute in progress and the ones after it. A
version without a parameter is healthy (`HEALTHY`).

Variants are matched to versions by name: Shepherd names the variant serving a version with
``naming.variant_name(model, version)``, so a behaviour applies to that version on every endpoint.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from shepherd.rollouts import naming

logger = logging.getLogger(__name__)

PARAMETER_PREFIX = "/shepherd/local/traffic/"
MAX_LATENCY_MS = 60_000.0  # SageMaker's invocation timeout
DEFAULT_P99_TO_MEDIAN = 2.0  # a right-skewed latency, when only the median is given
MAX_CV = 10.0  # error bursts and common shocks: a rate's coefficient of variation from minute to minute
MAX_WARMUP_MINUTES = 60
MAX_WARMUP_LATENCY_X = 100.0
_RANGES: dict[str, tuple[float, float, str]] = {
    "error_percent": (0, 100, "a percentage"),
    "warmup_5xx_percent": (0, 100, "a percentage"),
    "error_bursts": (0, MAX_CV, "a coefficient of variation"),
    "common_shocks": (0, MAX_CV, "a coefficient of variation"),
    "warmup_minutes": (0, MAX_WARMUP_MINUTES, "a number of minutes"),
    "warmup_latency_x": (1, MAX_WARMUP_LATENCY_X, "a factor"),
}
_NUMBERS = (
    "latency_ms",
    "p99_ms",
    "error_percent",
    "error_bursts",
    "common_shocks",
    "warmup_minutes",
    "warmup_latency_x",
    "warmup_5xx_percent",
)


@dataclass(frozen=True)
class Behaviour:
    """A version's simulated responses: log-normal latency (median and p99) and a share of 5xx errors.

    Real errors come in bursts, which the judge must not mistake for a worse version:

    * ``error_bursts``: each minute the variant's error rate is multiplied by a gamma factor of mean
      1 and this coefficient of variation, drawn for this variant alone (binomial errors on a
      gamma-distributed rate: a negative-binomial-like count, overdispersed as real errors are);
    * ``common_shocks``: each minute the error rate is multiplied by a log-normal factor of mean 1 and
      this coefficient of variation, drawn once per endpoint for all its variants (a dependency's bad
      minute hits every variant). Variants with the same value get the same factor that minute; set it
      on every version that shares the cause.

    A new variant warms up: in its first ``warmup_minutes`` after it starts taking traffic, its
    latency is ``warmup_latency_x`` times slower in the first minute, easing linearly back to normal;
    and its first minute fails another ``warmup_5xx_percent`` of its requests.
    """

    latency_ms: float = 40.0
    p99_ms: float = 80.0
    error_percent: float = 0.0
    error_bursts: float = 0.0
    common_shocks: float = 0.0
    warmup_minutes: int = 0
    warmup_latency_x: float = 1.0
    warmup_5xx_percent: float = 0.0

    def __post_init__(self) -> None:
        for name in _NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name}: must be a number, got {value!r}")
        if not 0 < self.latency_ms <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms: must be above 0 and at most {MAX_LATENCY_MS:g}, got {self.latency_ms:g}")
        if not self.latency_ms <= self.p99_ms <= MAX_LATENCY_MS:
            raise ValueError(
                f"p99_ms: must be at least the median ({self.latency_ms:g}) and at most {MAX_LATENCY_MS:g}, "
                f"got {self.p99_ms:g}"
            )
        if not isinstance(self.warmup_minutes, int):
            raise ValueError(f"warmup_minutes: must be a whole number, got {self.warmup_minutes!r}")
        for name, (low, high, what) in _RANGES.items():
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name}: must be between {low:g} and {high:g} ({what}), got {getattr(self, name):g}")
        if self.warmup_minutes == 0 and (self.warmup_latency_x > 1 or self.warmup_5xx_percent > 0):
            raise ValueError("warmup_minutes: a warm-up's latency or errors need a warm-up of 1 minute or more")

    @classmethod
    def of(cls, latency_ms: float, p99_ms: float | None = None, error_percent: float = 0.0, **more: Any) -> Behaviour:
        """A behaviour from the CLI's options: without a p99, twice the median."""
        p99 = p99_ms if p99_ms is not None else min(latency_ms * DEFAULT_P99_TO_MEDIAN, MAX_LATENCY_MS)
        return cls(latency_ms=latency_ms, p99_ms=p99, error_percent=error_percent, **more)

    def latency_factor(self, age_minutes: int | None) -> float:
        """How much slower than usual the variant answers in this minute of its life (0: its first)."""
        if age_minutes is None or age_minutes >= self.warmup_minutes:
            return 1.0
        return 1.0 + (self.warmup_latency_x - 1.0) * (1.0 - age_minutes / self.warmup_minutes)

    def extra_5xx_percent(self, age_minutes: int | None) -> float:
        """The warm-up's extra 5xx in this minute of the variant's life (its first minute only)."""
        return self.warmup_5xx_percent if age_minutes == 0 and self.warmup_minutes > 0 else 0.0

    def describe(self) -> str:
        """In words, for the CLI and the demo's timeline."""
        parts = [f"median {self.latency_ms:g} ms, p99 {self.p99_ms:g} ms, {self.error_percent:g}% of requests fail 5xx"]
        if self.error_bursts:
            parts.append(f"errors in bursts (CV {self.error_bursts:g} per minute)")
        if self.common_shocks:
            parts.append(f"shared bad minutes (CV {self.common_shocks:g})")
        if self.warmup_latency_x > 1 or self.warmup_5xx_percent:
            first = [f"{self.warmup_latency_x:g}x slower"] if self.warmup_latency_x > 1 else []
            first += [f"{self.warmup_5xx_percent:g}% more 5xx"] if self.warmup_5xx_percent else []
            parts.append(f"a {self.warmup_minutes}-minute warm-up (first minute {' and '.join(first)})")
        return ", ".join(parts)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Behaviour:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


HEALTHY = Behaviour()


def parameter_name(model_name: str, version: int) -> str:
    naming.variant_name(model_name, version)  # the same validation as the variant's name
    return f"{PARAMETER_PREFIX}{model_name}/v{version}"


def set_behaviour(ssm: Any, model_name: str, version: int, behaviour: Behaviour) -> None:
    """Store ``behaviour`` for ``version`` of ``model_name`` (read by the simulator within a minute)."""
    ssm.put_parameter(
        Name=parameter_name(model_name, version), Value=behaviour.to_json(), Type="String", Overwrite=True
    )


def behaviours_by_variant(ssm: Any) -> dict[str, Behaviour]:
    """Every stored behaviour, keyed by the variant name of its version. A parameter that is not a
    behaviour (written by hand, say) is logged and skipped: that version stays healthy."""
    found: dict[str, Behaviour] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=PARAMETER_PREFIX, Recursive=True):
        for parameter in page["Parameters"]:
            model_name, _, version_part = parameter["Name"].removeprefix(PARAMETER_PREFIX).rpartition("/v")
            try:
                variant = naming.variant_name(model_name, int(version_part))
                found[variant] = Behaviour.from_json(parameter["Value"])
            except (ValueError, TypeError) as error:
                logger.warning("local traffic: ignoring %s: %s", parameter["Name"], error)
    return found
