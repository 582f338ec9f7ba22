"""The demo's steps and what each expects to see: a `Step` acts, then its `Expectation` is checked
against what Shepherd recorded and announced until it holds or its simulated time runs out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shepherd.registry.model import VersionStatus
from shepherd.rollouts.record import Phase
from shepherd_cli.local.demo_world import (
    ENDPOINT,
    ROLLBACK_FUNCTION,
    Demo,
    variant,
)

Expectation = Callable[[Demo], str | None]  # None: as expected; else what is not (yet) so


@dataclass(frozen=True)
class Step:
    name: str
    act: Callable[[Demo], None] | None
    expect: Expectation
    within_seconds: int = 0  # simulated time the expectation may take to hold, a controller tick at a time


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    started_at: datetime
    finished_at: datetime
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "problem": self.problem,
        }


def all_of(*expectations: Expectation) -> Expectation:
    """Checked in order, the first problem wins: cheap record reads before DescribeEndpoint."""

    def check(demo: Demo) -> str | None:
        return next((problem for expect in expectations if (problem := expect(demo)) is not None), None)

    return check


def version_is(version: int, status: VersionStatus) -> Expectation:
    def check(demo: Demo) -> str | None:
        current = demo.status_of(version)
        return None if current == status.value else f"v{version} is {current or 'not registered'}, not {status.value}"

    return check


def announced(detail_type: str, **detail: Any) -> Expectation:
    def check(demo: Demo) -> str | None:
        if demo.announced(detail_type, **detail) is not None:
            return None
        return f"no {detail_type!r} announced with {json.dumps(detail, sort_keys=True)}"

    return check


def weights_are(expected: dict[int, float]) -> Expectation:
    """The endpoint is InService with exactly these variants at these weights."""

    def check(demo: Demo) -> str | None:
        observed = demo.endpoint()
        want = {variant(version): weight for version, weight in expected.items()}
        if observed is None:
            return f"no endpoint {ENDPOINT}"
        status, weights = observed
        matches = weights.keys() == want.keys() and all(abs(weights[n] - w) < 1e-6 for n, w in want.items())
        if status == "InService" and matches:
            return None
        return f"{ENDPOINT} is {status} with weights {weights}, expected {want}"

    return check


def canary_baked(version: int, bake_seconds: int) -> Expectation:
    """The candidate reached 100% no sooner than `bake_seconds` after it reached its canary step."""

    def check(demo: Demo) -> str | None:
        canary = demo.announced("Rollout Traffic Shifted", version=version, from_percent=0)
        full = demo.announced("Rollout Traffic Shifted", version=version, to_percent=100)
        if canary is None or full is None:
            return f"v{version}: no canary shift followed by a shift to 100%"
        baked = (full[0] - canary[0]).total_seconds()
        return None if baked >= bake_seconds else f"v{version} went to 100% after {baked:g}s, before its bake"

    return check


def metric_recorded(version: int) -> Expectation:
    def check(demo: Demo) -> str | None:
        statistics = demo.local.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[
                {"Name": "EndpointName", "Value": ENDPOINT},
                {"Name": "VariantName", "Value": variant(version)},
            ],
            StartTime=demo.now - timedelta(minutes=5),
            EndTime=demo.now + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )
        total = sum(point["Sum"] for point in statistics["Datapoints"])
        return None if total > 0 else f"no Invocation5XXErrors recorded for {variant(version)}"

    return check


def rollout_ended(version: int, phase: Phase) -> Expectation:
    def check(demo: Demo) -> str | None:
        stored = demo.target.rollouts().latest_rollout(ENDPOINT)
        if stored is None or stored.rollout.version != version:
            return f"no rollout of v{version} on {ENDPOINT}"
        current = stored.rollout.phase
        return None if current is phase else f"the rollout of v{version} is {current.value}, not {phase.value}"

    return check


def rolled_back(version: int, restored: int) -> Expectation:
    check_all = all_of(
        announced("Rollout Rolled Back", version=version, restored_version=restored),
        version_is(version, VersionStatus.ROLLED_BACK),
        version_is(restored, VersionStatus.LIVE),
        weights_are({restored: 1.0}),
        rollout_ended(version, Phase.ROLLED_BACK),
    )

    def check(demo: Demo) -> str | None:
        problem = check_all(demo)
        if problem is not None and not demo.has_function(ROLLBACK_FUNCTION):
            return (
                f"{problem}. template.yaml has no {ROLLBACK_FUNCTION} yet, so nothing acts on the alarm: "
                f"the controller only holds the canary at 10%"
            )
        return problem

    return check


def no_alarm_fired() -> Expectation:
    """No alarm is in ALARM (the per-rollout ones and any other): the judge acted alone."""

    def check(demo: Demo) -> str | None:
        firing = demo.local.client("cloudwatch").describe_alarms(StateValue="ALARM")["MetricAlarms"]
        return None if not firing else f"alarms in ALARM: {', '.join(a['AlarmName'] for a in firing)}"

    return check
