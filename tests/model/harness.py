"""The model-based test of the rollout engine: a hypothesis state machine over the real services.

`RolloutModel` drives PromotionService, RolloutService (the controller) and RollbackService through `driver` over the
in-memory ports of tests/fakes.py (held to the adapters by tests/contract/), each wrapped by a
`Faulty` port. Rules send promotions of every strategy, controller ticks (on time, duplicated,
stale, future-dated), alarms in their three shapes (own, named, baseline, endpoint-wide;
duplicated, concurrent), operator rollbacks (with and without `to_version`), SageMaker faults
(throttling, 5xx, non-retryable 4xx, a failed update rolled back, an endpoint stuck Updating or
deleted outside), autoscaling (endpoints registered with Application Auto Scaling, scaling
activities within their limits, Application Auto Scaling faults), DynamoDB throttling and cancelled transactions, PutEvents failures, a crash
before any port call, and another invocation interleaved between two port calls. Invocations that
fail are redelivered (Lambda's retries). After every step `invariants.check_step` checks I1-I5 and
C1-C3 (capacity) as far as they are observable; at the end time runs out (faults stop, failed events are redriven,
alarms clear, ticks until nothing is active) and `invariants.check_final` checks that every lock
was released and every terminal transition announced and audited.

Debugging aids (the default checks everything): SHEPHERD_MODEL_SKIP=I1,I5 skips invariants,
SHEPHERD_MODEL_ONLY=<text> counts only violations whose message contains the text (so hypothesis
shrinks that one), SHEPHERD_MODEL_WITHOUT=future sends no future-dated events.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from shepherd.capacity.scaling import INVOCATIONS_PER_INSTANCE, ScalableTarget, TargetTracking
from shepherd.registry.model import ArtifactRef, AuditEntry, Lineage, ModelVersion, VersionStatus
from shepherd.rollouts.errors import EndpointRequestRefused, EndpointStillUpdating
from tests.fakes import (
    FakeClock,
    InMemoryAlarms,
    InMemoryAutoScaling,
    InMemoryEndpoints,
    InMemoryRegistry,
    InMemoryRolloutStore,
    RecordingPublisher,
)
from tests.model import driver, invariants
from tests.model.events import ALARM_SHAPES, alarm_event, rollback_command
from tests.model.faults import Crash, Fault, FaultPlan, Faulty
from tests.model.metrics import BEHAVIOURS, CandidateTraffic

# The services log every decision, and every isolated failure with its traceback (injected faults
# are thousands of them): thousands of sequences would drown the report in them.
logging.getLogger("shepherd").setLevel(logging.CRITICAL)

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ENDPOINTS = ("ep-a", "ep-b")
MODEL_OF = {"ep-a": "model-a", "ep-b": "model-b"}
VERSIONS = 10
# An autoscaled endpoint's limits and the count autoscaling has it at (above min): (min, max, count).
SCALING_LIMITS = ((2, 8, 4), (1, 4, 3), (2, 6, 5))
SCALING_POLICY = "model-invocations-tracking"
TRACKING = TargetTracking(target_value=70.0, predefined_metric=INVOCATIONS_PER_INSTANCE)

STRATEGIES = st.one_of(
    st.builds(
        lambda percent, bake, watch: {
            "type": "canary",
            "canary_percent": percent,
            "bake_seconds": bake,
            "post_deploy_watch_seconds": watch,
        },
        st.sampled_from([1, 10, 50, 99]),
        st.sampled_from([0, 60, 600]),
        st.sampled_from([0, 60, 900]),
    ),
    st.builds(
        lambda step, interval, watch: {
            "type": "linear",
            "step_percent": step,
            "interval_seconds": interval,
            "post_deploy_watch_seconds": watch,
        },
        st.sampled_from([20, 30, 50, 100]),
        st.sampled_from([0, 60, 300]),
        st.sampled_from([0, 300]),
    ),
    st.just(
        {
            "type": "steps",
            "steps": [{"percent": 5, "bake_seconds": 60}, {"percent": 50, "bake_seconds": 120}, {"percent": 100}],
            "post_deploy_watch_seconds": 120,
        }
    ),
    st.builds(lambda watch: {"type": "all_at_once", "post_deploy_watch_seconds": watch}, st.sampled_from([0, 600])),
    # A manual gate holds until an operator resumes (operator_resumes), or its deadline decides.
    st.builds(lambda watch: {"type": "blue_green", "post_deploy_watch_seconds": watch}, st.sampled_from([0, 600])),
    st.just(
        {
            "type": "steps",
            "steps": [{"percent": 10, "bake_seconds": 60}, {"percent": 100, "gate": "manual"}],
            "post_deploy_watch_seconds": 120,
        }
    ),
)
# The canary judge, as a promotion may set it. The candidates' traffic (tests/model/metrics.py) is
# silent unless a rule changes it, so a judged step is INCONCLUSIVE: its bake is extended, then it
# advances, rolls back (trigger `analysis`) or holds as the strategy says. A held step is judged
# every pass: a failing candidate rolls it back, a healthy one advances it (the judges that hold
# judge errors only, as the fake has no latency data), an operator resumes it, or its deadline
# decides. Advisory judges say what they would do and never act. A fresh baseline puts a third
# variant (the live model again) in the shift config of a judged rollout.
ERRORS_ONLY = {"latency_p50": {"enabled": False}, "latency_p99": {"enabled": False}}
JUDGES = st.sampled_from(
    [
        {"enabled": False},
        {"on_inconclusive": "advance", "max_extension_seconds": 60},
        {"on_inconclusive": "rollback", "max_extension_seconds": 120},
        {"on_inconclusive": "advance", "max_extension_seconds": 60, "baseline": "fresh"},
        {"on_inconclusive": "rollback", "max_extension_seconds": 120, "baseline": "fresh"},
        {
            "on_inconclusive": "hold",
            "max_extension_seconds": 60,
            "max_hold_seconds": 900,
            "hold_reminder_seconds": 300,
            "default_metrics": ERRORS_ONLY,
        },
        {
            "on_inconclusive": "hold",
            "on_hold_timeout": "advance",
            "held_step_advances": False,
            "max_hold_seconds": 3600,
            "default_metrics": ERRORS_ONLY,
        },
        {"on_inconclusive": "hold", "default_metrics": ERRORS_ONLY},  # a day's hold: time running out ends it
        {"mode": "advisory", "on_inconclusive": "rollback", "max_extension_seconds": 60},
    ]
)
STRATEGIES = st.builds(lambda strategy, judge: {**strategy, "analysis": {"judge": judge}}, STRATEGIES, JUDGES)
# Time runs out: the controller keeps running this long (service clock) after the last step.
QUIESCENCE_HORIZON = timedelta(hours=48)
# Inputs to leave out while debugging, e.g. SHEPHERD_MODEL_WITHOUT=future (no future-dated events).
WITHOUT = frozenset(filter(None, os.environ.get("SHEPHERD_MODEL_WITHOUT", "").replace(" ", "").split(",")))
# Only violations whose message contains this text count (to shrink one problem at a time).
ONLY = os.environ.get("SHEPHERD_MODEL_ONLY", "")
# When a sender says an event happened, relative to the receiving clock.
EVENT_TIMES = {"now": timedelta(0), "stale": timedelta(minutes=-10), "future": timedelta(days=30)}


def named_alarms(endpoint: str) -> dict[str, str]:
    """Alarms a team owns on the endpoint, by kind: a KPI alarm with no dimensions, an endpoint-wide
    5xx alarm, and a target-tracking (scale-out) alarm on the baseline variant."""
    return {
        "kpi": f"team-{endpoint}-kpi",
        "endpoint": f"{endpoint}-endpoint-5xx",
        "baseline": f"{endpoint}-baseline-scale-out",
    }


def endpoint_of(args: Any) -> str | None:
    """The one endpoint a port call is about, if it is about exactly one (for endpoint-scoped faults)."""
    found: set[str] = set()
    _collect_endpoints(args, found, depth=0)
    return found.pop() if len(found) == 1 else None


def _collect_endpoints(value: Any, found: set[str], depth: int) -> None:
    if depth > 4 or value is None:
        return
    if isinstance(value, str):
        found.update(_endpoints_named_in(value))
        return
    if isinstance(value, dict):
        for item in value.values():
            _collect_endpoints(item, found, depth + 1)
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect_endpoints(item, found, depth + 1)
        return
    for attribute in ("endpoint_name", "rollout", "entry", "incident", "audit", "name", "alarm_names", "announcements"):
        if hasattr(value, attribute):
            _collect_endpoints(getattr(value, attribute), found, depth + 1)


def _endpoints_named_in(name: str) -> list[str]:
    """The endpoints a name belongs to: the endpoint, its model, configs, alarms and SageMaker models."""
    return [
        endpoint
        for endpoint, model in MODEL_OF.items()
        if name in (endpoint, model)
        or name.startswith((f"{endpoint}-", f"shepherd-{endpoint}-", f"team-{endpoint}-", f"model--{model}-"))
    ]


def approved_version(model_name: str, number: int) -> tuple[ModelVersion, list[AuditEntry]]:
    artifact = ArtifactRef(bucket="b", key=f"models/{model_name}/{number}/model.tar.gz", s3_version_id=f"s{number}")
    version = ModelVersion(
        model_name=model_name,
        version=number,
        artifact=artifact,
        etag="e",
        size=1,
        checksum=None,
        metadata={},
        metrics={},
        tags={},
        lineage=Lineage(),
        status=VersionStatus.APPROVED,
        created_at=START,
        uploaded_at=START,
        uploaded_by=None,
        registered_by_event=f"upload-{number}",
    )
    common = {"model_name": model_name, "version": number, "actor": "ci", "at": START}
    audit = [
        AuditEntry(
            **common, action="registered", from_status=None, to_status=VersionStatus.REGISTERED, event_id=f"r{number}"
        ),
        AuditEntry(
            **common,
            action="approved",
            from_status=VersionStatus.REGISTERED,
            to_status=VersionStatus.APPROVED,
            event_id=f"a{number}",
        ),
    ]
    return version, audit


@dataclass
class Invocation:
    """One event delivered to one function: what the harness needs to redeliver and judge it."""

    kind: str  # "promote", "rollback", "tick", "resume"
    event: Any  # driver.Promotion, a raw rollback event, or (now, event id)
    endpoint: str | None = None
    changed_at: datetime | None = None  # an alarm's or an operator request's time
    attempts: int = 0


@dataclass
class Stats:
    sequences: int = 0
    steps: int = 0  # rule steps (time running out at the end is not counted)
    checks: int = 0  # times I1-I5 were checked (after every step, and every tick while time runs out)
    invocations: int = 0
    faults: int = 0
    autoscaled_ends: int = 0  # rollouts judged at their end on an endpoint that autoscaled (C3)
    violations: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)


STATS = Stats()


class RolloutModel(RuleBasedStateMachine):
    collect = False  # True (the bench): count violations and go on instead of failing the example

    def __init__(self) -> None:
        super().__init__()
        STATS.sequences += 1
        self.clock = FakeClock(START)
        self.registry = InMemoryRegistry()
        for model in MODEL_OF.values():
            for number in range(1, VERSIONS + 1):
                version, audit = approved_version(model, number)
                self.registry.versions[(model, number)] = version
                self.registry.audit.extend(audit)
        self.store = InMemoryRolloutStore(self.registry)
        self.scaling = InMemoryAutoScaling()  # Application Auto Scaling
        self.sagemaker = InMemoryEndpoints(now=lambda: self.clock.now, scaling=self.scaling)
        self.alarms = InMemoryAlarms()
        for endpoint in ENDPOINTS:
            for name in named_alarms(endpoint).values():
                self.alarms.add(name)
        self.publisher = RecordingPublisher()
        self.plan = FaultPlan(endpoint_of)
        self.traffic = CandidateTraffic(lambda: self.clock.now)
        self.services = driver.build(
            registry=Faulty("dynamodb", self.registry, self.plan),
            store=Faulty("dynamodb", self.store, self.plan),
            endpoints=Faulty("sagemaker", self.sagemaker, self.plan),
            alarms=Faulty("cloudwatch", self.alarms, self.plan),
            events=Faulty("events", self.publisher, self.plan),
            clock=self.clock,
            metrics=Faulty("cloudwatch", self.traffic, self.plan),
            scaling=Faulty("autoscaling", self.scaling, self.plan),
        )
        self.resume_answers: dict[str, str] = {}  # a resume's event id -> its first answer
        self.ids = itertools.count()
        self.sent: list[Invocation] = []
        self.failed: list[Invocation] = []
        self.promoted: dict[str, set[int]] = {model: set() for model in MODEL_OF.values()}
        # Endpoints deleted outside Shepherd -> the rollouts they had then. Their record is stale until a
        # promotion *starts* a rollout there (a rejected one reconciles nothing: docs/design.md).
        self.deleted_outside: dict[str, frozenset[str]] = {}
        self.rollback_results: list[invariants.RollbackSeen] = []
        self.tick_reports: list[invariants.TickSeen] = []
        self.log: list[str] = []
        self.violations: list[str] = []
        self.interleaved = False
        self.last_outcome: Any = None  # what the last invocation delivered returned (None: it failed)
        self.running: str | None = None  # the kind of the (outermost) invocation under way
        self.checked_announcements = 0
        self.checked_count_changes = 0  # C1: the fake SageMaker's count changes already judged
        self.checked_weight_moves = 0  # C4: the fake SageMaker's weight changes already judged
        self.checked_unsafe_updates = 0  # C2: the fake SageMaker's refusals already judged
        # C1, C3: per rollout, its live variant's instance count and scaling when it started (the count
        # follows autoscaling's own moves of that variant), and the rollouts already judged at their end.
        self.capacity_at_start: dict[str, invariants.CapacityAtStart] = {}
        self.capacity_judged: set[str] = set()
        self.quiescing = False
        self.broken = False  # an invariant failed the example: teardown checks nothing more

    # --- delivering events -----------------------------------------------------------------------

    def event_id(self, kind: str) -> str:
        return f"{kind}-{next(self.ids)}"

    def deliver(self, invocation: Invocation) -> None:
        """Run one invocation as Lambda would; a failed one is kept for Lambda's retry."""
        STATS.invocations += 1
        invocation.attempts += 1
        nested = self.plan.suspended
        if not nested:
            self.plan.begin()
            self.interleaved = self.plan.interleave_at is not None
            self.running = invocation.kind
        active_before = {s.rollout.endpoint_name: s.rollout.rollout_id for s in self.store.active_rollouts()}
        flips_before = len(self.sagemaker.flips)
        received_at = self.clock.now
        self.log.append(f"deliver {invocation.kind} {invocation.endpoint or ''} {_short(invocation.event)}")
        outcome: Any = None
        error: BaseException | None = None
        try:
            outcome = self._run(invocation)
        except Crash as crash:
            error = crash
        except driver.RETRIED_ERRORS as failed:
            error = failed
        except Exception as unexpected:
            if not self.collect:
                raise
            error = unexpected
            self.fail("E", f"{invocation.kind} ended with an unexpected {type(unexpected).__name__}: {unexpected}")
        finally:
            if not nested:
                self.plan.end()
                STATS.faults += len(self.plan.fired)
        self._record(invocation, outcome, error, nested, active_before, flips_before, received_at)
        self.last_outcome = outcome if error is None else None

    def _record(
        self,
        invocation: Invocation,
        outcome: Any,
        error: BaseException | None,
        nested: bool,
        active_before: dict[str, str],
        flips_before: int,
        received_at: datetime,
    ) -> None:
        """Log the invocation's result and keep what the invariants judge it by."""
        if error is not None:
            self.log.append(f"  -> {type(error).__name__}: {error}")
            if invocation.kind != "tick":  # the schedule runs the controller again anyway
                self.failed.append(invocation)
        elif invocation.kind == "tick" and not any(v != "waiting" for v in outcome.values()):
            if self.log[-1].startswith("deliver tick"):
                self.log.pop()  # an idle controller pass: not worth a line
        else:
            self.log.append(f"  -> {outcome}")
        if invocation.kind == "rollback" and outcome is not None:
            # The time to flip counts from the alarm as received: a sender's time later than the
            # receiving clock (a future-dated alarm) is taken as the time of receipt (issue 9, fix 7).
            changed_at = min(invocation.changed_at, received_at) if invocation.changed_at else None
            for result in outcome:
                self.rollback_results.append(
                    invariants.RollbackSeen(
                        invocation.endpoint, result, changed_at, self.sagemaker.flips[flips_before:]
                    )
                )
        if invocation.kind == "tick" and not nested:
            self.tick_reports.append(
                invariants.TickSeen(
                    now=invocation.event[0],
                    active_before=active_before,
                    results=outcome if error is None else None,
                    calls=list(self.plan.calls),
                    fired=list(self.plan.fired),
                    crashed=self.plan.crashed,
                )
            )

    def _run(self, invocation: Invocation) -> Any:
        if invocation.kind == "promote":
            return driver.promote(self.services, invocation.event)
        if invocation.kind == "rollback":
            return driver.rollback(self.services, invocation.event)
        if invocation.kind == "resume":
            endpoint, rollout_id, event_id, at = invocation.event
            return driver.resume(self.services, endpoint, rollout_id, event_id, at)
        now, event_id = invocation.event
        return driver.tick(self.services, now, event_id)

    def fail(self, invariant_id: str, message: str) -> None:
        """An invariant broken: fail the example (or, collecting, count it and go on)."""
        key = f"{invariant_id}: {message.splitlines()[0][:300]}"
        if ONLY and ONLY not in key:
            return
        kind = _kind_of(key)
        STATS.violations[kind] = STATS.violations.get(kind, 0) + 1
        STATS.examples.setdefault(kind, key + "\n" + "\n".join(self.log[-60:]))
        if not self.collect:
            self.broken = True
            raise AssertionError(key + "\n--- what happened ---\n" + "\n".join(self.log[-60:]))
        self.violations.append(key)

    # --- rules: commands ---------------------------------------------------------------------------

    @initialize(
        deployed=st.sets(st.sampled_from(ENDPOINTS)),
        autoscaled=st.sets(st.sampled_from(ENDPOINTS), min_size=1),
        limits=st.sampled_from(SCALING_LIMITS),
    )
    def first_deployments(
        self, deployed: set[str], autoscaled: set[str] | None = None, limits: tuple[int, int, int] = SCALING_LIMITS[0]
    ) -> None:
        """Most sequences start with v1 live on an endpoint (deployed by Shepherd), so updates are common;
        some of those endpoints autoscale (registered with limits and a policy, scaled above min)."""
        for endpoint in sorted(deployed):
            self.promote(endpoint, {"type": "all_at_once"}, "next", 1, True, set(), "now")
        if deployed:
            self.controller_runs(3, 60)
        for endpoint in sorted(deployed & (autoscaled or set())):
            self.user_autoscales(endpoint, limits)

    @rule(
        endpoint=st.sampled_from(ENDPOINTS),
        strategy=STRATEGIES,
        pick=st.sampled_from(["next", "next", "next", "any"]),
        any_version=st.integers(1, VERSIONS),
        sized=st.booleans(),
        named=st.sets(st.sampled_from(["kpi", "endpoint", "baseline"]), max_size=2),
        when=st.sampled_from(["now"] * 6 + ["stale", "future"]),
    )
    def promote(self, endpoint, strategy, pick, any_version, sized, named, when) -> None:
        model = MODEL_OF[endpoint]
        unused = [n for n in range(1, VERSIONS + 1) if n not in self.promoted[model]]
        version = unused[0] if pick == "next" and unused else any_version
        self.promoted[model].add(version)
        alarms = tuple(named_alarms(endpoint)[kind] for kind in sorted(named))
        promotion = driver.Promotion(
            model_name=model,
            version=version,
            endpoint_name=endpoint,
            strategy=strategy,
            alarms=alarms,
            instance_type="ml.m5.large" if sized else None,
            initial_instance_count=2 if sized else None,
            event_id=self.event_id("promotion"),
            time=_whole_seconds(self.clock.now + _offset(when)),
        )
        self.send(Invocation("promote", promotion, endpoint))

    def send(self, invocation: Invocation) -> None:
        self.sent.append(invocation)
        self.deliver(invocation)

    @rule(when=st.sampled_from(["now", "now", "now", "stale", "future", "future-hour"]))
    def tick(self, when: str) -> None:
        offset = timedelta(hours=1) if when == "future-hour" and "future" not in WITHOUT else _offset(when)
        self.send(Invocation("tick", (self.clock.now + offset, self.event_id("tick"))))

    @rule(minutes=st.integers(1, 12), seconds=st.sampled_from([60, 60, 300]))
    def controller_runs(self, minutes: int, seconds: int) -> None:
        """The schedule: time passes and the controller runs, `minutes` times."""
        for _ in range(minutes):
            self.clock.now += timedelta(seconds=seconds)
            self.send(Invocation("tick", (self.clock.now, self.event_id("tick"))))

    @precondition(lambda self: any(i.kind == "tick" for i in self.sent))
    @rule(data=st.data())
    def repeat_tick(self, data) -> None:
        """A duplicate or out-of-order delivery of an earlier controller event (same id, same time)."""
        ticks = [i for i in self.sent if i.kind == "tick"]
        earlier = data.draw(st.sampled_from(ticks[-5:]))
        self.deliver(Invocation("tick", earlier.event))

    @rule(seconds=st.sampled_from([1, 30, 60, 60, 300, 900, 3700]))
    def time_passes(self, seconds: int) -> None:
        self.clock.now += timedelta(seconds=seconds)

    def alarm_invocation(self, endpoint: str, which: str, shape: str, state: str, when: str) -> Invocation | None:
        holder = self.store.lock_holder(endpoint)
        latest = self.store.latest_rollout(endpoint)
        rollout = self.store.get_rollout(endpoint, holder) if holder else latest
        live = self.store.live(endpoint)
        if which in ("own-error-rate", "own-latency"):
            if rollout is None:
                return None
            r = rollout.rollout
            error_rate, latency = driver.rollout_alarm_names(endpoint, r.rollout_id)
            name = error_rate if which == "own-error-rate" else latency
            dimensions = {"EndpointName": endpoint, "VariantName": r.candidate.variant_name}
        elif which == "baseline":
            name = named_alarms(endpoint)["baseline"]
            variant = rollout.rollout.live if rollout and rollout.rollout.live else (live.variant if live else None)
            dimensions = {"EndpointName": endpoint, **({"VariantName": variant.variant_name} if variant else {})}
        elif which == "endpoint":
            name, dimensions = named_alarms(endpoint)["endpoint"], {"EndpointName": endpoint}
        else:
            name, dimensions = named_alarms(endpoint)["kpi"], {}
        if name in self.alarms.states:
            self.alarms.states[name] = state
        at = _whole_seconds(self.clock.now + _offset(when))
        event = alarm_event(shape, name, state, at, dimensions, self.event_id("alarm"))
        return Invocation("rollback", event, endpoint, changed_at=at)

    @rule(
        endpoint=st.sampled_from(ENDPOINTS),
        which=st.sampled_from(["own-error-rate", "own-error-rate", "own-latency", "kpi", "endpoint", "baseline"]),
        shape=st.sampled_from(ALARM_SHAPES),
        state=st.sampled_from(["ALARM", "ALARM", "ALARM", "OK"]),
        when=st.sampled_from(["now", "now", "stale", "future"]),
    )
    def alarm(self, endpoint, which, shape, state, when) -> None:
        invocation = self.alarm_invocation(endpoint, which, shape, state, when)
        if invocation is None:
            return
        before = self.active_rollout(endpoint)
        self.send(invocation)
        if state == "ALARM" and self.went_cleanly(invocation):
            alarm_name, dimensions = _alarm_of(invocation.event)
            for invariant_id, message in invariants.check_alarm_acted(self, before, alarm_name, dimensions):
                self.fail(invariant_id, message)

    @rule(endpoint=st.sampled_from(ENDPOINTS), behaviour=st.sampled_from(BEHAVIOURS))
    def candidate_behaves(self, endpoint: str, behaviour: str) -> None:
        """The endpoint's candidate gets traffic (healthy or failing), or none, from now on."""
        self.log.append(f"traffic: the candidate on {endpoint} is {behaviour}")
        self.traffic.behave(endpoint, behaviour)

    @rule(endpoint=st.sampled_from(ENDPOINTS), which=st.sampled_from(["active", "active", "latest"]))
    def operator_resumes(self, endpoint: str, which: str) -> None:
        """`shepherd resume`: of the endpoint's active rollout (held or not), or of its latest one."""
        stored = self.store.latest_rollout(endpoint)
        if which == "active":
            holder = self.store.lock_holder(endpoint)
            stored = self.store.get_rollout(endpoint, holder) if holder else None
        if stored is None:
            return
        event = (endpoint, stored.rollout.rollout_id, self.event_id("resume"), _whole_seconds(self.clock.now))
        invocation = Invocation("resume", event, endpoint)
        self.send(invocation)
        self.check_resume_answer(invocation)

    @precondition(lambda self: any(i.kind == "resume" for i in self.sent))
    @rule(data=st.data())
    def repeat_resume(self, data) -> None:
        """A second delivery of an earlier resume command (EventBridge delivers at least once)."""
        earlier = data.draw(st.sampled_from([i for i in self.sent if i.kind == "resume"][-5:]))
        invocation = Invocation("resume", earlier.event, earlier.endpoint)
        self.deliver(invocation)
        self.check_resume_answer(invocation)

    def check_resume_answer(self, invocation: Invocation) -> None:
        """A resume is answered one way on every delivery (resumed or refused, never the one then the other)."""
        answer = self.last_outcome
        if answer is None:
            return
        event_id = invocation.event[2]
        first = self.resume_answers.setdefault(event_id, answer)
        if answer != first:
            self.fail("RESUME", f"resume {event_id} was answered {first}, then {answer} on another delivery")

    def active_rollout(self, endpoint: str) -> Any:
        holder = self.store.lock_holder(endpoint)
        stored = self.store.get_rollout(endpoint, holder) if holder else None
        return stored.rollout if stored else None

    def went_cleanly(self, invocation: Invocation) -> bool:
        """The last invocation ran without an injected fault, a crash or an interleaving, and succeeded."""
        return not self.plan.fired and invocation not in self.failed and not self.interleaved

    @precondition(lambda self: any(i.kind == "rollback" for i in self.sent))
    @rule(data=st.data())
    def repeat_rollback_event(self, data) -> None:
        """A duplicate delivery of an earlier alarm or rollback command."""
        earlier = data.draw(st.sampled_from([i for i in self.sent if i.kind == "rollback"][-5:]))
        self.deliver(Invocation("rollback", earlier.event, earlier.endpoint, earlier.changed_at))

    @rule(
        endpoint=st.sampled_from(ENDPOINTS),
        to=st.sampled_from(["none", "none", "baseline", "other"]),
        any_version=st.integers(1, VERSIONS),
    )
    def operator_rollback(self, endpoint, to, any_version) -> None:
        to_version: int | None = None
        if to == "baseline":
            holder = self.store.lock_holder(endpoint)
            stored = self.store.get_rollout(endpoint, holder) if holder else None
            live = self.store.live(endpoint)
            to_version = stored.rollout.previous_version if stored else (live.version if live else None)
        elif to == "other":
            to_version = any_version
        at = _whole_seconds(self.clock.now)
        event = rollback_command(endpoint, to_version, at, self.event_id("operator"))
        before, published = self.active_rollout(endpoint), len(self.publisher.published)
        invocation = Invocation("rollback", event, endpoint, changed_at=at)
        self.send(invocation)
        if self.went_cleanly(invocation):
            new = self.publisher.published[published:]
            for invariant_id, message in invariants.check_operator_rollback(self, before, to_version, new):
                self.fail(invariant_id, message)

    @precondition(lambda self: bool(self.failed))
    @rule(data=st.data())
    def lambda_retries(self, data) -> None:
        """Lambda retries a failed asynchronous invocation (the same event)."""
        invocation = data.draw(st.sampled_from(self.failed))
        self.failed.remove(invocation)
        self.deliver(invocation)

    # --- rules: faults -----------------------------------------------------------------------------

    @rule(
        kind=st.sampled_from(
            ["throttling", "5xx", "ResourceLimitExceeded", "ValidationException", "AccessDeniedException"]
        ),
        methods=st.sampled_from(
            [
                None,
                "describe",
                "update_endpoint",
                "set_weights",
                "create_endpoint",
                "ensure_config",
                "ensure_model",
                "delete_config",
            ]
        ),
        endpoint=st.sampled_from([None, *ENDPOINTS]),
        times=st.integers(1, 3),
        applied=st.booleans(),
    )
    def sagemaker_fault(self, kind, methods, endpoint, times, applied) -> None:
        if kind == "throttling":
            error, applied = (lambda: driver.throttled("sagemaker")), False
        elif kind == "5xx":
            error = lambda: driver.server_error("sagemaker")  # noqa: E731
        else:
            error, applied = (lambda: driver.sagemaker_refused(kind)), False
        self.arm(Fault("sagemaker", _methods(methods), endpoint, error, applied, times, f"sagemaker {kind}"))

    @rule(
        kind=st.sampled_from(["throttling", "cancelled", "5xx"]),
        methods=st.sampled_from(
            [None, "commit", "get_rollout", "pending_announcements", "forget", "active_rollouts", "get_version"]
        ),
        endpoint=st.sampled_from([None, *ENDPOINTS]),
        times=st.integers(1, 3),
        applied=st.booleans(),
    )
    def dynamodb_fault(self, kind, methods, endpoint, times, applied) -> None:
        if kind == "cancelled":
            error, methods, applied = driver.transaction_cancelled, "commit", False
        elif kind == "throttling":
            error, applied = (lambda: driver.throttled("dynamodb")), False
        else:
            error = lambda: driver.server_error("dynamodb")  # noqa: E731
        self.arm(Fault("dynamodb", _methods(methods), endpoint, error, applied, times, f"dynamodb {kind}"))

    @rule(times=st.integers(1, 3), applied=st.booleans(), port=st.sampled_from(["events", "cloudwatch"]))
    def putevents_or_cloudwatch_fault(self, times, applied, port) -> None:
        self.arm(Fault(port, None, None, lambda: driver.throttled(port), applied, times, f"{port} failure"))

    def arm(self, fault: Fault) -> None:
        self.log.append(
            f"arm {fault.kind} on {fault.port}.{sorted(fault.methods or ['*'])} {fault.endpoint or '*'} x{fault.times}{' applied' if fault.applied else ''}"
        )
        self.plan.faults.append(fault)

    @rule(at_call=st.integers(0, 14))
    def crash_next_invocation(self, at_call: int) -> None:
        self.log.append(f"arm crash before call {at_call} of the next invocation")
        self.plan.crash_at = at_call

    @rule(
        at_call=st.integers(0, 12),
        endpoint=st.sampled_from(ENDPOINTS),
        other=st.sampled_from(["own-alarm", "operator", "tick", "duplicate"]),
        shape=st.sampled_from(ALARM_SHAPES),
    )
    def interleave_next_invocation(self, at_call, endpoint, other, shape) -> None:
        """Another invocation runs between two port calls of the next one (concurrent Lambdas)."""

        def run_other() -> None:
            # The invocation it interrupts (not the last event sent: a tick rule sends none).
            current_kind = self.running
            if other == "tick":
                if current_kind != "tick":  # the controller's reserved concurrency is 1
                    self.deliver(Invocation("tick", (self.clock.now, self.event_id("tick"))))
            elif other == "duplicate":
                if self.sent and self.sent[-1].kind != "tick":
                    last = self.sent[-1]
                    self.deliver(Invocation(last.kind, last.event, last.endpoint, last.changed_at))
            elif other == "operator":
                at = _whole_seconds(self.clock.now)
                self.deliver(
                    Invocation(
                        "rollback", rollback_command(endpoint, None, at, self.event_id("operator")), endpoint, at
                    )
                )
            else:
                invocation = self.alarm_invocation(endpoint, "own-error-rate", shape, "ALARM", "now")
                if invocation is not None:
                    self.sent.append(invocation)
                    self.deliver(invocation)

        self.log.append(f"arm interleave {other} on {endpoint} before call {at_call} of the next invocation")
        self.plan.interleave_at = (at_call, run_other)

    @rule(endpoint=st.sampled_from(ENDPOINTS))
    def update_will_fail(self, endpoint: str) -> None:
        self.log.append(f"sagemaker: next update of {endpoint} fails and rolls back")
        self.sagemaker.fail_next_update(endpoint, "Unable to provision requested ML compute capacity")

    @rule(endpoint=st.sampled_from(ENDPOINTS), stuck=st.booleans())
    def endpoint_stuck(self, endpoint: str, stuck: bool) -> None:
        self.log.append(f"sagemaker: {endpoint} {'stuck' if stuck else 'unstuck'}")
        (self.sagemaker.stuck.add if stuck else self.sagemaker.stuck.discard)(endpoint)

    @rule(endpoint=st.sampled_from(ENDPOINTS))
    def endpoint_deleted_outside(self, endpoint: str) -> None:
        if endpoint in self.sagemaker.endpoints:
            self.log.append(f"sagemaker: {endpoint} deleted outside Shepherd")
            self.sagemaker.delete_outside(endpoint)
            self.deleted_outside[endpoint] = self.rollout_ids(endpoint)
            # The team deleted the fleet its rollouts started with: none of them is held to it (C1, C3)
            # any more (a rollout dated later than the next one stays the endpoint's latest).
            self.capacity_judged |= self.deleted_outside[endpoint]

    def rollout_ids(self, endpoint: str) -> frozenset[str]:
        return frozenset(stored.rollout.rollout_id for stored in self.store.rollouts_of(endpoint))

    @rule(describes=st.integers(0, 3))
    def sagemaker_speed(self, describes: int) -> None:
        self.sagemaker.settle_after_describes = describes

    # --- rules: Application Auto Scaling ----------------------------------------------------------

    @rule(endpoint=st.sampled_from(ENDPOINTS), limits=st.sampled_from(SCALING_LIMITS))
    def user_autoscales(self, endpoint: str, limits: tuple[int, int, int]) -> None:
        """The team registers the variant serving alone with Application Auto Scaling (min, max and a
        target-tracking policy), and autoscaling soon has it above min. Only on an endpoint with no
        variant registered yet."""
        if self.sagemaker.describe(endpoint) is None or self.scaling.registered_variants(endpoint):
            return
        serving = [variant for variant, weight in self.sagemaker.desired_weights(endpoint).items() if weight > 0]
        if len(serving) != 1:
            return
        minimum, maximum, count = limits
        self.log.append(f"autoscaling: {endpoint}'s {serving[0]} registered, min {minimum} max {maximum}")
        self.scaling.register(ScalableTarget(endpoint, serving[0], minimum, maximum))
        self.scaling.put_target_tracking_policy(endpoint, serving[0], SCALING_POLICY, TRACKING)
        self.autoscaling_acts(endpoint, 0, count)

    @rule(endpoint=st.sampled_from(ENDPOINTS), which=st.integers(0, 1), count=st.integers(1, 9))
    def autoscaling_acts(self, endpoint: str, which: int, count: int) -> None:
        """A scaling activity on a registered variant (UpdateEndpointWeightsAndCapacities with its
        DesiredInstanceCount, kept within its limits), refused while the endpoint is changing."""
        registered = sorted(self.scaling.registered_variants(endpoint).items())
        if not registered:
            return
        variant, target = registered[which % len(registered)]
        wanted = min(max(count, target.min_capacity), target.max_capacity)
        now = self.sagemaker.desired_counts(endpoint).get(variant)
        if now is None or wanted == now:
            return
        held = target.suspended.dynamic_scaling_out if wanted > now else target.suspended.dynamic_scaling_in
        if held:
            return
        try:
            self.sagemaker.autoscale(endpoint, variant, wanted)
        except (EndpointStillUpdating, EndpointRequestRefused) as refused:
            self.log.append(f"autoscaling: {variant} on {endpoint} not scaled to {wanted} ({refused})")
            return
        self.log.append(f"autoscaling: {variant} on {endpoint} scaled from {now} to {wanted}")
        invariants.autoscaling_moved(self, endpoint, variant, wanted)

    @rule(
        kind=st.sampled_from(["throttling", "ConcurrentUpdateException", "AccessDeniedException"]),
        methods=st.sampled_from(
            [None, "scalable_target", "scaling_policies", "register", "put_target_tracking_policy", "deregister"]
        ),
        endpoint=st.sampled_from([None, *ENDPOINTS]),
        times=st.integers(1, 3),
        applied=st.booleans(),
    )
    def autoscaling_fault(self, kind, methods, endpoint, times, applied) -> None:
        if kind == "AccessDeniedException":
            error, applied = (lambda: driver.autoscaling_refused(kind)), False
        else:  # the adapter raises both as TransientError
            error = lambda: driver.throttled("autoscaling")  # noqa: E731
        self.arm(Fault("autoscaling", _methods(methods), endpoint, error, applied, times, f"autoscaling {kind}"))

    # --- checks ------------------------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        STATS.checks += 1
        STATS.steps += 0 if self.quiescing else 1
        invariants.note_rollouts_started(self)
        for invariant_id, message in invariants.check_step(self):
            self.fail(invariant_id, message)
        self.rollback_results.clear()
        self.tick_reports.clear()

    def teardown(self) -> None:
        if self.broken:
            return
        self.log.append("--- time runs out ---")
        self.quiescing = True
        self.quiesce()
        for invariant_id, message in invariants.check_final(self):
            self.fail(invariant_id, message)

    def quiesce(self) -> None:
        """Faults stop, failed events are redriven, alarms clear, and the controller runs until idle."""
        self.plan.clear()
        self.sagemaker.failing_updates.clear()
        for _ in range(3):
            failed, self.failed = self.failed, []
            for invocation in failed:
                self.deliver(invocation)
        self.invariants_hold()
        for name in self.alarms.states:
            self.alarms.states[name] = "OK"
        elapsed = timedelta(0)
        while elapsed < QUIESCENCE_HORIZON:
            if elapsed >= timedelta(hours=3):
                self.sagemaker.stuck.clear()  # SageMaker finishes in the end
            step = timedelta(minutes=5) if elapsed < timedelta(hours=4) else timedelta(hours=1)
            self.clock.now += step
            elapsed += step
            self.deliver(Invocation("tick", (self.clock.now, self.event_id("tick"))))
            self.invariants_hold()
            # Done when nothing is active, every finished rollout's clean-up is done (it finishes a
            # restore given up on: a hold timed out at a day is rolled back on hourly ticks here), no
            # endpoint is still changing (a restore the clean-up began while it was Updating lands,
            # and is looked at by a pass).
            if elapsed > timedelta(hours=4) and self.idle():
                break
        for endpoint in list(self.sagemaker.endpoints):  # SageMaker finishes what it was doing, watched or not
            for _ in range(self.sagemaker.settle_after_describes + 1):
                self.sagemaker.describe(endpoint)

    def idle(self) -> bool:
        """Nothing left for the controller: no rollout active or to clean up, and no endpoint changing (a
        change still in flight, such as a restore begun by the clean-up while the endpoint was Updating,
        must land and be seen by a pass before the records are compared with the endpoint)."""
        if self.store.active_rollouts() or self.store.rollouts_to_clean_up():
            return False
        return all(endpoint.settle is None for endpoint in self.sagemaker.endpoints.values())


def _alarm_of(event: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(alarm name, dimensions) of an alarm event, whichever its shape."""
    if "Records" in event:
        message = json.loads(event["Records"][0]["Sns"]["Message"])
        return message["AlarmName"], {d["name"]: d["value"] for d in message["Trigger"]["Dimensions"]}
    detail = event.get("alarmData") or event["detail"]
    return detail["alarmName"], detail["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]


def _offset(when: str) -> timedelta:
    return EVENT_TIMES.get(when, timedelta(0)) if when not in WITHOUT else timedelta(0)


def _kind_of(key: str) -> str:
    """A violation's message without its ids, times and numbers: one line per distinct problem."""
    key = re.sub(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{10}", "<rollout>", key)
    key = re.sub(r"ep-[ab]|model-[ab]", "<x>", key)
    invariant_id, _, message = key.partition(": ")
    return f"{invariant_id}: " + re.sub(r"[0-9]+(\.[0-9]+)?", "N", message)[:200]


def _methods(methods: str | None) -> frozenset[str] | None:
    return frozenset({methods}) if methods else None


def _whole_seconds(at: datetime) -> datetime:
    """Event times as EventBridge and CloudWatch write them (whole seconds or milliseconds)."""
    return at.replace(microsecond=0)


def _short(event: Any) -> str:
    if isinstance(event, driver.Promotion):
        return f"v{event.version} {event.strategy.get('type')} at {event.time:%m-%d %H:%M:%S} ({event.event_id})"
    if isinstance(event, tuple) and len(event) == 4:
        return f"resume {event[1]} ({event[2]})"
    if isinstance(event, tuple):
        return f"now={event[0]:%m-%d %H:%M:%S} ({event[1]})"
    if "detail" in event and "endpoint_name" in event.get("detail", {}):
        return f"operator rollback to {event['detail'].get('to_version')}"
    if "alarmData" in event:
        return f"alarm action {event['alarmData']['alarmName']} {event['alarmData']['state']['value']}"
    if "Records" in event:
        return f"sns alarm {event['Records'][0]['Sns']['Message'][:0]}"
    return f"eventbridge alarm {event['detail']['alarmName']} {event['detail']['state']['value']}"
