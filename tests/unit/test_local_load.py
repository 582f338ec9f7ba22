"""`--rps`: one number, or a ramp of RPS@MINUTE points (local/load.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shepherd_cli.local.load import Load, parse_rps

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_one_number_is_the_same_load_all_along():
    load = parse_rps("300").starting(START)
    assert not load.is_ramp
    assert [load.rps_during(START + timedelta(minutes=m)) for m in (0, 10, 1000)] == [300, 300, 300]


def test_a_ramp_rises_linearly_between_its_points_and_holds_the_last_rate():
    load = parse_rps("100@0, 2000@30").starting(START)
    assert load.is_ramp
    assert load.rps_at(0) == 100 and load.rps_at(15) == 1050 and load.rps_at(30) == 2000
    assert load.rps_at(90) == 2000
    # each simulated minute takes the rate at its middle
    assert load.rps_during(START) == pytest.approx(100 + 1900 * 0.5 / 30)
    assert load.rps_during(START + timedelta(minutes=45)) == 2000


def test_a_ramp_can_hold_then_fall_and_starts_flat_before_its_first_point():
    load = parse_rps("2000@10,2000@20,300@40")
    assert load.rps_at(0) == 2000 and load.rps_at(20) == 2000 and load.rps_at(30) == 1150 and load.rps_at(50) == 300


def test_a_ramp_without_a_start_begins_with_the_simulators_first_minute():
    assert parse_rps("100@0,2000@30").start is None
    assert Load.constant(5).starting(START).start == START


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("fast", "expected a number"),
        ("-1", "between 0 and"),
        ("nan", "between 0 and"),
        ("100@0,x@30", "is not RPS@MINUTE"),
        ("100@30,200@10", "must increase"),
        ("100@0,200@0", "must increase"),
        ("100@-5", "a minute must be"),
        ("100@0,5000000@10", "between 0 and"),
    ],
)
def test_a_malformed_rps_is_refused_with_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        parse_rps(text)
