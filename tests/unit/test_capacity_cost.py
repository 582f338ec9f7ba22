"""The cost ledger: extra instance-hours integrated from observations, and their estimated price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shepherd.capacity.cost import CANDIDATE, LIVE_HELD, CostLedger, Running, extra_running
from shepherd.capacity.prices import DEFAULT_PRICES, parse_price_table

START = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def test_counts_run_from_one_observation_to_the_next():
    ledger = (
        CostLedger()
        .observe(at(0), [Running(CANDIDATE, "ml.m5.xlarge", 3)])
        .observe(at(30), [Running(CANDIDATE, "ml.m5.xlarge", 4)])
        .close(at(60))
    )

    assert ledger.instance_hours() == pytest.approx(3 * 0.5 + 4 * 0.5)
    assert ledger.instance_hours(CANDIDATE) == pytest.approx(3.5)
    assert ledger.instance_hours(LIVE_HELD) == 0
    assert ledger.estimated_cost(DEFAULT_PRICES) == pytest.approx(3.5 * 0.23)


def test_live_capacity_held_above_autoscaling_is_charged_to_its_own_role():
    ledger = (
        CostLedger()
        .observe(at(0), extra_running("ml.g5.xlarge", 2, "ml.m5.xlarge", live_count=29, autoscaling_desired=25))
        .close(at(60))
    )

    assert ledger.instance_hours(CANDIDATE) == pytest.approx(2.0)
    assert ledger.instance_hours(LIVE_HELD) == pytest.approx(4.0)
    assert ledger.estimated_cost(DEFAULT_PRICES) == pytest.approx(2 * 1.408 + 4 * 0.23)


def test_live_capacity_at_or_below_autoscaling_or_not_autoscaled_is_not_extra():
    for desired in (29, 31, None):
        running = extra_running("ml.m5.xlarge", 1, "ml.m5.xlarge", live_count=29, autoscaling_desired=desired)
        assert dict((r.role, r.count) for r in running) == {CANDIDATE: 1, LIVE_HELD: 0}


def test_a_stale_observation_is_ignored():
    ledger = CostLedger().observe(at(0), [Running(CANDIDATE, "ml.m5.large", 2)]).observe(at(10), [])

    assert ledger.observe(at(5), [Running(CANDIDATE, "ml.m5.large", 100)]) == ledger


def test_observing_the_same_moment_twice_charges_nothing_more():
    first = CostLedger().observe(at(0), [Running(CANDIDATE, "ml.m5.large", 2)]).observe(at(30), [])
    again = first.observe(at(30), [])

    assert again.instance_hours() == first.instance_hours() == pytest.approx(1.0)


def test_the_cost_is_unknown_when_a_type_has_no_price():
    ledger = (
        CostLedger()
        .observe(at(0), [Running(CANDIDATE, "ml.p5.48xlarge", 1), Running(LIVE_HELD, "ml.m5.large", 1)])
        .close(at(60))
    )

    assert ledger.estimated_cost(DEFAULT_PRICES) is None
    assert ledger.unpriced_types(DEFAULT_PRICES) == ("ml.p5.48xlarge",)
    assert ledger.estimated_cost({**DEFAULT_PRICES, "ml.p5.48xlarge": 60.0}) == pytest.approx(60.115)


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError, match="negative"):
        CostLedger().observe(at(0), [Running(CANDIDATE, "ml.m5.large", -1)])


def test_the_table_prices_every_common_real_time_type():
    for instance_type in [
        *("ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.m5.4xlarge", "ml.c5.large", "ml.c5.xlarge"),
        *("ml.c5.2xlarge", "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g5.xlarge", "ml.g5.2xlarge"),
        *("ml.inf2.xlarge", "ml.t2.medium", "ml.r5.large"),
    ]:
        assert DEFAULT_PRICES[instance_type] > 0


def test_a_users_price_table_is_read_from_json():
    assert parse_price_table('{"ml.m5.large": 0.1, "ml.g5.xlarge": 1.2}') == {"ml.m5.large": 0.1, "ml.g5.xlarge": 1.2}


@pytest.mark.parametrize(
    "document",
    ['{"m5.large": 0.1}', '{"ml.m5.large": -1}', '{"ml.m5.large": "cheap"}', "[0.1]", '{"ml.m5.large": NaN}'],
)
def test_a_price_table_that_is_not_prices_is_refused(document):
    with pytest.raises(ValueError):  # pydantic's ValidationError for a malformed document
        parse_price_table(document)
