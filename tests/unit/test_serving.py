"""Which version serves an endpoint: the one its traffic goes to, now and over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shepherd.rollouts.ports import EndpointAuditEntry
from shepherd_cli.serving import serving_versions
from shepherd_cli.ui.served import ServedPeriod, served_periods

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_the_serving_version_is_the_one_taking_the_traffic_whatever_the_records_say():
    # after `rollback --to-version 1`: v5 is still on the endpoint, v1 takes everything
    variants = [
        {"variant_name": "m-v5", "version": 5, "current_weight": 0.0, "role": "standby"},
        {"variant_name": "m-v1", "version": 1, "current_weight": 1.0, "role": "serving"},
    ]
    assert [entry["version"] for entry in serving_versions(variants)] == [1]
    # a 10% canary: the live version still serves most; SageMaker's weights are relative
    canary = [
        {"variant_name": "m-v1", "version": 1, "current_weight": 9.0, "role": "serving"},
        {"variant_name": "m-v2", "version": 2, "current_weight": 1.0, "role": "candidate"},
    ]
    assert [(entry["version"], round(entry["percent"])) for entry in serving_versions(canary)] == [(1, 90), (2, 10)]


def weights(minutes: int, rollout_id: str, version: int, traffic: tuple[int, int]) -> EndpointAuditEntry:
    return EndpointAuditEntry(
        endpoint_name="e", rollout_id=rollout_id, action="traffic", model_name="m", version=version, detail="",
        actor=None, at=T0 + timedelta(minutes=minutes), event_id=f"ev{minutes}",
        from_percent=traffic[0], to_percent=traffic[1],
    )  # fmt: skip


def test_served_periods_follow_the_weight_requests_and_the_flip_back():
    trail = [
        weights(0, "r1", 1, (0, 100)),  # first deployment
        weights(10, "r2", 2, (0, 10)),  # v2 canary: v1 still serves
        weights(20, "r2", 2, (10, 100)),  # v2 takes it
        weights(30, "r3", 3, (0, 10)),
        weights(31, "r3", 3, (10, 0)),  # v3 rolled back: v2 kept serving all along
        weights(40, "r4", 4, (0, 100)),
        weights(45, "r4", 4, (100, 0)),  # v4 flipped back after taking it: v2 again
    ]
    replaced = {"r2": ("m", 1), "r3": ("m", 2), "r4": ("m", 2)}

    periods = served_periods(reversed(trail), replaced)

    at = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    assert periods == [
        ServedPeriod("e", "m", 1, "r1", at(0), at(20)),
        ServedPeriod("e", "m", 2, "r2", at(20), at(40)),
        ServedPeriod("e", "m", 4, "r4", at(40), at(45)),
        ServedPeriod("e", "m", 2, "r4", at(45), None),
    ]


def test_entries_without_the_percent_fields_move_nothing():
    old = EndpointAuditEntry(
        endpoint_name="e", rollout_id="r1", action="traffic 0% -> 100%", model_name="m", version=1, detail="",
        actor=None, at=T0, event_id="ev",
    )  # fmt: skip
    assert served_periods([old], {}) == []
