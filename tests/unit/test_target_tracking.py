"""Target tracking's arithmetic: proportional, rounded up, within the scalable target's limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shepherd.capacity.target_tracking import tracked_capacity


@pytest.mark.parametrize(
    ("current", "metric", "expected"),
    [
        (2, 9000.0, 6),  # 300 rps on 2 instances, target 3,000 per instance a minute
        (2, 3000.0, 2),  # at the target: unchanged
        (6, 6000.0, 8),  # asks for 12, the maximum is 8
        (8, 750.0, 2),  # asks for 2
        (8, 10.0, 2),  # asks for 1, the minimum is 2
        (3, 3001.0, 4),  # just above: one more (never under-provision)
    ],
)
def test_the_count_is_proportional_to_the_load_rounded_up_within_limits(current, metric, expected):
    assert tracked_capacity(current, metric, target=3000.0, min_capacity=2, max_capacity=8) == expected


@given(
    current=st.integers(1, 100),
    metric=st.floats(0, 1e6),
    target=st.floats(1, 1e5),
    low=st.integers(1, 50),
    span=st.integers(0, 50),
)
def test_the_count_stays_within_limits_and_carries_the_load(current, metric, target, low, span):
    count = tracked_capacity(current, metric, target, low, low + span)

    assert low <= count <= low + span
    if count < low + span:  # not capped: each instance is at or below the target
        assert current * metric / count <= target * (1 + 1e-6)


def test_a_target_of_zero_is_refused():
    with pytest.raises(ValueError, match="target"):
        tracked_capacity(2, 100.0, target=0.0, min_capacity=1, max_capacity=4)
