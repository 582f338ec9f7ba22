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
returns a `DemoResult` (every step's outcome, the timeline, the final status). Its world (the model,
its versions, `Demo`) is in `demo_world`, the steps' expectations in `demo_expectations`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from shepherd.registry.model import VersionStatus
from shepherd_cli.endpoint_view import endpoint_status
from shepherd_cli.errors import CliError
from shepherd_cli.local import persistence, simulation
from shepherd_cli.local.demo_expectations import (
    Expectation,
    Step,
    StepResult,
    all_of,
    announced,
    canary_baked,
    metric_recorded,
    no_alarm_fired,
    rolled_back,
    version_is,
    weights_are,
)
from shepherd_cli.local.demo_world import (
    ALARMS_ONLY,
    CANARY,
    CANARY_BAKE_SECONDS,
    COLD_START,
    ENDPOINT,
    FAILING,
    MANIFESTS,
    MODEL,
    QUIET,
    SLOWER,
    TICK_SECONDS,
    TRAFFIC_SEED,
    Demo,
    Observer,
)
from shepherd_cli.local.monitor import Line
from shepherd_cli.local.simulated_time import SimulatedClock
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.local.traffic_behaviour import Behaviour

# --- the scenes ------------------------------------------------------------------------------------


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
            final_status: dict[str, Any] | None = endpoint_status(demo.target, ENDPOINT)
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
