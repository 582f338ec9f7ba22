"""The candidate sized to its share, as the decision applies it (rollouts/candidate_sizing.py, issue 23 rule 3).

Single decisions first, then whole rollouts over an in-memory endpoint that keeps each variant's
current and desired counts, to show what a user sees: before any weights move, the candidate already
runs ``ceil(full fleet x share x 1.2)`` instances, and the full fleet at 100%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shepherd.rollouts import naming
from shepherd.rollouts.actions import (
    Action,
    Complete,
    RecordProgress,
    ResizeVariants,
    ShiftTraffic,
    UpdateEndpoint,
    Wait,
)
from shepherd.rollouts.decide import decide
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint, ObservedVariant
from shepherd.rollouts.record import CandidateSizing, LiveDeployment, Phase, Rollout, VariantSpec, new_rollout
from shepherd.rollouts.strategy import parse_strategy

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ENDPOINT = "fraud-endpoint"
RID = naming.rollout_id("0b7e8f2b-1c2d-4e5f-8a9b-0c1d2e3f4a5b", T0)
SHIFT = naming.endpoint_config_name(ENDPOINT, RID, "shift")
PREVIOUS = "fraud-endpoint-previous"
LIVE = VariantSpec.for_version("fraud", 1, instance_type="ml.m5.large", initial_instance_count=10)
CANDIDATE = VariantSpec.for_version("fraud", 2, instance_type="ml.m5.large", initial_instance_count=10)
NONE: frozenset[str] = frozenset()
STEPS = {
    "type": "steps",
    "steps": [{"percent": 10, "bake_seconds": 600}, {"percent": 50, "bake_seconds": 600}, {"percent": 100}],
}


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def record(strategy: dict[str, Any] | None = None, sizing: CandidateSizing | None = None, **changes: Any) -> Rollout:
    base = new_rollout(
        rollout_id=RID,
        endpoint_name=ENDPOINT,
        model_name="fraud",
        version=2,
        strategy=parse_strategy({"analysis": {"judge": {"enabled": False}}, **(strategy or STEPS)}),
        candidate=CANDIDATE,
        live=LiveDeployment(model_name="fraud", version=1, variant=LIVE, config_name=PREVIOUS),
        now=T0,
    )
    sized = base.model_copy(update={"sizing": sizing or CandidateSizing()})
    return Rollout.model_validate({**sized.model_dump(), **changes})


def written(action: Action) -> Rollout:
    assert not isinstance(action, Wait)
    return action.next


def previous_config(live: int) -> ObservedEndpoint:
    return ObservedEndpoint(EndpointStatus.IN_SERVICE, PREVIOUS, (ObservedVariant(LIVE.variant_name, 1.0, live, live),))


# --- single decisions ---------------------------------------------------------------------------------


def test_the_shift_config_starts_the_candidate_at_its_first_steps_share_of_the_live_fleet() -> None:
    action = decide(record(), previous_config(10), NONE, T0 + s(1))

    assert isinstance(action, UpdateEndpoint) and action.create_config is not None
    counts = {w.variant.variant_name: w.variant.initial_instance_count for w in action.create_config.variants}
    assert counts == {LIVE.variant_name: 10, CANDIDATE.variant_name: 2}  # ceil(10 x 10% x 1.2)
    assert written(action).sizing == CandidateSizing(live_count_at_start=10)
    assert written(action).candidate.initial_instance_count == 2


def test_an_explicit_count_is_not_sized() -> None:
    explicit = record().model_copy(update={"sizing": None})

    action = decide(explicit, previous_config(10), NONE, T0 + s(1))

    assert isinstance(action, UpdateEndpoint) and action.create_config is not None
    counts = {w.variant.variant_name: w.variant.initial_instance_count for w in action.create_config.variants}
    assert counts[CANDIDATE.variant_name] == 10


def baked_at(percent: int, candidate: int, live: int = 10, status: EndpointStatus = EndpointStatus.IN_SERVICE):
    return ObservedEndpoint(
        status,
        SHIFT,
        (
            ObservedVariant(LIVE.variant_name, (100 - percent) / 100, live, live),
            ObservedVariant(CANDIDATE.variant_name, percent / 100, candidate, candidate),
        ),
    )


def at_step(index: int, candidate: int, **more: Any) -> Rollout:
    percent = (10, 50, 100)[index]
    sized = CandidateSizing(live_count_at_start=10)
    spec = CANDIDATE.model_copy(update={"initial_instance_count": candidate})
    fields = {"phase": Phase.SHIFTING, "step_index": index, "current_percent": percent, "step_started_at": T0}
    return record(sizing=sized, candidate=spec, **{**fields, **more})


def test_the_candidate_grows_before_the_next_steps_weights_move() -> None:
    action = decide(at_step(0, 2), baked_at(10, 2), NONE, T0 + s(601))

    assert isinstance(action, ResizeVariants)
    assert action.requested() == {CANDIDATE.variant_name: 6}  # ceil(10 x 50% x 1.2)
    assert written(action).candidate.initial_instance_count == 6
    assert written(action).current_percent == 10 and written(action).step_index == 0


def test_a_resize_that_landed_keeps_the_bake_and_then_the_weights_move() -> None:
    resized = decide(at_step(0, 2), baked_at(10, 2), NONE, T0 + s(601))

    landed = decide(written(resized), baked_at(10, 6), NONE, T0 + s(900))

    assert isinstance(landed, RecordProgress)
    assert written(landed).step_started_at == T0 and written(landed).pending_since is None
    shifted = decide(written(landed), baked_at(10, 6), NONE, T0 + s(901))
    assert isinstance(shifted, ShiftTraffic) and shifted.to_percent == 50


def test_at_100_percent_the_candidate_has_the_live_fleets_count_before_any_weight_moves() -> None:
    action = decide(at_step(1, 6), baked_at(50, 6), NONE, T0 + s(601))

    assert isinstance(action, ResizeVariants) and action.requested() == {CANDIDATE.variant_name: 10}


def test_a_live_fleet_scaled_in_as_its_share_fell_does_not_shrink_the_full_fleet() -> None:
    # Autoscaling took the live variant from 10 to 5 at 50%: the candidate is still sized for 10.
    action = decide(at_step(1, 6), baked_at(50, 6, live=5), NONE, T0 + s(601))

    assert isinstance(action, ResizeVariants) and action.requested() == {CANDIDATE.variant_name: 10}


def test_the_candidate_follows_a_live_fleet_that_grows_during_a_bake() -> None:
    action = decide(at_step(0, 2), baked_at(10, 2, live=20), NONE, T0 + s(60))

    assert isinstance(action, ResizeVariants) and action.requested() == {CANDIDATE.variant_name: 3}
    assert written(action).step_started_at == T0  # the bake keeps its clock


def test_a_resize_that_did_not_take_effect_fails_the_rollout() -> None:
    resized = written(decide(at_step(0, 2), baked_at(10, 2), NONE, T0 + s(601)))

    action = decide(resized, baked_at(10, 2), NONE, T0 + s(700))  # InService, still 2 after the settle time

    assert isinstance(action, ShiftTraffic) and action.to_percent == 0
    reason = written(action).failure_reason or ""
    assert f"did not take effect: {CANDIDATE.variant_name} runs 2 instance(s) (desired 2) of the 6 asked for" in reason


def test_no_resize_while_held_by_an_alarm() -> None:
    action = decide(at_step(0, 2), baked_at(10, 2), frozenset({"fraud-5xx"}), T0 + s(601))

    assert isinstance(action, Wait)


def test_variants_without_reported_counts_are_not_resized() -> None:
    serverless = ObservedEndpoint(
        EndpointStatus.IN_SERVICE,
        SHIFT,
        (ObservedVariant(LIVE.variant_name, 0.9), ObservedVariant(CANDIDATE.variant_name, 0.1)),
    )

    action = decide(at_step(0, 2), serverless, NONE, T0 + s(601))

    assert isinstance(action, ShiftTraffic) and action.to_percent == 50


# --- whole rollouts over an endpoint that keeps counts --------------------------------------------------


@dataclass
class CountingEndpoint:
    """An endpoint whose changes land at once; records each variant's count when each weight moved."""

    live: int
    config: str = PREVIOUS
    weights: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    shifts: list[tuple[int, dict[str, int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.weights = {LIVE.variant_name: 1.0}
        self.counts = {LIVE.variant_name: self.live}

    def observed(self) -> ObservedEndpoint:
        variants = tuple(
            ObservedVariant(name, weight, self.counts[name], self.counts[name]) for name, weight in self.weights.items()
        )
        return ObservedEndpoint(EndpointStatus.IN_SERVICE, self.config, variants)

    def apply(self, action: Action) -> None:
        if isinstance(action, UpdateEndpoint):
            assert action.create_config is not None
            self.config = action.config_name
            self.weights = {w.variant.variant_name: w.initial_weight for w in action.create_config.variants}
            self.counts = {
                w.variant.variant_name: w.variant.initial_instance_count for w in action.create_config.variants
            }
        elif isinstance(action, ResizeVariants):
            self.counts.update(action.requested())
        elif isinstance(action, ShiftTraffic):
            self.shifts.append((action.to_percent, dict(self.counts)))  # the counts running as the weights move
            self.weights.update(action.weights())


def run(strategy: dict[str, Any], live: int) -> tuple[CountingEndpoint, Rollout]:
    endpoint, rollout, now = CountingEndpoint(live), record(strategy), T0
    for _ in range(200):
        now += s(61)
        action = decide(rollout, endpoint.observed(), NONE, now)
        if isinstance(action, Wait):
            continue
        endpoint.apply(action)
        rollout = action.next
        if isinstance(action, Complete) or rollout.phase.is_terminal:
            break
    return endpoint, rollout


def test_linear_rollout_the_candidate_runs_its_share_before_each_step_and_the_full_fleet_at_100() -> None:
    endpoint, rollout = run({"type": "linear", "step_percent": 25, "interval_seconds": 120}, live=8)

    assert rollout.phase is Phase.WATCHING or rollout.phase is Phase.COMPLETED
    for percent, counts in endpoint.shifts:
        expected = 8 if percent == 100 else math.ceil(8 * percent / 100 * 1.2)
        assert counts[CANDIDATE.variant_name] == expected, (percent, counts)
        assert counts[LIVE.variant_name] == 8  # the live fleet is never shrunk
    assert [percent for percent, _ in endpoint.shifts] == [25, 50, 75, 100]


def test_a_one_instance_fleet_gets_a_one_instance_candidate_as_before() -> None:
    endpoint, _ = run({"type": "canary", "canary_percent": 10, "bake_seconds": 120}, live=1)

    assert all(counts[CANDIDATE.variant_name] == 1 for _, counts in endpoint.shifts)


# --- found in review ---------------------------------------------------------------------------------

FINAL = naming.endpoint_config_name(ENDPOINT, RID, "final")


def test_a_candidate_autoscaling_scaled_in_after_the_retire_still_completes() -> None:
    """The retire handed the scaling to the candidate before its update: autoscaling may scale it in
    before the next pass looks. Its count is autoscaling's now, not the record's to check."""
    base = record()
    at = T0 + s(3000)
    retiring = base.model_copy(
        update={
            "phase": Phase.RETIRING,
            "step_index": len(base.plan) - 1,
            "current_percent": 100,
            "phase_started_at": at,
            "pending_since": at,
            "updated_at": at,
            "candidate": CANDIDATE.model_copy(update={"initial_instance_count": 10}),
            "watch_started_at": T0 + s(2000),
            "step_started_at": T0 + s(2000),
        }
    )
    scaled_in = ObservedEndpoint(
        EndpointStatus.IN_SERVICE, FINAL, (ObservedVariant(CANDIDATE.variant_name, 1.0, 8, 8),)
    )

    action = decide(retiring, scaled_in, NONE, at + s(900))

    assert isinstance(action, Complete)


def test_a_start_whose_record_write_was_lost_is_caught_up_with_the_instances_it_runs() -> None:
    """The start's update landed (the candidate at 2), its record write did not: the record still
    asks for the promotion's 10. The catch-up records what runs, so the first step does not wait for
    instances nobody asked SageMaker for."""
    unsized_start = record()

    def on_shift(candidate_weight: float) -> ObservedEndpoint:
        return ObservedEndpoint(
            EndpointStatus.IN_SERVICE,
            SHIFT,
            (
                ObservedVariant(LIVE.variant_name, 1 - candidate_weight, 10, 10),
                ObservedVariant(CANDIDATE.variant_name, candidate_weight, 2, 2),
            ),
        )

    rollout, now = unsized_start, T0 + s(900)
    for _ in range(6):
        action = decide(rollout, on_shift(rollout.target_percent / 100), NONE, now)
        if isinstance(action, Wait):
            break
        rollout, now = action.next, now + s(60)
        assert rollout.phase is not Phase.ABORTING, rollout.failure_reason
    assert rollout.sizing is not None and rollout.sizing.live_count_at_start == 10
    assert rollout.current_percent == 10


def test_no_resize_while_a_gating_alarm_fires_during_a_bake() -> None:
    """A resize keeps the endpoint Updating for minutes, when a rollback's flip is refused: never
    while an alarm says the candidate may be bad."""
    baking = at_step(0, 2)

    action = decide(baking, baked_at(10, 2, live=20), frozenset({"candidate-5xx"}), T0 + s(60))

    assert isinstance(action, Wait)


def test_the_judge_keeps_judging_while_a_resize_provisions() -> None:
    judged_step = record(
        {**STEPS, "analysis": {"judge": {"enabled": True}}},
    )
    resizing = judged_step.model_copy(
        update={
            "phase": Phase.SHIFTING,
            "step_index": 0,
            "current_percent": 10,
            "step_started_at": T0,
            "pending_since": T0 + s(60),
        }
    )

    assert resizing.judged


def test_a_restore_gives_the_old_variant_back_at_least_the_fleet_it_had_before_the_rollout() -> None:
    """Its policy scaled the live variant in from 10 to 5 as its share fell to 50%: the rollback takes
    all the traffic back onto it, so the restore writes at least the 10 it served with at the start."""
    from shepherd.rollouts.record import request_abort

    aborting = request_abort(at_step(1, 6), reason="alarm", now=T0 + s(60))
    flipped_back = baked_at(0, 6, live=5)

    action = decide(aborting, flipped_back, NONE, T0 + s(120))

    # The previous config holds the 10 (without the floor: the rollout's restore config at 5).
    assert isinstance(action, UpdateEndpoint) and action.purpose == "restore"
    assert (action.config_name, action.create_config) == (PREVIOUS, None)


def test_a_fresh_baseline_waits_on_one_instance_until_a_judged_step_gives_it_a_share() -> None:
    """A fresh baseline beside a sized candidate: one instance while it has no share (here the first
    step is not baked, so not judged), then sized for its share before the judged step's weights move."""
    judged_later = {
        "type": "steps",
        "steps": [{"percent": 5}, {"percent": 20, "bake_seconds": 600}, {"percent": 100}],
        "analysis": {"judge": {"enabled": True, "baseline": "fresh"}},
    }
    starting = record(judged_later)
    assert starting.fresh_baseline is not None

    action = decide(starting, previous_config(10), NONE, T0 + s(1))

    assert isinstance(action, UpdateEndpoint) and action.create_config is not None
    counts = {w.variant.variant_name: w.variant.initial_instance_count for w in action.create_config.variants}
    assert counts[starting.fresh_baseline.variant_name] == 1  # not the full fleet of 10
    assert counts[CANDIDATE.variant_name] == 1  # ceil(10 x 5% x 1.2)


def test_a_resize_asked_for_but_not_provisioned_is_asked_again_before_the_weights_move() -> None:
    """A pass asked for 6 and died; SageMaker kept the desired 6 but runs 2 (it could not provision).
    The next step must not move the weights onto 2 instances: the resize is asked for again."""
    not_provisioned = ObservedEndpoint(
        EndpointStatus.IN_SERVICE,
        SHIFT,
        (ObservedVariant(LIVE.variant_name, 0.9, 10, 10), ObservedVariant(CANDIDATE.variant_name, 0.1, 2, 6)),
    )

    action = decide(at_step(0, 2), not_provisioned, NONE, T0 + s(601))

    assert isinstance(action, ResizeVariants) and action.requested() == {CANDIDATE.variant_name: 6}
