"""The judge's verdict and its evidence: serialisable, stored on the rollout and announced.

Intervals are always valid at the stated ``confidence``: they may be read at every look. A bound
that the data cannot limit yet is ``None`` (JSON has no infinity).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict

from shepherd.analysis.metrics import Direction, MetricKind

Outcome = Literal["PASS", "FAIL", "INCONCLUSIVE"]


class MetricEvidence(BaseModel):
    """One metric's outcome and why."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built on first use

    metric: str
    kind: MetricKind
    outcome: Outcome
    critical: bool
    direction: Direction
    tolerance: float
    samples: int  # rate: requests to the candidate; paired: minutes with data from both variants
    min_samples: int
    confidence: float
    rule: str
    # Defaults, because announcements are published without null fields: "no data yet" is absent.
    candidate: float | None = None  # rate: error rate; paired: geometric mean of the per-minute values
    baseline: float | None = None
    relative_effect: float | None = None  # candidate / baseline - 1
    interval: tuple[float | None, float | None] = (None, None)  # of relative_effect; None = unbounded


class Verdict(BaseModel):
    """The overall outcome: FAIL if any metric fails, else INCONCLUSIVE if any is, else PASS."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built on first use

    outcome: Outcome
    critical_failure: bool  # a critical metric failed: roll back now rather than at the end of the bake
    minutes: int  # distinct minutes of data seen
    metrics: tuple[MetricEvidence, ...]

    def failing(self, *, critical_only: bool = False) -> tuple[str, ...]:
        """Names of the failing metrics (for a rollback's reason and incident)."""
        return tuple(
            evidence.metric
            for evidence in self.metrics
            if evidence.outcome == "FAIL" and (evidence.critical or not critical_only)
        )
