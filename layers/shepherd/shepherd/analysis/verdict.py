"""The judge's verdict and its evidence: serialisable, stored on the rollout and announced.

Intervals are always valid at the stated ``confidence``: they may be read at every look. A bound
that the data cannot limit yet is ``None`` (JSON has no infinity).
"""

from typing import Literal

from shepherd.analysis.metrics import Direction, MetricKind
from shepherd.kernel.frozen import Frozen

Outcome = Literal["PASS", "FAIL", "INCONCLUSIVE"]


class MetricEvidence(Frozen):
    """One metric's outcome and why."""

    metric: str
    kind: MetricKind
    outcome: Outcome
    critical: bool
    direction: Direction
    tolerance: float
    samples: int  # rate, tail: requests to the candidate; paired: minutes with data from both variants
    min_samples: int
    confidence: float
    rule: str
    # Defaults, because announcements are published without null fields: "no data yet" is absent.
    candidate: float | None = None  # rate, tail: share of requests; paired: geometric mean per minute
    baseline: float | None = None
    relative_effect: float | None = None  # candidate / baseline - 1
    interval: tuple[float | None, float | None] = (None, None)  # of relative_effect; None = unbounded
    # rate, tail: how much bursts widen the evidence (1: errors as independent draws).
    dispersion: float | None = None
    # tail: the baseline's latency threshold (the metric's unit, microseconds for ModelLatency); the
    # candidate's share is counted above threshold x (1 + tolerance).
    threshold: float | None = None
    # INCONCLUSIVE: about how many more minutes of data, at the current traffic, the judge expects to
    # need to decide a reference regression (errors x2, slow requests x2, a paired metric +50%).
    decision_minutes: float | None = None
    # The step's warm-up is judged by the gross-failure guard alone: set when it failed the step.
    gross_failure: bool = False


class Verdict(Frozen):
    """The overall outcome: FAIL if any metric fails, else INCONCLUSIVE if any is, else PASS."""

    outcome: Outcome
    critical_failure: bool  # a critical metric failed: roll back now rather than at the end of the bake
    minutes: int  # distinct minutes of data judged (after the warm-up, complete ones only)
    metrics: tuple[MetricEvidence, ...]
    # INCONCLUSIVE: how long a decision would take at the current traffic, in words for operators
    # ("at 3 req/s to the candidate, a doubling of errors_5xx would be decided in about 40 more minutes").
    waiting: str | None = None

    def failing(self, *, critical_only: bool = False) -> tuple[str, ...]:
        """Names of the failing metrics (for a rollback's reason and incident)."""
        return tuple(
            evidence.metric
            for evidence in self.metrics
            if evidence.outcome == "FAIL" and (evidence.critical or not critical_only)
        )
