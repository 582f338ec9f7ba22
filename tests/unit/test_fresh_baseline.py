"""A fresh baseline (`analysis.judge.baseline: fresh`), pure: which rollouts get one, and its weights.

With a fresh baseline the shift config holds three variants: the live one, the candidate, and the live
variant's model again on the candidate's capacity. A judged step of p% gives the candidate p, the fresh
baseline min(p, 100 - p) and the live variant the rest; every other step, the watch window and any
revert give the fresh baseline 0. The final config is the candidate alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shepherd.analysis.verdict import Verdict
from shepherd.capacity.prices import BUILT_IN
from shepherd.rollouts import naming
from shepherd.rollouts.actions import RecordProgress, ShiftTraffic, UpdateEndpoint, Wait
from shepherd.rollouts.decide import decide
from shepherd.rollouts.flip import flip_record
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint, ObservedVariant
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout, VariantSpec, new_rollout, request_abort
from shepherd.rollouts.rollback_cause import RollbackCause
from shepherd.rollouts.step_analysis import StepAnalysis
from shepherd.rollouts.strategy import parse_strategy
from tests.unit.test_controller import FakeEndpoint

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ENDPOINT = "churn-prod"
RID = naming.rollout_id("0b6f3c1e-2d4a-4f5b-9c8d-7e6f5a4b3c2d", T0)
SHIFT = naming.endpoint_config_name(ENDPOINT, RID, "shift")
FINAL = naming.endpoint_config_name(ENDPOINT, RID, "final")
PREVIOUS = "churn-prod-previous"
CANDIDATE = VariantSpec.for_version(
    "churn", 2, instance_type="ml.c5.xlarge", initial_instance_count=1, namespace="shepherd-dev"
)
LIVE = VariantSpec.for_version(
    "churn", 1, instance_type="ml.m5.large", initial_instance_count=4, namespace="shepherd-dev"
)
FRESH_NAME = naming.baseline_variant_name("churn", 1, RID)
NONE: frozenset[str] = frozenset()

CANARY_10 = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 900}
STEPS = {
    "type": "steps",
    "steps": [
        {"percent": 5, "bake_seconds": 300},
        {"percent": 20},  # no bake: not judged
        {"percent": 50, "bake_seconds": 300},
        {"percent": 75, "bake_seconds": 300},
        {"percent": 100},
    ],
}


def strategy(base: dict[str, Any] = CANARY_10, **judge: Any) -> dict[str, Any]:
    return {**base, "analysis": {"judge": {"baseline": "fresh", **judge}}}


def rollout(raw: dict[str, Any] | None = None, *, first: bool = False, **changes: Any) -> Rollout:
    record = new_rollout(
        rollout_id=RID,
        endpoint_name=ENDPOINT,
        model_name="churn",
        version=2,
        strategy=parse_strategy(raw or strategy()),
        candidate=CANDIDATE,
        live=None if first else LiveDeployment(model_name="churn", version=1, variant=LIVE, config_name=PREVIOUS),
        now=T0,
    )
    return Rollout.model_validate({**record.model_dump(), **changes})


def endpoint(candidate: float, fresh: float | None, live: float, config: str = SHIFT) -> ObservedEndpoint:
    variants = [ObservedVariant(LIVE.variant_name, live), ObservedVariant(CANDIDATE.variant_name, candidate)]
    if fresh is not None:
        variants.append(ObservedVariant(FRESH_NAME, fresh))
    return ObservedEndpoint(EndpointStatus.IN_SERVICE, config, tuple(variants))


def advanced(record: Rollout) -> Rollout:
    """The record with its baking step passed by the judge (the judge itself is tested elsewhere)."""
    verdict = Verdict(outcome="PASS", critical_failure=False, minutes=5, metrics=())
    entry = StepAnalysis(
        step=record.step_index, percent=record.target_percent, judged_at=T0, verdict=verdict, decision="advance"
    )
    return record.with_step_analysis(entry)


# --- which rollouts get one ------------------------------------------------------------------------


def test_a_fresh_baseline_runs_the_live_model_on_the_candidates_capacity() -> None:
    record = rollout()

    assert record.fresh_baseline == VariantSpec(
        variant_name=FRESH_NAME,
        model_resource_name=LIVE.model_resource_name,
        instance_type="ml.c5.xlarge",
        initial_instance_count=1,
    )
    assert record.baseline_variant == record.fresh_baseline
    assert Rollout.model_validate_json(record.model_dump_json()) == record


@pytest.mark.parametrize(
    ("raw", "first"),
    [
        (strategy(), True),  # a first deployment: nothing to compare with
        (strategy(enabled=False), False),  # no judge
        ({**CANARY_10, "analysis": {"judge": {"baseline": "live"}}}, False),
        (CANARY_10, False),  # the default is the live variant
        (strategy({**CANARY_10, "bake_seconds": 0}), False),  # no step is judged
        (strategy({"type": "all_at_once"}), False),
    ],
)
def test_no_fresh_baseline_without_a_judged_step_against_a_live_variant(raw: dict[str, Any], first: bool) -> None:
    record = rollout(raw, first=first)

    assert record.fresh_baseline is None
    assert record.baseline_variant == record.live


def test_a_fresh_baseline_must_run_the_live_model_under_a_name_of_its_own() -> None:
    record = rollout()
    assert record.fresh_baseline is not None

    for wrong in (
        record.fresh_baseline.model_copy(update={"model_resource_name": CANDIDATE.model_resource_name}),
        record.fresh_baseline.model_copy(update={"variant_name": LIVE.variant_name}),
        record.fresh_baseline.model_copy(update={"variant_name": CANDIDATE.variant_name}),
    ):
        with pytest.raises(ValueError, match="fresh_baseline"):
            Rollout.model_validate({**record.model_dump(), "fresh_baseline": wrong.model_dump()})


# --- the shift config and the weights --------------------------------------------------------------


def test_the_shift_config_holds_live_candidate_and_fresh_baseline_at_0() -> None:
    action = decide(rollout(), ObservedEndpoint(EndpointStatus.IN_SERVICE, PREVIOUS, ()), NONE, T0)

    assert isinstance(action, UpdateEndpoint) and action.create_config is not None
    assert [(v.variant, v.initial_weight) for v in action.create_config.variants] == [
        (LIVE, 1.0),
        (CANDIDATE, 0.0),
        (rollout().fresh_baseline, 0.0),
    ]


@pytest.mark.parametrize(
    ("step", "weights"),
    [
        (0, (0.05, 0.05, 0.9)),  # judged: candidate p, fresh p, live 100 - 2p
        (1, (0.2, 0.0, 0.8)),  # no bake, not judged: no traffic on the fresh baseline
        (2, (0.5, 0.5, 0.0)),  # 2p = 100
        (3, (0.75, 0.25, 0.0)),  # 2p > 100: the fresh baseline gets 100 - p, live 0
        (4, (1.0, 0.0, 0.0)),  # the final step
    ],
)
def test_each_step_sets_all_three_weights_in_one_call(step: int, weights: tuple[float, float, float]) -> None:
    record = rollout(strategy(STEPS))
    before = record.plan[step - 1].percent if step else 0
    fields: dict[str, Any] = {"phase": Phase.SHIFTING if step else Phase.STARTING, "step_index": step - 1}
    if step:
        fields |= {"step_started_at": T0, "current_percent": before}
    reached = advanced(record.model_copy(update=fields)) if step and record.plan[step - 1].bake_seconds else None
    record = reached or record.model_copy(update=fields)
    previous = (record.plan[step - 1].percent, record.fresh_percent) if step else (0, 0)
    observed = endpoint(previous[0] / 100, previous[1] / 100, (100 - previous[0] - previous[1]) / 100)

    action = decide(record, observed, NONE, T0 + timedelta(hours=1))

    assert isinstance(action, ShiftTraffic)
    assert action.weights() == {
        CANDIDATE.variant_name: weights[0],
        FRESH_NAME: weights[1],
        LIVE.variant_name: weights[2],
    }
    assert (action.from_percent, action.to_percent) == (before, record.plan[step].percent)


def test_a_step_is_reached_only_when_the_fresh_baseline_is_at_its_weight_too() -> None:
    requested = rollout(phase=Phase.SHIFTING, step_index=0, pending_since=T0)

    reached = decide(requested, endpoint(0.1, 0.1, 0.8), NONE, T0 + timedelta(seconds=30))
    off = decide(requested, endpoint(0.1, 0.0, 0.9), NONE, T0 + timedelta(seconds=90))

    assert isinstance(reached, RecordProgress) and reached.next.step_started_at is not None
    # Not what was asked for: changed outside the rollout, which aborts (candidate and fresh baseline to 0).
    assert isinstance(off, ShiftTraffic) and off.next.phase is Phase.ABORTING and off.to_percent == 0


def test_the_judge_compares_with_the_fresh_baseline_while_the_step_bakes() -> None:
    baking = rollout(phase=Phase.SHIFTING, step_index=0, step_started_at=T0, current_percent=10)

    action = decide(baking, endpoint(0.1, 0.1, 0.8), NONE, T0 + timedelta(seconds=60))

    assert baking.judged and baking.baseline_variant == baking.fresh_baseline
    assert isinstance(action, Wait) and "baking" in action.reason


def test_the_watch_window_gives_the_fresh_baseline_nothing_and_the_final_config_drops_it() -> None:
    watching = rollout(phase=Phase.WATCHING, step_index=1, current_percent=100, step_started_at=T0, watch_started_at=T0)

    waiting = decide(watching, endpoint(1.0, 0.0, 0.0), NONE, T0 + timedelta(seconds=60))
    retire = decide(watching, endpoint(1.0, 0.0, 0.0), NONE, T0 + timedelta(seconds=900))

    assert isinstance(waiting, Wait) and "watching" in waiting.reason
    assert isinstance(retire, UpdateEndpoint) and retire.create_config is not None
    assert [v.variant for v in retire.create_config.variants] == [CANDIDATE]


def test_an_abort_takes_candidate_and_fresh_baseline_to_0_in_one_shift_then_restores() -> None:
    baking = rollout(phase=Phase.SHIFTING, step_index=0, step_started_at=T0, current_percent=10)
    aborting = request_abort(baking, reason="alarm", now=T0 + timedelta(minutes=2))

    revert = decide(aborting, endpoint(0.1, 0.1, 0.8), NONE, T0 + timedelta(minutes=3))
    restore = decide(aborting, endpoint(0.0, 0.0, 1.0), NONE, T0 + timedelta(minutes=4))

    assert isinstance(revert, ShiftTraffic)
    assert revert.weights() == {CANDIDATE.variant_name: 0.0, LIVE.variant_name: 1.0, FRESH_NAME: 0.0}
    assert isinstance(restore, UpdateEndpoint) and restore.config_name == PREVIOUS


def test_the_incident_names_the_fresh_baselines_weights_before_and_after_the_flip() -> None:
    baking = rollout(phase=Phase.SHIFTING, step_index=0, step_started_at=T0, current_percent=10)
    aborting = request_abort(baking, reason="alarm", now=T0 + timedelta(minutes=2))
    cause = RollbackCause(trigger="alarm", alarm_name="a", reason="r", requested_at=T0, event_id="e")
    flipped = aborting.model_copy(update={"rollback": cause.flipped(T0 + timedelta(minutes=2), "controller")})

    changes, _ = flip_record(flipped, [], T0, "e", BUILT_IN)

    incident = changes[0].incident  # type: ignore[union-attr]
    assert incident.weights_before == {LIVE.variant_name: 0.8, CANDIDATE.variant_name: 0.1, FRESH_NAME: 0.1}
    assert incident.weights_after == {LIVE.variant_name: 1.0, CANDIDATE.variant_name: 0.0, FRESH_NAME: 0.0}


# --- a whole rollout over an in-memory endpoint --------------------------------------------------------


def run(record: Rollout, *, crash_after_each_change: bool = False) -> tuple[Rollout, list[dict[str, float]]]:
    """Tick a minute at a time until the rollout ends, the judge passing every judged step; every
    distinct InService weight map in order."""
    weights = {LIVE.variant_name: 1.0}
    fake = FakeEndpoint(status=EndpointStatus.IN_SERVICE, config=PREVIOUS, weights=weights, configs={PREVIOUS: weights})
    fake.delay = 1
    seen: list[dict[str, float]] = []
    crashed: set[int] = set()
    now = record.updated_at
    for _ in range(500):
        if record.judged and (record.step_analysis() is None or record.step_analysis().decision is None):  # type: ignore[union-attr]
            record = advanced(record)
        if fake.status is EndpointStatus.IN_SERVICE and (not seen or seen[-1] != fake.weights):
            seen.append(dict(fake.weights))
        action = decide(record, fake.observe(), NONE, now)
        if not isinstance(action, Wait):
            fake.apply(action)
            changed = isinstance(action, ShiftTraffic | UpdateEndpoint)
            if crash_after_each_change and changed and len(fake.calls) not in crashed:
                crashed.add(len(fake.calls))  # the change is made, its record write is lost
            else:
                record = Rollout.model_validate_json(action.next.model_dump_json())
        if record.phase.is_terminal:
            return record, seen
        fake.tick()
        now += timedelta(minutes=1)
    raise AssertionError(f"rollout did not end: {record.phase}")


@pytest.mark.parametrize("crash_after_each_change", [False, True])
def test_a_stepped_rollout_with_a_fresh_baseline_ends_on_the_candidate_alone(crash_after_each_change: bool) -> None:
    record, seen = run(rollout(strategy(STEPS)), crash_after_each_change=crash_after_each_change)

    assert record.phase is Phase.COMPLETED
    c, f, v1 = CANDIDATE.variant_name, FRESH_NAME, LIVE.variant_name
    assert seen == [
        {v1: 1.0},
        {v1: 1.0, c: 0.0, f: 0.0},
        {v1: 0.9, c: 0.05, f: 0.05},
        {v1: 0.8, c: 0.2, f: 0.0},
        {v1: 0.0, c: 0.5, f: 0.5},
        {v1: 0.0, c: 0.75, f: 0.25},
        {v1: 0.0, c: 1.0, f: 0.0},  # the watch window: the live variant is the standby, not the fresh one
        {c: 1.0},  # the final config: the fresh baseline is gone with the live variant
    ]


def test_a_rollout_without_a_fresh_baseline_is_stored_as_before() -> None:
    without = rollout(CANARY_10)

    assert "fresh_baseline" not in without.model_dump(mode="json")
    assert "fresh_baseline" in rollout().model_dump(mode="json")
    assert Rollout.model_validate_json(without.model_dump_json()) == without
