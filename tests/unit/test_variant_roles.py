"""What each variant is for, one answer for `shepherd status` and the dashboard alike."""

from __future__ import annotations

import pytest

from shepherd.rollouts.record import Phase, Rollout
from shepherd.rollouts.variant_roles import variant_role
from tests.unit.test_fresh_baseline import CANDIDATE, FRESH_NAME, LIVE, rollout, strategy

CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 900}


def in_phase(record: Rollout, phase: Phase) -> Rollout:
    return record.model_copy(update={"phase": phase})


@pytest.mark.parametrize(
    ("phase", "candidate", "previous"),
    [
        (Phase.STARTING, "candidate", "serving"),
        (Phase.SHIFTING, "candidate", "serving"),
        (Phase.WATCHING, "serving", "standby"),
        (Phase.RETIRING, "serving", "standby"),
        (Phase.COMPLETED, "serving", "standby"),
        (Phase.ABORTING, "rolled back", "serving"),
        (Phase.ROLLED_BACK, "rolled back", "serving"),
        (Phase.FAILED, "rolled back", "serving"),
    ],
)
def test_the_candidate_and_the_previous_variant_by_phase(phase, candidate, previous):
    record = in_phase(rollout(CANARY), phase)

    assert variant_role(CANDIDATE.variant_name, record) == candidate
    assert variant_role(LIVE.variant_name, record) == previous
    assert variant_role("someone-elses-variant", record) == "other"


def test_a_fresh_baseline_is_the_baseline_though_it_runs_the_previous_version():
    record = in_phase(rollout(strategy()), Phase.SHIFTING)

    assert record.fresh_baseline is not None and record.fresh_baseline.variant_name == FRESH_NAME
    assert variant_role(FRESH_NAME, record) == "baseline"
    assert variant_role(LIVE.variant_name, record) == "serving"


def test_an_endpoint_without_a_rollout_is_simply_served():
    assert variant_role(LIVE.variant_name, None) == "serving"
