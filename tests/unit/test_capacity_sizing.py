"""Capacity during a rollout: the candidate sized to its share, the live fleet never shrunk by an
update, and the old variant's scaling carried to the new live variant (issue 23, rules 2-4)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shepherd.capacity.scaling import (
    ALL_SUSPENDED,
    INVOCATIONS_PER_INSTANCE,
    TARGET_TRACKING,
    CustomizedMetric,
    ScalableTarget,
    ScalingPolicy,
    TargetTracking,
    VariantCapacity,
    VariantScaling,
)
from shepherd.capacity.sizing import (
    CapacityPlan,
    ScalingNotCarried,
    ScalingOverrides,
    candidate_count,
    carried_scaling,
    live_count_to_keep,
)

live_counts = st.integers(0, 500)
percents = st.integers(1, 100)
headrooms = st.floats(1.0, 3.0)


# --- the candidate sized to its share ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "percent", "expected"),
    [
        (29, 10, 4),  # 29 x 0.1 x 1.2 = 3.48
        (10, 10, 2),  # 1.2 (not 1.2000000000000002 -> 2 by accident: it is 2 either way)
        (10, 50, 6),  # exactly 6.0: no extra instance from float rounding
        (2, 10, 1),  # at least 1
        (2, 90, 2),  # 2.16 would be 3: capped at the live fleet
        (29, 100, 29),  # at 100% the live count, no headroom
        (0, 10, 1),  # a live variant reported with no instances: still one candidate instance
    ],
)
def test_the_candidate_gets_its_share_of_the_live_fleet_with_headroom(live, percent, expected):
    assert candidate_count(live, percent) == expected


@given(live=live_counts, percent=percents, headroom=headrooms)
def test_the_candidate_never_has_zero_instances(live, percent, headroom):
    assert candidate_count(live, percent, headroom) >= 1


@given(live=live_counts, low=percents, high=percents, headroom=headrooms)
def test_a_larger_share_never_gets_fewer_instances(live, low, high, headroom):
    low, high = sorted((low, high))
    assert candidate_count(live, low, headroom) <= candidate_count(live, high, headroom)


@given(live=st.integers(1, 500), headroom=headrooms)
def test_at_100_percent_the_candidate_has_the_live_count(live, headroom):
    assert candidate_count(live, 100, headroom) == live


@given(live=live_counts, percent=percents, headroom=headrooms)
def test_the_headroom_is_given_unless_the_live_fleet_caps_it(live, percent, headroom):
    count = candidate_count(live, percent, headroom)
    if count < max(1, live):
        assert count >= live * percent / 100 * headroom - 1e-6
        assert count - 1 < max(1.0, live * percent / 100 * headroom) + 1e-6  # and not more than needed


@given(live=live_counts, percent=percents, headroom=headrooms, explicit=st.integers(1, 1000))
def test_an_explicit_count_in_the_promotion_wins(live, percent, headroom, explicit):
    assert candidate_count(live, percent, headroom, explicit=explicit) == explicit


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"live_count": 4, "percent": 0}, "share"),
        ({"live_count": 4, "percent": 101}, "share"),
        ({"live_count": 4, "percent": 10, "headroom": 0.9}, "headroom"),
        ({"live_count": -1, "percent": 10}, "negative"),
        ({"live_count": 4, "percent": 10, "explicit": 0}, "explicit"),
    ],
)
def test_a_nonsense_sizing_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        candidate_count(**arguments)


# --- the live fleet kept -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "desired", "configured", "expected"),
    [
        (29, 29, 2, 29),  # autoscaled from the configured 2 to 29: keep 29, never write 2
        (12, 15, 2, 15),  # a scale-out in flight: keep what autoscaling asked for
        (15, 12, 2, 15),  # a scale-in in flight: its instances still serve
        (None, None, 3, 3),  # nothing observed (a serverless or unreported variant): the configured count
        (None, 7, 3, 7),
    ],
)
def test_an_update_keeps_the_live_count_observed_just_before(current, desired, configured, expected):
    assert live_count_to_keep(current, desired, configured) == expected


@given(current=st.integers(1, 100), desired=st.integers(1, 100), configured=st.integers(1, 100))
def test_the_live_fleet_is_never_written_below_what_was_observed(current, desired, configured):
    assert live_count_to_keep(current, desired, configured) >= max(current, desired)


def test_a_live_variant_with_no_instance_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        live_count_to_keep(None, None, 0)


# --- the plan of a strategy ----------------------------------------------------------------------------


def test_each_step_is_sized_from_the_live_count_observed_before_it():
    plan = CapacityPlan((10, 50, 100))

    assert plan.preview(20) == (3, 12, 20)
    assert [plan.at_step(0, 20), plan.at_step(1, 30), plan.at_step(2, 25)] == [3, 18, 25]


def test_during_a_bake_the_candidate_grows_with_the_live_fleet_and_never_shrinks():
    plan = CapacityPlan((10, 100))

    assert plan.grown_during_step(0, live_count=29, candidate_now=3) == 4
    assert plan.grown_during_step(0, live_count=20, candidate_now=4) is None
    assert plan.grown_during_step(0, live_count=29, candidate_now=4) is None


def test_an_explicit_count_holds_at_every_step():
    assert CapacityPlan((10, 50, 100), explicit=3).preview(40) == (3, 3, 3)


@pytest.mark.parametrize("percents", [(), (50, 10), (10, 10, 100), (0, 100), (10, 120)])
def test_a_plan_with_steps_that_do_not_grow_within_0_to_100_is_refused(percents):
    with pytest.raises(ValueError):
        CapacityPlan(percents)


@given(live=live_counts, steps=st.lists(percents, min_size=1, max_size=6, unique=True), headroom=headrooms)
def test_a_plan_grows_with_each_step(live, steps, headroom):
    counts = CapacityPlan(tuple(sorted(steps)), headroom).preview(live)
    assert list(counts) == sorted(counts)
    if max(steps) == 100:
        assert counts[-1] == max(1, live)


# --- scaling carried to the new live variant -------------------------------------------------------------

TRACKING = TargetTracking(
    target_value=4200.0,
    predefined_metric=INVOCATIONS_PER_INSTANCE,
    scale_out_cooldown=60,
    scale_in_cooldown=600,
)


INVOCATIONS_POLICY = ScalingPolicy("invocations", TARGET_TRACKING, TRACKING)


def old_scaling(policies=(INVOCATIONS_POLICY,), suspended=None):
    target = ScalableTarget("churn", "v7", 2, 40, **({"suspended": suspended} if suspended else {}))
    return VariantScaling("v7", VariantCapacity(current=29, desired=29), target, policies)


def test_the_new_variant_gets_the_old_limits_and_policies_for_its_own_resource_id():
    carried = carried_scaling(old_scaling(), "v8")

    assert carried.variant_name == "v8"
    assert carried.target == ScalableTarget("churn", "v8", 2, 40)
    assert carried.policies == (ScalingPolicy("invocations", TARGET_TRACKING, TRACKING),)
    assert carried.capacity == VariantCapacity(current=29, desired=29)


def test_a_promotion_may_override_the_limits():
    carried = carried_scaling(old_scaling(), "v8", ScalingOverrides(min_capacity=4, max_capacity=60))

    assert carried.target is not None
    assert (carried.target.min_capacity, carried.target.max_capacity) == (4, 60)


@pytest.mark.parametrize(("minimum", "maximum"), [(50, None), (None, 1), (0, 10), (5, 4)])
def test_limits_that_cannot_hold_are_refused(minimum, maximum):
    with pytest.raises(ScalingNotCarried, match="min"):
        carried_scaling(old_scaling(), "v8", ScalingOverrides(minimum, maximum))


def test_a_customized_metric_follows_the_variant():
    metric = CustomizedMetric(
        "AWS/SageMaker", "CPUUtilization", "Average", (("EndpointName", "churn"), ("VariantName", "v7"))
    )
    tracking = TargetTracking(target_value=60.0, customized_metric=metric)
    carried = carried_scaling(old_scaling((ScalingPolicy("cpu", TARGET_TRACKING, tracking),)), "v8")

    moved = carried.policies[0].target_tracking
    assert moved is not None and moved.customized_metric is not None
    assert moved.customized_metric.dimensions == (("EndpointName", "churn"), ("VariantName", "v8"))
    assert moved.target_value == 60.0


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (ScalingPolicy("steps", "StepScaling"), "StepScaling"),
        (
            ScalingPolicy(
                "math",
                TARGET_TRACKING,
                TargetTracking(60.0, customized_metric=CustomizedMetric(None, None, None, uses_metric_math=True)),
            ),
            "metric math",
        ),
    ],
)
def test_a_policy_that_cannot_be_copied_faithfully_is_refused(policy, message):
    with pytest.raises(ScalingNotCarried, match=message):
        carried_scaling(old_scaling((policy,)), "v8")


def test_a_users_suspension_is_carried():
    carried = carried_scaling(old_scaling(suspended=ALL_SUSPENDED), "v8")

    assert carried.target is not None and carried.target.suspended == ALL_SUSPENDED


def test_an_unregistered_variant_carries_nothing_and_takes_no_limits():
    old = VariantScaling("v7", VariantCapacity(3, 3), None)

    assert carried_scaling(old, "v8") == VariantScaling("v8", VariantCapacity(3, 3), None, ())
    with pytest.raises(ScalingNotCarried, match="not autoscaled"):
        carried_scaling(old, "v8", ScalingOverrides(max_capacity=10))


def test_the_ceiling_is_the_rule():
    # the documented formula, spelled out once
    assert candidate_count(37, 25, 1.5) == math.ceil(37 * 0.25 * 1.5)
