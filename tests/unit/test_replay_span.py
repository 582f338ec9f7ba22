"""`shepherd analysis replay` finds each judged step's span in the audit trail by the entries' fields,
and still reads entries written before those fields by their words."""

from __future__ import annotations

from datetime import timedelta

from shepherd.analysis.verdict import Verdict
from shepherd.rollouts.ports import EndpointAuditEntry
from shepherd.rollouts.record import Phase
from shepherd.rollouts.step_analysis import StepAnalysis
from shepherd_cli.replay import step_span
from tests.unit.test_controller_analysis import ENDPOINT, RID, T0, baking

STEP = StepAnalysis(
    step=0,
    percent=10,
    judged_at=T0,
    verdict=Verdict(outcome="PASS", critical_failure=False, minutes=10, metrics=()),
    decision="advance",
)


def entry(minutes: int, action: str, detail: str = "", **fields: int) -> EndpointAuditEntry:
    return EndpointAuditEntry(
        endpoint_name=ENDPOINT, rollout_id=RID, action=action, model_name="churn", version=2, detail=detail,
        actor=None, at=T0 + timedelta(minutes=minutes), event_id=f"ev{minutes}", **fields,
    )  # fmt: skip


# The rollout moved on: its record no longer says when step 0 began, only the trail does.
ENDED = baking(phase=Phase.COMPLETED, step_index=1, step_started_at=T0 + timedelta(minutes=13))


def test_a_steps_span_comes_from_the_fields_whatever_the_words():
    trail = [
        entry(0, "started"),
        entry(1, "shift", from_percent=0, to_percent=10),
        entry(2, "progress", "the endpoint carries the canary", reached_step=0),
        entry(12, "weights requested", from_percent=10, to_percent=100),
        entry(13, "progress", "the endpoint carries everything", reached_step=1),
    ]

    assert step_span(ENDED, trail, STEP) == (T0 + timedelta(minutes=2), T0 + timedelta(minutes=12))


def test_an_old_trail_without_the_fields_gives_the_same_span_from_its_words():
    trail = [
        entry(0, "started"),
        entry(1, "traffic 0% -> 10%"),
        entry(2, "progress", "reached 10%"),
        entry(12, "traffic 10% -> 100%"),
        entry(13, "progress", "reached 100%; watching for 900 s"),
    ]

    assert step_span(ENDED, trail, STEP) == (T0 + timedelta(minutes=2), T0 + timedelta(minutes=12))
