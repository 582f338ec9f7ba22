"""Strategies: plans, validation with precise reasons, and properties over random inputs."""

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shepherd.rollouts.strategy import (
    MAX_BAKE_SECONDS,
    AllAtOnceStrategy,
    Analysis,
    CanaryStrategy,
    InvalidStrategy,
    LinearStrategy,
    StepsStrategy,
    TrafficStep,
    parse_strategy,
)


def percents_and_bakes(raw: object) -> list[tuple[int, int]]:
    return [(step.percent, step.bake_seconds) for step in parse_strategy(raw).plan()]


def reason_for(raw: object) -> str:
    with pytest.raises(InvalidStrategy) as caught:
        parse_strategy(raw)
    return caught.value.reason


# --- plans ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "plan"),
    [
        ({"type": "canary", "canary_percent": 10, "bake_seconds": 600}, [(10, 600), (100, 0)]),
        (
            {"type": "linear", "step_percent": 20, "interval_seconds": 300},
            [(20, 300), (40, 300), (60, 300), (80, 300), (100, 0)],
        ),
        # Does not divide 100: a final, shorter step to 100, never a silent stop at 90.
        (
            {"type": "linear", "step_percent": 30, "interval_seconds": 60},
            [(30, 60), (60, 60), (90, 60), (100, 0)],
        ),
        ({"type": "linear", "step_percent": 100, "interval_seconds": 60}, [(100, 0)]),
        ({"type": "linear", "step_percent": 99, "interval_seconds": 0}, [(99, 0), (100, 0)]),
        (
            {
                "type": "steps",
                "steps": [{"percent": 5, "bake_seconds": 300}, {"percent": 50, "bake_seconds": 600}, {"percent": 100}],
            },
            [(5, 300), (50, 600), (100, 0)],
        ),
        ({"type": "steps", "steps": [{"percent": 100}]}, [(100, 0)]),
        ({"type": "all_at_once"}, [(100, 0)]),
        # Long bakes are a feature: a week is allowed.
        ({"type": "canary", "canary_percent": 1, "bake_seconds": MAX_BAKE_SECONDS}, [(1, MAX_BAKE_SECONDS), (100, 0)]),
    ],
)
def test_plans(raw: dict[str, Any], plan: list[tuple[int, int]]) -> None:
    assert percents_and_bakes(raw) == plan


def test_linear_one_percent_has_a_hundred_steps() -> None:
    plan = parse_strategy({"type": "linear", "step_percent": 1, "interval_seconds": 0}).plan()

    assert [step.percent for step in plan] == list(range(1, 101))


def test_defaults() -> None:
    strategy = parse_strategy({"type": "all_at_once"})

    assert strategy.post_deploy_watch_seconds == 900
    assert strategy.analysis == Analysis(
        max_error_rate_percent=5.0, max_latency_p99_ms=300.0, period_seconds=60, evaluation_periods=3
    )


def test_overrides() -> None:
    strategy = parse_strategy(
        {
            "type": "canary",
            "canary_percent": 10,
            "bake_seconds": 86_400,
            "post_deploy_watch_seconds": 0,
            "analysis": {"max_error_rate_percent": 1, "max_latency_p99_ms": 120.5, "period_seconds": 300},
        }
    )

    assert isinstance(strategy, CanaryStrategy)
    assert strategy.post_deploy_watch_seconds == 0
    assert strategy.analysis.max_error_rate_percent == 1.0
    assert strategy.analysis.period_seconds == 300
    assert strategy.analysis.evaluation_periods == 3


def test_parse_returns_the_concrete_frozen_model() -> None:
    strategy = parse_strategy({"type": "linear", "step_percent": 25, "interval_seconds": 10})

    assert isinstance(strategy, LinearStrategy)
    with pytest.raises(ValueError):
        strategy.step_percent = 50


def test_an_already_parsed_strategy_parses_to_itself() -> None:
    strategy = AllAtOnceStrategy(type="all_at_once")

    assert parse_strategy(strategy) == strategy


# --- precise reasons --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            {"type": "steps", "steps": [{"percent": 5}, {"percent": 50}, {"percent": 50}, {"percent": 100}]},
            "steps[2].percent: must be greater than the previous step's percent (50 <= 50)",
        ),
        (
            {"type": "steps", "steps": [{"percent": 60}, {"percent": 40}, {"percent": 100}]},
            "steps[1].percent: must be greater than the previous step's percent (40 <= 60)",
        ),
        (
            {"type": "steps", "steps": [{"percent": 10}, {"percent": 90, "bake_seconds": 5}]},
            "steps[1].percent: the last step must be 100 (got 90)",
        ),
        (
            {"type": "steps", "steps": [{"percent": 10}, {"percent": 100, "bake_seconds": 5}]},
            "steps[1].bake_seconds: the final 100% step has no bake; the post_deploy_watch_seconds window "
            "follows it (got 5)",
        ),
        (
            {"type": "steps", "steps": [{"percent": 0}, {"percent": 100}]},
            "steps[0].percent: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            {"type": "steps", "steps": [{"percent": 50, "bake_seconds": -1}, {"percent": 100}]},
            "steps[0].bake_seconds: Input should be greater than or equal to 0 (got -1)",
        ),
        (
            {"type": "steps", "steps": [{"percent": 50, "bake": 60}, {"percent": 100}]},
            "steps[0].bake: Extra inputs are not permitted",
        ),
        ({"type": "steps", "steps": []}, "steps: Tuple should have at least 1 item after validation, not 0"),
        ({"type": "steps"}, "steps: Field required"),
        (
            {"type": "canary", "canary_percent": 100, "bake_seconds": 60},
            "canary_percent: Input should be less than or equal to 99 (got 100)",
        ),
        (
            {"type": "canary", "canary_percent": 10, "bake_seconds": 604_801},
            "bake_seconds: Input should be less than or equal to 604800 (got 604801)",
        ),
        (
            {"type": "linear", "step_percent": 101, "interval_seconds": 60},
            "step_percent: Input should be less than or equal to 100 (got 101)",
        ),
        (
            {"type": "linear", "step_percent": 20, "interval_seconds": 700_000},
            "interval_seconds: Input should be less than or equal to 604800 (got 700000)",
        ),
        (
            {"type": "canary", "canary_percent": True, "bake_seconds": 60},
            "canary_percent: Input should be a valid integer (got true)",
        ),
        (
            {"type": "canary", "canary_percent": "10", "bake_seconds": 60},
            "canary_percent: Input should be a valid integer (got '10')",
        ),
        (
            {"type": "all_at_once", "post_deploy_watch_seconds": 604_801},
            "post_deploy_watch_seconds: Input should be less than or equal to 604800 (got 604801)",
        ),
        ({"type": "all_at_once", "colour": "blue"}, "colour: Extra inputs are not permitted"),
        (
            {"type": "shadow"},
            "type: must be one of 'canary', 'linear', 'steps', 'all_at_once', 'blue_green' (got 'shadow')",
        ),
        (
            {"canary_percent": 10},
            "type: Field required (one of 'canary', 'linear', 'steps', 'all_at_once', 'blue_green')",
        ),
        ("canary", "strategy: Input should be a valid dictionary or object to extract fields from (got 'canary')"),
        (None, "strategy: Input should be a valid dictionary or object to extract fields from (got null)"),
        (
            {"type": "all_at_once", "analysis": {"max_error_rate_percent": 0}},
            "analysis.max_error_rate_percent: Input should be greater than 0 (got 0)",
        ),
        (
            {"type": "all_at_once", "analysis": {"max_latency_p99_ms": 60_001}},
            "analysis.max_latency_p99_ms: Input should be less than or equal to 60000 (got 60001)",
        ),
        (
            {"type": "all_at_once", "analysis": {"period_seconds": 90}},
            "analysis.period_seconds: Input should be a multiple of 60 (got 90)",
        ),
        (
            {"type": "all_at_once", "analysis": {"evaluation_periods": 0}},
            "analysis.evaluation_periods: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            {"type": "all_at_once", "analysis": {"period_seconds": 3600, "evaluation_periods": 48}},
            "analysis: period_seconds * evaluation_periods must be at most 86400 (one day, CloudWatch's limit), "
            "got 3600 * 48 = 172800",
        ),
    ],
)
def test_invalid_strategies_say_exactly_why(raw: object, reason: str) -> None:
    assert reason_for(raw) == reason


def test_every_problem_is_reported_not_just_the_first() -> None:
    reason = reason_for({"type": "canary", "canary_percent": 0, "bake_seconds": -5, "extra": 1})

    assert reason.split("; ") == [
        "canary_percent: Input should be greater than or equal to 1 (got 0)",
        "bake_seconds: Input should be greater than or equal to 0 (got -5)",
        "extra: Extra inputs are not permitted",
    ]


def test_huge_and_long_inputs_are_summarised_in_the_reason() -> None:
    reason = reason_for({"type": "canary", "canary_percent": 10**5000, "bake_seconds": "x" * 500})

    assert "(got a very large integer)" in reason
    assert len(reason) < 300


def test_invalid_strategy_is_not_a_value_error() -> None:
    # A caller's `except ValueError` (pydantic validators) must not swallow a rejection reason.
    assert not issubclass(InvalidStrategy, ValueError)
    assert InvalidStrategy("why").reason == "why"


# --- properties -------------------------------------------------------------------------------

seconds = st.integers(min_value=0, max_value=MAX_BAKE_SECONDS)
analysis_raw = st.fixed_dictionaries(
    {},
    optional={
        "max_error_rate_percent": st.floats(min_value=0.01, max_value=100),
        "max_latency_p99_ms": st.integers(min_value=1, max_value=60_000),
        "evaluation_periods": st.integers(min_value=1, max_value=24),
        "period_seconds": st.sampled_from([60, 120, 300, 3600]),
    },
)
common_raw = st.fixed_dictionaries({}, optional={"post_deploy_watch_seconds": seconds, "analysis": analysis_raw})


@st.composite
def steps_raw(draw: st.DrawFn) -> list[dict[str, int]]:
    below = draw(st.lists(st.integers(min_value=1, max_value=99), unique=True, max_size=10))
    steps: list[dict[str, int]] = [{"percent": p, "bake_seconds": draw(seconds)} for p in sorted(below)]
    return [*steps, {"percent": 100}]


valid_raw = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("canary"), "canary_percent": st.integers(min_value=1, max_value=99), "bake_seconds": seconds}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("linear"),
            "step_percent": st.integers(min_value=1, max_value=100),
            "interval_seconds": seconds,
        }
    ),
    st.fixed_dictionaries({"type": st.just("steps"), "steps": steps_raw()}),
    st.fixed_dictionaries({"type": st.just("all_at_once")}),
).flatmap(lambda raw: common_raw.map(lambda common: {**raw, **common}))


@given(valid_raw)
def test_every_valid_plan_is_strictly_increasing_to_100(raw: dict[str, Any]) -> None:
    plan = parse_strategy(raw).plan()

    percents = [step.percent for step in plan]
    assert all(1 <= p <= 100 for p in percents)
    assert all(a < b for a, b in itertools.pairwise(percents))
    assert plan[-1] == TrafficStep(percent=100, bake_seconds=0)
    assert all(0 <= step.bake_seconds <= MAX_BAKE_SECONDS for step in plan)


@given(st.integers(min_value=1, max_value=100), seconds)
def test_linear_plans_are_the_multiples_then_100(step: int, interval: int) -> None:
    plan = LinearStrategy(type="linear", step_percent=step, interval_seconds=interval).plan()

    assert [s.percent for s in plan[:-1]] == list(range(step, 100, step))
    assert all(s.bake_seconds == interval for s in plan[:-1])


@given(valid_raw)
def test_a_parsed_strategy_survives_a_json_round_trip(raw: dict[str, Any]) -> None:
    strategy = parse_strategy(raw)

    assert parse_strategy(strategy.model_dump(mode="json")) == strategy


def _set(raw: dict[str, Any], key: str, value: object) -> dict[str, Any]:
    return {**raw, key: value}


bad_percent = st.one_of(st.integers(max_value=0), st.integers(min_value=101), st.booleans(), st.floats(), st.text())
bad_seconds = st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_BAKE_SECONDS + 1), st.text(), st.none())

invalid_raw = st.one_of(
    valid_raw.flatmap(lambda raw: bad_seconds.map(lambda v: _set(raw, "post_deploy_watch_seconds", v))),
    valid_raw.flatmap(lambda raw: st.text(min_size=1).filter(lambda k: k not in raw).map(lambda k: _set(raw, k, 1))),
    valid_raw.map(lambda raw: {k: v for k, v in raw.items() if k != "type"}),
    valid_raw.flatmap(
        lambda raw: (
            st.text()
            .filter(lambda t: t not in ("canary", "linear", "steps", "all_at_once"))
            .map(lambda t: _set(raw, "type", t))
        )
    ),
    st.fixed_dictionaries(
        {"type": st.just("canary"), "canary_percent": st.one_of(bad_percent, st.just(100)), "bake_seconds": seconds}
    ),
    st.fixed_dictionaries({"type": st.just("canary"), "canary_percent": st.just(10), "bake_seconds": bad_seconds}),
    st.fixed_dictionaries({"type": st.just("linear"), "step_percent": bad_percent, "interval_seconds": seconds}),
    # Steps that are not strictly increasing, or do not end at exactly 100.
    st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=8)
    .filter(lambda ps: ps[-1] != 100 or any(a >= b for a, b in itertools.pairwise(ps)))
    .map(lambda ps: {"type": "steps", "steps": [{"percent": p} for p in ps]}),
    st.fixed_dictionaries(
        {
            "type": st.just("all_at_once"),
            "analysis": st.fixed_dictionaries({"max_error_rate_percent": st.floats(max_value=0)}),
        }
    ),
)


@given(invalid_raw)
def test_invalid_inputs_raise_invalid_strategy_with_a_reason(raw: object) -> None:
    reason = reason_for(raw)

    assert reason and ": " in reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
strategy_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["canary", "linear", "steps", "all_at_once", "other"])},
    optional={
        "canary_percent": json_values,
        "bake_seconds": json_values,
        "step_percent": json_values,
        "interval_seconds": json_values,
        "steps": st.lists(st.dictionaries(st.sampled_from(["percent", "bake_seconds", "x"]), json_values), max_size=4),
        "analysis": st.dictionaries(st.text(max_size=25), json_values, max_size=4),
        "post_deploy_watch_seconds": json_values,
    },
)


@given(st.one_of(json_values, strategy_like, st.dictionaries(st.integers() | st.text(), json_values, max_size=3)))
def test_anything_either_parses_or_raises_invalid_strategy(raw: object) -> None:
    # Never another exception type, whatever arrives in a command.
    try:
        strategy = parse_strategy(raw)
    except InvalidStrategy as rejected:
        assert rejected.reason
    else:
        assert strategy.plan()[-1].percent == 100


def test_steps_strategy_model_can_be_built_directly() -> None:
    strategy = StepsStrategy(type="steps", steps=(TrafficStep(percent=50, bake_seconds=10), TrafficStep(percent=100)))

    assert strategy.plan()[0].bake_seconds == 10


def test_blue_green_is_one_step_to_100_behind_a_manual_gate() -> None:
    strategy = parse_strategy({"type": "blue_green", "post_deploy_watch_seconds": 600})

    assert strategy.plan() == (TrafficStep(percent=100, bake_seconds=0, gate="manual"),)
    assert strategy.post_deploy_watch_seconds == 600


def test_a_step_gate_is_manual_or_absent_and_stored_only_when_set() -> None:
    raw = {"type": "steps", "steps": [{"percent": 10, "bake_seconds": 60}, {"percent": 100, "gate": "manual"}]}

    plan = parse_strategy(raw).plan()

    assert [step.gate for step in plan] == [None, "manual"]
    assert plan[0].model_dump(mode="json") == {"percent": 10, "bake_seconds": 60}  # as stored before gates
    assert "steps[0].gate: Input should be 'manual' (got 'auto')" in reason_for(
        {**raw, "steps": [{"percent": 100, "gate": "auto"}]}
    )
