"""The canary judge's part of the rollout decision, pure: step_analysis.analyse and decide's gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shepherd.analysis.config import JudgeConfig
from shepherd.analysis.verdict import MetricEvidence, Outcome, Verdict
from shepherd.rollouts import naming
from shepherd.rollouts.actions import ShiftTraffic, Wait
from shepherd.rollouts.decide import decide
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint, ObservedVariant
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout, VariantSpec, new_rollout
from shepherd.rollouts.step_analysis import StepAnalysis, analyse
from shepherd.rollouts.strategy import parse_strategy

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BAKE_ENDS = T0 + timedelta(minutes=10)
ENDPOINT = "churn-prod"
RID = naming.rollout_id("0b6f3c1e-2d4a-4f5b-9c8d-7e6f5a4b3c2d", T0)
CANDIDATE = VariantSpec.for_version("churn", 2, instance_type="ml.m5.large", initial_instance_count=1)
LIVE = VariantSpec.for_version("churn", 1, instance_type="ml.m5.large", initial_instance_count=1)


def evidence(metric: str, outcome: Outcome, critical: bool) -> MetricEvidence:
    return MetricEvidence(
        metric=metric,
        kind="paired",
        outcome=outcome,
        critical=critical,
        direction="higher_is_worse",
        tolerance=0.1,
        samples=6,
        min_samples=5,
        confidence=0.9975,
        rule="test",
    )


def verdict(outcome: Outcome, *, critical: bool = True) -> Verdict:
    item = evidence("latency_p99", outcome, critical)
    return Verdict(outcome=outcome, critical_failure=outcome == "FAIL" and critical, minutes=6, metrics=(item,))


NO_DATA = verdict("INCONCLUSIVE")


def look(
    seen: Verdict | None,
    now: datetime,
    previous: StepAnalysis | None = None,
    **config: Any,
) -> StepAnalysis:
    return analyse(
        previous,
        step=0,
        percent=10,
        bake_ends_at=BAKE_ENDS,
        config=JudgeConfig(**config),
        verdict=seen,
        unavailable_verdict=NO_DATA,
        series={},
        now=now,
    )


# --- what one look decides ------------------------------------------------------------------------


def test_a_critical_failure_rolls_back_at_once_during_the_bake():
    entry = look(verdict("FAIL"), T0 + timedelta(minutes=3))
    assert (entry.decision, entry.decided_at) == ("rollback", T0 + timedelta(minutes=3))
    assert "latency_p99" in entry.reason


def test_a_non_critical_failure_waits_for_the_end_of_the_bake_then_rolls_back():
    during = look(verdict("FAIL", critical=False), T0 + timedelta(minutes=3))
    after = look(verdict("FAIL", critical=False), BAKE_ENDS, during)
    assert (during.decision, after.decision) == (None, "rollback")


@pytest.mark.parametrize("outcome", ["PASS", "INCONCLUSIVE"])
def test_nothing_is_decided_before_the_bake_is_over(outcome):
    assert look(verdict(outcome), BAKE_ENDS - timedelta(seconds=1)).decision is None


def test_a_pass_at_the_end_of_the_bake_advances():
    assert look(verdict("PASS"), BAKE_ENDS).decision == "advance"


@pytest.mark.parametrize("on_inconclusive", ["hold", "advance", "rollback"])
def test_inconclusive_extends_the_bake_then_does_what_the_strategy_says(on_inconclusive):
    extended = look(
        NO_DATA, BAKE_ENDS + timedelta(seconds=299), max_extension_seconds=300, on_inconclusive=on_inconclusive
    )
    over = look(
        NO_DATA,
        BAKE_ENDS + timedelta(seconds=300),
        extended,
        max_extension_seconds=300,
        on_inconclusive=on_inconclusive,
    )
    assert (extended.decision, extended.extended_seconds) == (None, 299)
    assert (over.decision, over.extended_seconds) == (on_inconclusive, 300)


def test_a_pass_during_the_extension_advances_at_once():
    extended = look(NO_DATA, BAKE_ENDS + timedelta(seconds=60))
    assert look(verdict("PASS"), BAKE_ENDS + timedelta(seconds=120), extended).decision == "advance"


def test_unreadable_metrics_are_no_new_data_and_never_roll_back():
    failing = verdict("FAIL", critical=False)
    before = look(failing, BAKE_ENDS - timedelta(minutes=1))
    # The metrics cannot be read from here on: the earlier FAIL must not decide on stale evidence.
    after_bake = look(None, BAKE_ENDS, before, max_extension_seconds=60, on_inconclusive="rollback")
    over = look(
        None, BAKE_ENDS + timedelta(seconds=60), after_bake, max_extension_seconds=60, on_inconclusive="rollback"
    )
    assert (after_bake.decision, after_bake.verdict.outcome, after_bake.metrics_unavailable) == (
        None,
        "INCONCLUSIVE",
        1,
    )
    assert (over.decision, over.metrics_unavailable) == ("hold", 2)


def test_a_decided_step_does_not_change_again():
    decided = look(verdict("PASS"), BAKE_ENDS)
    assert look(verdict("FAIL"), BAKE_ENDS + timedelta(minutes=1), decided) is decided


# --- a hold: judged again at every look ------------------------------------------------------------

HOLDING = {"max_extension_seconds": 60, "max_hold_seconds": 3600, "hold_reminder_seconds": 600}
HELD_AT = BAKE_ENDS + timedelta(seconds=60)


def held(**config: Any) -> StepAnalysis:
    entry = look(NO_DATA, HELD_AT, look(NO_DATA, BAKE_ENDS, **HOLDING, **config), **HOLDING, **config)
    assert (entry.decision, entry.held_since, entry.hold_announcements) == ("hold", HELD_AT, 1)
    return entry


def test_a_held_step_whose_candidate_starts_failing_is_rolled_back_without_an_operator():
    entry = held()
    still = look(NO_DATA, HELD_AT + timedelta(minutes=5), entry, **HOLDING)
    failing = look(verdict("FAIL", critical=False), HELD_AT + timedelta(minutes=6), still, **HOLDING)
    assert (still.decision, still.judged_at) == ("hold", HELD_AT + timedelta(minutes=5))
    assert (failing.decision, failing.decided_at, failing.held_since) == (
        "rollback",
        HELD_AT + timedelta(minutes=6),
        HELD_AT,
    )
    assert "latency_p99" in failing.reason


def test_a_step_held_before_holds_had_a_deadline_gets_one_from_when_it_was_held():
    # A record written by an earlier Shepherd: decision hold, no held_since. It must not crash the pass
    # (which would hold the endpoint's lock for ever) and its deadline counts from the decision.
    legacy = StepAnalysis(
        step=0, percent=10, judged_at=HELD_AT, verdict=NO_DATA, decision="hold", decided_at=HELD_AT
    )  # fmt: skip

    still = look(NO_DATA, HELD_AT + timedelta(minutes=5), legacy, **HOLDING)
    timed_out = look(NO_DATA, HELD_AT + timedelta(seconds=HOLDING["max_hold_seconds"]), still, **HOLDING)

    assert (still.decision, still.held_since, still.hold_announcements) == ("hold", HELD_AT, 1)
    assert (timed_out.decision, timed_out.hold_timed_out) == ("rollback", True)  # on_hold_timeout's default


@pytest.mark.parametrize(("held_step_advances", "decision"), [(True, "advance"), (False, "hold")])
def test_a_pass_during_a_hold_advances_unless_the_strategy_keeps_holding(held_step_advances, decision):
    entry = held(held_step_advances=held_step_advances)
    later = look(
        verdict("PASS"), HELD_AT + timedelta(minutes=1), entry, **HOLDING, held_step_advances=held_step_advances
    )
    assert later.decision == decision and later.verdict.outcome == "PASS"


@pytest.mark.parametrize("on_hold_timeout", ["rollback", "advance"])
def test_a_hold_reaching_its_deadline_does_what_the_strategy_says(on_hold_timeout):
    entry = held(on_hold_timeout=on_hold_timeout)
    before = look(NO_DATA, HELD_AT + timedelta(seconds=3599), entry, **HOLDING, on_hold_timeout=on_hold_timeout)
    at = look(NO_DATA, HELD_AT + timedelta(seconds=3600), before, **HOLDING, on_hold_timeout=on_hold_timeout)
    assert (before.decision, before.hold_timed_out) == ("hold", False)
    assert (at.decision, at.hold_timed_out, at.decided_at) == (on_hold_timeout, True, HELD_AT + timedelta(hours=1))
    assert at.reason == "canary analysis held at 10% for 3600 s without a decision"


def test_unreadable_metrics_during_a_hold_never_roll_back_but_the_deadline_still_applies():
    entry = held()
    outage = look(None, HELD_AT + timedelta(minutes=30), entry, **HOLDING)
    deadline = look(None, HELD_AT + timedelta(hours=1), outage, **HOLDING)
    assert (outage.decision, outage.metrics_unavailable) == ("hold", entry.metrics_unavailable + 1)
    assert (deadline.decision, deadline.hold_timed_out) == ("rollback", True)  # the strategy's, not the outage's


def test_a_hold_is_announced_again_once_per_reminder_period():
    entry = held()
    counts = []
    for minute in range(1, 60):
        entry = look(NO_DATA, HELD_AT + timedelta(minutes=minute), entry, **HOLDING)
        counts.append(entry.hold_announcements)
    # Reminders every 600 s from the last announcement: at 10, 20, ... 50 minutes.
    assert counts[8:11] == [1, 2, 2] and counts[-1] == 6
    assert entry.hold_announced_at == HELD_AT + timedelta(minutes=50)


def test_a_late_pass_after_a_long_outage_of_the_controller_sends_one_reminder_not_many():
    entry = held()
    later = look(NO_DATA, HELD_AT + timedelta(minutes=45), entry, **HOLDING)
    assert later.hold_announcements == 2


# --- advisory mode: what the judge would do ----------------------------------------------------------


def test_advisory_mode_decides_at_once_and_never_extends_the_bake():
    during = look(verdict("FAIL"), T0 + timedelta(minutes=3), mode="advisory")
    inconclusive = look(NO_DATA, BAKE_ENDS, mode="advisory")
    assert (during.decision, during.advisory) == ("rollback", True)
    assert (inconclusive.decision, inconclusive.extended_seconds, inconclusive.held_since) == ("hold", 0, None)
    # Decided once: a would-be hold is not judged again, nor announced again.
    assert look(verdict("FAIL"), BAKE_ENDS + timedelta(hours=2), inconclusive, mode="advisory") is inconclusive


# --- decide's gate on the record -----------------------------------------------------------------


def baking(**changes: Any) -> Rollout:
    strategy = parse_strategy({"type": "canary", "canary_percent": 10, "bake_seconds": 600})
    record = new_rollout(
        rollout_id=RID,
        endpoint_name=ENDPOINT,
        model_name="churn",
        version=2,
        strategy=strategy,
        candidate=CANDIDATE,
        live=LiveDeployment(model_name="churn", version=1, variant=LIVE, config_name="churn-prod-v1"),
        now=T0,
    )
    return record.model_copy(
        update={
            "phase": Phase.SHIFTING,
            "step_index": 0,
            "current_percent": 10,
            "step_started_at": T0,
            "updated_at": T0,
            **changes,
        }
    )


AT_10 = ObservedEndpoint(
    status=EndpointStatus.IN_SERVICE,
    config_name=naming.endpoint_config_name(ENDPOINT, RID, "shift"),
    variants=(ObservedVariant(LIVE.variant_name, 0.9), ObservedVariant(CANDIDATE.variant_name, 0.1)),
)


def with_decision(decision: str | None, outcome: Outcome = "PASS") -> Rollout:
    record = baking()
    entry = StepAnalysis(step=0, percent=10, judged_at=BAKE_ENDS, verdict=verdict(outcome), decision=decision)
    return record.with_step_analysis(entry)


def test_a_bake_that_is_over_does_not_advance_without_the_judges_advance():
    action = decide(baking(), AT_10, frozenset(), BAKE_ENDS)
    assert isinstance(action, Wait) and "extended" in action.reason


def test_the_judges_advance_moves_on_after_the_bake():
    action = decide(with_decision("advance"), AT_10, frozenset(), BAKE_ENDS)
    assert isinstance(action, ShiftTraffic) and (action.from_percent, action.to_percent) == (10, 100)


def test_alarms_still_hold_a_step_the_judge_passed():
    action = decide(with_decision("advance"), AT_10, frozenset({"errors-alarm"}), BAKE_ENDS)
    assert isinstance(action, Wait) and action.alarms == frozenset({"errors-alarm"})


@pytest.mark.parametrize("decision", ["hold", "rollback", None])
def test_in_advisory_mode_the_bake_and_the_alarms_decide_alone(decision):
    strategy = parse_strategy(
        {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "analysis": {"judge": {"mode": "advisory"}}}
    )
    record = baking(strategy=strategy)
    if decision is not None:
        entry = StepAnalysis(
            step=0, percent=10, judged_at=BAKE_ENDS, verdict=verdict("FAIL"), decision=decision, advisory=True
        )
        record = record.with_step_analysis(entry)
    assert record.judged  # the judge still looks, and says what it would do
    assert isinstance(decide(record, AT_10, frozenset(), BAKE_ENDS - timedelta(seconds=1)), Wait)  # baking
    assert isinstance(decide(record, AT_10, frozenset(), BAKE_ENDS), ShiftTraffic)
    assert decide(record, AT_10, frozenset({"errors-alarm"}), BAKE_ENDS).alarms == frozenset({"errors-alarm"})  # type: ignore[union-attr]


@pytest.mark.parametrize(("decision", "words"), [("hold", "shepherd resume"), ("rollback", "rolling back")])
def test_hold_and_rollback_wait_in_the_controller(decision, words):
    action = decide(with_decision(decision, "INCONCLUSIVE"), AT_10, frozenset(), BAKE_ENDS + timedelta(hours=1))
    assert isinstance(action, Wait) and words in action.reason


def test_with_the_judge_off_the_bake_alone_decides():
    record = baking(
        strategy=parse_strategy(
            {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "analysis": {"judge": {"enabled": False}}}
        )
    )
    assert not record.judged
    assert isinstance(decide(record, AT_10, frozenset(), BAKE_ENDS), ShiftTraffic)


def test_the_stored_analysis_survives_a_round_trip_through_the_table():
    record = with_decision("advance")
    assert Rollout.model_validate(record.model_dump(mode="json")) == record


def test_the_record_stays_far_below_dynamodbs_item_limit_with_99_judged_steps_and_24_metrics():
    from shepherd.rollouts.step_analysis import MinuteSeries

    minutes = tuple(T0 + timedelta(minutes=m) for m in range(60))
    series = {
        f"s{i}": MinuteSeries(minutes=minutes, baseline=(51234.5,) * 60, candidate=(71234.5,) * 60) for i in range(6)
    }
    metrics = tuple(evidence(f"metric_{i:02d}", "PASS", True) for i in range(24))
    record = baking()
    for step in range(99):
        full = Verdict(outcome="PASS", critical_failure=False, minutes=60, metrics=metrics)
        entry = StepAnalysis(step=step, percent=step + 1, judged_at=T0, verdict=full, decision="advance", series=series)
        record = record.with_step_analysis(entry)

    size = len(record.model_dump_json())
    assert size < 150_000, size
    assert len(record.analysis) == 99 and record.analysis[-1].verdict.metrics == metrics  # the latest kept whole
    assert record.analysis[0].decision == "advance" and record.analysis[0].verdict.metrics == ()


def test_a_step_without_a_bake_is_not_judged_and_moves_on_at_once():
    strategy = parse_strategy({"type": "steps", "steps": [{"percent": 10, "bake_seconds": 0}, {"percent": 100}]})
    record = baking(strategy=strategy, plan=strategy.plan())
    assert not record.judged
    assert isinstance(decide(record, AT_10, frozenset(), T0), ShiftTraffic)
