"""The capacity bench meets issue 23's goals on its simulated day, and its margin check can fail."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import capacity as bench


@pytest.mark.parametrize("seed", [1, 7])
def test_sized_to_share_keeps_the_live_fleet_and_costs_a_fraction_of_a_full_candidate(seed):
    load = bench.traffic(seed)
    share, full = bench.simulate("share", load), bench.simulate("full", load)

    assert share.min_margin >= 0 and full.min_margin >= 0
    assert share.bake_hours <= 0.15 * full.bake_hours
    assert share.total_hours < full.total_hours <= bench.simulate("blue/green", load).total_hours + 1e-9


def test_an_update_that_writes_the_configured_count_is_caught_below_autoscaling():
    assert bench.simulate("share", bench.traffic(7), naive=True).min_margin < 0


def test_the_day_is_the_same_for_a_seed():
    assert (bench.traffic(3) == bench.traffic(3)).all()
