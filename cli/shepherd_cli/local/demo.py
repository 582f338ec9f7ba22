"""`shepherd local demo`: the whole lifecycle on the simulated clock, through the event pump.

template.yaml is deployed into the embedded emulator (`LocalShepherd`), and everything happens the
way a user would make it happen: artifacts are uploaded to the bucket, commands are sent to the
Shepherd bus with the CLI's own code (`shepherd_cli.operations`), and every endpoint gets simulated
traffic (`simulation`, 300 requests a second): SageMaker's metrics are published each simulated
minute and the alarms are evaluated on them. v2 starts cold (two slow minutes, which the canary
judge's warm-up leaves out) and passes the judge. The candidate v3 is made to fail 30% of its
requests the way `shepherd local traffic` does it, and its per-rollout error-rate alarm fires by
itself (its canary judge is off, to show the alarms); then v4, 40% slower but far under the latency
alarm, is rolled back by the canary judge with no alarm firing. The functions run only
because the pump hands them their events; no handler is called directly. Time moves with
`pump.advance`, a controller minute at a time, until each step's expectation holds or its budget
of simulated time runs out.

The scenario is `SCENARIO`, a list of named steps with expectations: run it with `run_demo()`, which
returns a `DemoResult` (every step's outcome, the timeline, the final status).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from shepherd.registry.model import VersionStatus
from shepherd.rollouts import naming
from shepherd.rollouts.record import Phase
from shepherd_cli import operations
from shepherd_cli.announcements import describe_announcement
from shepherd_cli.errors import CliError
from shepherd_cli.local import persistence, simulation
from shepherd_cli.local.monitor import BusMonitor, Line, invocation_summary
from shepherd_cli.local.pump import Outcome, SimulatedClock
from shepherd_cli.local.stack import DUMMY_CREDENTIALS, LocalShepherd
from shepherd_cli.local.traffic_behaviour import Behaviour, set_behaviour
from shepherd_cli.target import Target

MODEL = "churn-predictor"
ENDPOINT = "churn-prod"
REQUESTER = "demo@shepherd.local"
TICK_SECONDS = 60  # the controller's schedule: one pass per simulated minute
CANARY_BAKE_SECONDS = 900  # 15 minutes: the judge leaves out about 6 (warm-up, the partial minute, CloudWatch's delay)
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": CANARY_BAKE_SECONDS, "post_deploy_watch_seconds": 120}
ROLLBACK_FUNCTION = "RollbackFunction"  # the template's logical id of the rollback function
# Handlers log JSON to stdout: only errors, and no metrics, while the demo prints its timeline.
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
ENDPOINT_ACTIONS = ("CreateEndpoint", "UpdateEndpoint", "DeleteEndpoint")
TRAFFIC_SEED = 12  # the simulated traffic's random draws: the same demo every run
# v2 starts cold: its first minute is twice as slow, its second 1.5 times; the judge's 3-minute
# warm-up leaves both out. (Healthy: median 40 ms, p99 80 ms.)
COLD_START = Behaviour.of(latency_ms=40, warmup_minutes=2, warmup_latency_x=2.0)
# v3's serving code breaks: 30% of requests fail, more in some minutes than others.
FAILING = Behaviour.of(latency_ms=40, error_percent=30, error_bursts=0.3)
# 40% slower than a healthy version, and still far under the 300 ms alarm.
SLOWER = Behaviour.of(latency_ms=56, p99_ms=112)
# v3's canary shows the alarms at work: its judge is off (on, it would see the errors first).
ALARMS_ONLY = {**CANARY, "analysis": {"judge": {"enabled": False}}}

MANIFESTS: dict[int, dict[str, Any]] = {
    1: {
        "description": "Gradient-boosted churn model, October retrain",
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "metrics": {"auc": 0.871, "logloss": 0.262},
        "training_data": {"uri": "s3://acme-datasets/churn/2026-10-01/", "version": "2026-10-01"},
        "source": {"repository": "https://git.example.com/ml/churn", "commit": "4b1d9e0"},
        "tags": {"team": "growth"},
    },
    2: {
        "description": "November retrain, two more features",
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "metrics": {"auc": 0.902, "logloss": 0.238},
        "training_data": {"uri": "s3://acme-datasets/churn/2026-11-01/", "version": "2026-11-01"},
        "source": {"repository": "https://git.example.com/ml/churn", "commit": "9f2c1e4"},
        "tags": {"team": "growth"},
        "parent_version": 1,
    },
    3: {
        "description": "December retrain: better offline, but its serving code breaks on new inputs",
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "metrics": {"auc": 0.915, "logloss": 0.229},
        "training_data": {"uri": "s3://acme-datasets/churn/2026-12-01/", "version": "2026-12-01"},
        "source": {"repository": "https://git.example.com/ml/churn", "commit": "c07a5b2"},
        "parent_version": 2,
        "tags": {"team": "growth"},
    },
    4: {
        "description": "January retrain: a deeper ensemble, as accurate and 40% slower to answer",
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "metrics": {"auc": 0.904, "logloss": 0.236},
        "training_data": {"uri": "s3://acme-datasets/churn/2027-01-01/", "version": "2027-01-01"},
        "source": {"repository": "https://git.example.com/ml/churn", "commit": "e5d81a3"},
        "parent_version": 2,
        "tags": {"team": "growth"},
    },
}


def artifact_folder(version: int) -> str:
    return f"models/{MODEL}/2026-{9 + version:02d}-01"


def variant(version: int) -> str:
    return naming.variant_name(MODEL, version)


def dimensions(version: int) -> list[dict[str, str]]:
    """The CloudWatch dimensions of a version's variant on the demo's endpoint."""
    return [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant(version)}]


# --- the scenario's world ------------------------------------------------------------------------


class Observer(Protocol):
    """Who watches the demo as it runs (the CLI prints; tests need nothing)."""

    def line(self, line: Line, demo: Demo) -> None: ...

    def step_started(self, number: int, step: Step, demo: Demo) -> None: ...

    def step_finished(self, number: int, result: StepResult, demo: Demo) -> None: ...


class Demo:
    """A running local Shepherd, what the scenario did, and what it saw."""

    def __init__(self, local: LocalShepherd, observer: Observer | None = None) -> None:
        self.local = local
        self.pump = local.pump
        self.started_at = self.pump.clock.now
        self.observer = observer
        self.timeline: list[Line] = []
        self.announcements: list[tuple[datetime, dict[str, Any]]] = []
        self.monitor = BusMonitor(local)
        session = boto3.session.Session(region_name=local.region, **DUMMY_CREDENTIALS)
        self.target = Target(
            "local",
            local.stack.name,
            local.region,
            dict(local.outputs),
            session,
            endpoint_url=local.endpoint_url,
            clock=lambda: self.pump.clock.now,
        )
        self._prefix = f"{local.stack.name}-"
        self._logical_ids = {function.name: logical_id for logical_id, function in local.stack.functions.items()}
        self.pump.on_event = self._on_event

    @property
    def now(self) -> datetime:
        return self.pump.clock.now

    def elapsed(self, moment: datetime | None = None) -> int:
        return int(((moment or self.now) - self.started_at).total_seconds())

    def record(self, kind: str, title: str, details: str, data: dict[str, Any] | None = None) -> None:
        line = Line(self.now, kind, title, details, data or {})
        self.timeline.append(line)
        if self.observer is not None:
            self.observer.line(line, self)

    def _on_event(self, function_name: str, event: dict[str, Any], outcome: Outcome) -> None:
        """The pump's hook, after every invocation attempt: failures, endpoint changes, announcements."""
        name = function_name.removeprefix(self._prefix)
        if outcome.status != "ok":
            self.record("failure", f"{name} failed", invocation_summary(event, outcome))
        elif self._logical_ids.get(function_name) == ROLLBACK_FUNCTION:
            self.record("invocation", f"{name} function", invocation_summary(event, outcome))
        elif isinstance(outcome.result, dict) and isinstance(outcome.result.get("results"), dict):
            for action in outcome.result["results"].values():
                if action in ENDPOINT_ACTIONS:
                    self.record("controller", f"SageMaker {action}", f"{ENDPOINT} (rollout controller)")
        self.drain()

    def drain(self) -> None:
        for event in self.monitor.drain():
            self.announcements.append((self.now, event))
            detail_type, detail = event["detail-type"], event["detail"]
            self.record("announcement", detail_type, describe_announcement(detail_type, detail), detail)

    def settle(self) -> None:
        self.pump.run_until_idle()
        self.drain()

    # --- what the steps do ---

    def upload(self, version: int) -> None:
        folder, s3 = artifact_folder(version), self.local.client("s3")
        bucket = self.target.bucket
        manifest = MANIFESTS[version]
        s3.put_object(Bucket=bucket, Key=f"{folder}/manifest.json", Body=json.dumps(manifest).encode())
        s3.put_object(
            Bucket=bucket,
            Key=f"{folder}/model.tar.gz",
            Body=gzip.compress(f"churn-predictor weights {version}\n".encode() * 4096, mtime=0),
            ChecksumAlgorithm="SHA256",
            Metadata={"trained-by": "demo-pipeline"},
        )
        self.record("action", "upload", f"{folder}/manifest.json, then {folder}/model.tar.gz")

    def approve(self, version: int) -> None:
        reason = f"offline AUC {MANIFESTS[version]['metrics']['auc']}, reviewed"
        self.record("action", "shepherd approve", f"{MODEL} v{version}: {reason}")
        operations.request_approval(self.target, MODEL, version, "approved", reason, REQUESTER)

    def promote(self, version: int, strategy: dict[str, Any]) -> None:
        self.record("action", "shepherd promote", f"{MODEL} v{version} -> {ENDPOINT}, {json.dumps(strategy)}")
        operations.request_promotion(
            self.target,
            model_name=MODEL,
            version=version,
            endpoint_name=ENDPOINT,
            strategy=strategy,
            alarms=(),
            instance_type="ml.m5.large",
            instance_count=1,
            by=REQUESTER,
            reason=f"promote v{version}",
        )

    def misbehave(self, version: int, behaviour: Behaviour) -> None:
        """What `shepherd local traffic` does: the version answers the simulated traffic this way."""
        set_behaviour(self.local.client("ssm"), MODEL, version, behaviour)
        self.record("action", "shepherd local traffic", f"{MODEL} v{version}: {behaviour.describe()}")

    # --- what the expectations read ---

    def status_of(self, version: int) -> str | None:
        found = self.target.registry().get_version(MODEL, version)
        return found.status.value if found else None

    def announced(self, detail_type: str, **detail: Any) -> tuple[datetime, dict[str, Any]] | None:
        for at, event in self.announcements:
            if event["detail-type"] == detail_type and all(event["detail"].get(k) == v for k, v in detail.items()):
                return at, event["detail"]
        return None

    def endpoint(self) -> tuple[str, dict[str, float]] | None:
        """(status, variant -> current weight) from DescribeEndpoint, or None when there is none."""
        try:
            described = self.local.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
        except ClientError:
            return None
        weights = {v["VariantName"]: float(v.get("CurrentWeight", 0.0)) for v in described["ProductionVariants"]}
        return described["EndpointStatus"], weights

    def has_function(self, logical_id: str) -> bool:
        return logical_id in self.local.stack.functions


# --- steps and expectations ----------------------------------------------------------------------

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


def _upload(version: int) -> Callable[[Demo], None]:
    return lambda demo: demo.upload(version)


def _approve(version: int) -> Callable[[Demo], None]:
    return lambda demo: demo.approve(version)


def _promote(version: int, strategy: dict[str, Any]) -> Callable[[Demo], None]:
    return lambda demo: demo.promote(version, strategy)


def _canary_behaving(version: int, behaviour: Behaviour) -> Callable[[Demo], None]:
    def act(demo: Demo) -> None:
        demo.misbehave(version, behaviour)  # before it serves: every minute it answers behaves so
        demo.promote(version, CANARY)

    return act


def _registered(version: int) -> Expectation:
    return all_of(
        announced("Model Version Registered", model_name=MODEL, version=version),
        version_is(version, VersionStatus.REGISTERED),
    )


SCENARIO: tuple[Step, ...] = (
    Step("upload v1 with its manifest: registered", _upload(1), _registered(1)),
    Step("approve v1", _approve(1), version_is(1, VersionStatus.APPROVED)),
    Step(
        "first deployment of v1, all at once",
        _promote(1, {"type": "all_at_once"}),
        all_of(announced("Rollout Completed", version=1), version_is(1, VersionStatus.LIVE), weights_are({1: 1.0})),
        within_seconds=300,
    ),
    Step("upload v2: registered", _upload(2), _registered(2)),
    Step("approve v2", _approve(2), version_is(2, VersionStatus.APPROVED)),
    Step(
        "promote v2 as a 10% canary (bake 15 min, watch 2 min); it starts cold, 2 slow minutes",
        _canary_behaving(2, COLD_START),
        all_of(
            announced("Rollout Traffic Shifted", version=2, to_percent=10),
            version_is(2, VersionStatus.DEPLOYING),
            weights_are({1: 0.9, 2: 0.1}),
        ),
        within_seconds=300,
    ),
    Step(
        "the canary bakes, then v2 takes 100%",
        None,
        all_of(
            announced("Rollout Completed", version=2),
            version_is(2, VersionStatus.LIVE),
            canary_baked(2, CANARY_BAKE_SECONDS),
            weights_are({1: 0.0, 2: 1.0}),
        ),
        within_seconds=1500,  # the bake, and up to 10 minutes more if the judge needs them
    ),
    Step(
        "the watch window ends: v1 retired",
        None,
        all_of(
            announced("Model Version Retired", version=1),
            version_is(1, VersionStatus.RETIRED),
            weights_are({2: 1.0}),
        ),
        within_seconds=600,
    ),
    Step("upload v3: registered", _upload(3), _registered(3)),
    Step("approve v3", _approve(3), version_is(3, VersionStatus.APPROVED)),
    Step(
        "promote v3 as a 10% canary, judged by the alarms alone",
        _promote(3, ALARMS_ONLY),
        all_of(announced("Rollout Traffic Shifted", version=3, to_percent=10), weights_are({2: 0.9, 3: 0.1})),
        within_seconds=300,
    ),
    Step(
        "v3 fails 30% of its requests: the simulated traffic records the 5xx errors",
        lambda demo: demo.misbehave(3, FAILING),
        metric_recorded(3),
        within_seconds=180,
    ),
    Step("automatic rollback to v2", None, rolled_back(3, 2), within_seconds=600),
    Step("upload v4: registered", _upload(4), _registered(4)),
    Step("approve v4", _approve(4), version_is(4, VersionStatus.APPROVED)),
    Step(
        "v4 answers 40% slower than v2 (far under the 300 ms alarm); promote it as a 10% canary, judged",
        _canary_behaving(4, SLOWER),
        all_of(announced("Rollout Traffic Shifted", version=4, to_percent=10), weights_are({2: 0.9, 4: 0.1})),
        within_seconds=300,
    ),
    Step(
        "the canary judge rolls v4 back on latency, with no alarm firing",
        None,
        all_of(
            announced("Canary Analysis Completed", version=4, decision="rollback"),
            announced("Rollout Rolled Back", version=4, trigger="analysis"),
            rolled_back(4, 2),
            no_alarm_fired(),
        ),
        within_seconds=900,
    ),
)


# --- running it ----------------------------------------------------------------------------------


@dataclass
class DemoResult:
    steps: list[StepResult]
    scenario_length: int
    timeline: list[Line]
    final_status: dict[str, Any] | None
    versions: dict[str, str | None]
    simulated_seconds: int
    wall_seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return len(self.steps) == self.scenario_length and all(step.ok for step in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((step for step in self.steps if not step.ok), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": [step.to_json() for step in self.steps],
            "timeline": [line.to_json() for line in self.timeline],
            "final_status": self.final_status,
            "versions": self.versions,
            "simulated_seconds": self.simulated_seconds,
            "wall_seconds": round(self.wall_seconds, 2),
        }


def run_steps(demo: Demo, steps: Sequence[Step]) -> list[StepResult]:
    """Each step: act, let the events flow, then advance a tick at a time until its expectation holds."""
    results = []
    for number, step in enumerate(steps, start=1):
        started = demo.now
        if demo.observer is not None:
            demo.observer.step_started(number, step, demo)
        try:
            if step.act is not None:
                step.act(demo)
                demo.settle()
            problem = step.expect(demo)
            waited = 0
            while problem is not None and waited < step.within_seconds:
                demo.pump.advance(TICK_SECONDS)
                waited += TICK_SECONDS
                demo.drain()
                problem = step.expect(demo)
        except (CliError, ClientError, LookupError) as error:
            problem = f"{type(error).__name__}: {error}"
        result = StepResult(step.name, problem is None, started, demo.now, problem)
        results.append(result)
        if demo.observer is not None:
            demo.observer.step_finished(number, result, demo)
        if not result.ok:
            break
    return results


def run_demo(
    template_path: Path,
    observer: Observer | None = None,
    steps: Sequence[Step] = SCENARIO,
    on_start: Callable[[Demo], None] | None = None,
    keep_state: Path | None = None,
) -> DemoResult:
    """Start local mode from `template_path`, run the scenario, stop; the result says how it went.

    With `keep_state`, the emulator's state is saved there at the end as `local up --state` saves it
    (same names, thanks to the same seed), so `local up` and `shepherd ui` show the demo's world."""
    wall_start = time.monotonic()
    with LocalShepherd.start(
        template_path, clock=SimulatedClock(), environment_overrides=QUIET, names_seed=persistence.NAMES_SEED
    ) as local:
        simulation.attach(local, seed=TRAFFIC_SEED)
        demo = Demo(local, observer)
        if on_start is not None:
            on_start(demo)
        results = run_steps(demo, steps)
        try:
            final_status: dict[str, Any] | None = operations.endpoint_status(demo.target, ENDPOINT)
        except CliError:
            final_status = None
        versions = {f"v{version}": demo.status_of(version) for version in MANIFESTS}
        if keep_state is not None:
            local.pump.run_until_idle()
            persistence.save(keep_state, local.outputs, local.pump.clock.now)
        return DemoResult(
            steps=results,
            scenario_length=len(steps),
            timeline=demo.timeline,
            final_status=final_status,
            versions=versions,
            simulated_seconds=demo.elapsed(),
            wall_seconds=time.monotonic() - wall_start,
            notes=local.stack.notes,
        )
