"""How each model version behaves under local mode's simulated traffic, and where that is kept.

`shepherd local traffic MODEL VERSION --latency-ms 120 --p99-ms 400 --error-percent 2` runs in another
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


@dataclass(frozen=True)
class Behaviour:
    """A version's simulated responses: log-normal latency (median and p99) and a share of 5xx errors."""

    latency_ms: float = 40.0
    p99_ms: float = 80.0
    error_percent: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency_ms", "p99_ms", "error_percent"):
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
        if not 0 <= self.error_percent <= 100:
            raise ValueError(f"error_percent: must be between 0 and 100, got {self.error_percent:g}")

    @classmethod
    def of(cls, latency_ms: float, p99_ms: float | None = None, error_percent: float = 0.0) -> Behaviour:
        """A behaviour from the CLI's options: without a p99, twice the median."""
        p99 = p99_ms if p99_ms is not None else min(latency_ms * DEFAULT_P99_TO_MEDIAN, MAX_LATENCY_MS)
        return cls(latency_ms=latency_ms, p99_ms=p99, error_percent=error_percent)

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
