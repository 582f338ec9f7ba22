"""The shortest sequences found (by the model-based test, then reduced by hand) for each invariant the
rollout engine broke when the test was written, replayed step by step with the same checks.

Each names the fix of issue 9 that makes it pass; all failed on the code before issue 9's fixes (the
last four found by the long run on the merged fixes, each failing before its own fix). They are kept
as they are, so each fix has a readable, deterministic case to show it works.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shepherd.rollouts.record import Phase
from tests.model.harness import RolloutModel, named_alarms

# Issue 9's sequences are about the alarms' rollouts: the canary judge (which would hold a canary
# whose metrics never come, waiting for an operator) is off; the model test draws it on too.
NO_JUDGE = {"analysis": {"judge": {"enabled": False}}}
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 900, **NO_JUDGE}
ALL_AT_ONCE_WATCHED = {"type": "all_at_once", "post_deploy_watch_seconds": 900, **NO_JUDGE}
ALL_AT_ONCE = {"type": "all_at_once", "post_deploy_watch_seconds": 0, **NO_JUDGE}


def promote(model: RolloutModel, endpoint: str, strategy: dict[str, Any], when: str = "now", named=()) -> None:
    model.promote(endpoint, strategy, "next", 1, True, set(named), when)


def run(steps: Callable[[RolloutModel], None], deployed: tuple[str, ...] = ("ep-a",)) -> None:
    """v1 live on `deployed` (a first deployment), then `steps` (each followed by the checks), then the end."""
    model = RolloutModel()
    model.first_deployments(set(deployed))
    model.invariants_hold()
    steps(model)
    model.invariants_hold()
    model.teardown()


def checked(model: RolloutModel, rule: str, *args: Any) -> None:
    getattr(model, rule)(*args)
    model.invariants_hold()


# --- I1 -----------------------------------------------------------------------------------------------


def test_i1_a_rollback_while_a_shift_is_in_flight_is_not_reported_as_a_flip() -> None:
    """Fix 2: the flip is refused (the endpoint is Updating to 10%); today the rollback still says
    `rolled_back` with a `seconds_to_flip`, and the candidate gets its 10%."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 2, 60)  # to the shift config, then the 10% shift (Updating)
        checked(model, "alarm", "ep-a", "own-error-rate", "eventbridge", "ALARM", "now")

    run(steps)


def test_i1_a_late_restore_does_not_give_up_with_traffic_on_the_rolled_back_candidate() -> None:
    """Fix 2 and 9: the rollback's flip was refused, and the controller's first look is more than an
    hour later; it "gives up restoring" at once and ends ROLLED_BACK, the endpoint left on the
    rollout's shift config (the candidate at 0%) while the record names the baseline's config. Fixed
    by clean-up finishing the restore: once the endpoint is stable and no rollout holds it, it goes
    back to the recorded baseline config."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 2, 60)
        model.operator_rollback("ep-a", "none", 1)  # refused flip: reported by the test above
        model.rollback_results.clear()
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)

    run(steps)


def test_i1_a_future_dated_alarm_gives_no_negative_seconds_to_flip() -> None:
    """Fix 7 and 10: an alarm dated 30 days ahead; today seconds_to_flip is -2591999.999."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 3, 60)
        checked(model, "alarm", "ep-a", "own-error-rate", "sns", "ALARM", "future")

    run(steps)


# --- I2 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dated", ["promotion", "tick", "alarm"])
def test_i2_a_future_dated_event_does_not_freeze_the_lock(dated: str, monkeypatch) -> None:
    """Fix 7: a promotion, a tick or an alarm dated 30 days ahead; today the record's time moves 30
    days ahead, every later tick is "stale", and the lock is still held after 48 hours."""
    if dated == "alarm":
        monkeypatch.setattr("tests.model.invariants.SKIPPED", frozenset({"I1"}))  # its negative latency: above

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY, when="future" if dated == "promotion" else "now")
        checked(model, "controller_runs", 2, 60)
        if dated == "tick":
            checked(model, "tick", "future")
        if dated == "alarm":
            checked(model, "alarm", "ep-a", "own-error-rate", "sns", "ALARM", "future")

    run(steps)


# --- I3 -----------------------------------------------------------------------------------------------


def test_i3_a_completion_announced_after_a_failed_putevents() -> None:
    """Fix 4: PutEvents fails right after the commit that completes the rollout; today only active
    rollouts' outboxes are flushed, so `Model Version Retired` is never published."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", ALL_AT_ONCE)
        checked(model, "controller_runs", 3, 60)
        checked(model, "putevents_or_cloudwatch_fault", 1, False, "events")
        checked(model, "controller_runs", 1, 60)

    run(steps)


def test_i3_a_redelivered_operator_rollback_is_not_lost() -> None:
    """Found by the long run: an operator rollback commits, then its clean-up of the outbox is
    throttled, so Lambda redelivers it; meanwhile the rollout ended and a promotion (sent 10 minutes
    earlier) started another. The redelivery tries to roll that one back with the same audit key
    (time, event id, "rolled back") as its first commit, which is refused every time as a "lost
    race": the event fails on every retry and is lost (today: TransientError, then the DLQ)."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 3, 60)
        checked(model, "dynamodb_fault", "throttling", "forget", "ep-a", 1, False)
        checked(model, "operator_rollback", "ep-a", "none", 1)  # committed, then failed: retried later
        checked(model, "controller_runs", 4, 60)  # the rollback ends, the lock is free
        promote(model, "ep-a", CANARY, when="stale")
        model.invariants_hold()

    run(steps)


# --- I4 -----------------------------------------------------------------------------------------------


def test_i4_a_watch_window_rollback_audits_live_to_rolled_back() -> None:
    """Fix 10: today the audit entry says DEPLOYING -> ROLLED_BACK for a version that was LIVE."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", ALL_AT_ONCE_WATCHED)
        checked(model, "controller_runs", 3, 60)
        checked(model, "operator_rollback", "ep-a", "none", 1)

    run(steps)


def test_i4_a_failure_in_the_watch_window_audits_live_to_failed() -> None:
    """Failures audit the status the candidate really leaves (found by the long run): SageMaker
    refuses a call for good while the candidate (at 100%) is watched; the version was LIVE, but the
    audit said DEPLOYING -> FAILED."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", ALL_AT_ONCE_WATCHED)
        checked(model, "controller_runs", 3, 60)
        checked(model, "sagemaker_fault", "ResourceLimitExceeded", "describe", "ep-a", 1, False)
        checked(model, "controller_runs", 3, 60)

    run(steps)


def test_i4_a_redeploy_of_a_retired_version_audits_retired_to_deploying() -> None:
    """Fix 10 (same cause: an audit's `from` is the first allowed status, not the real one): an
    operator's rollback that redeploys the RETIRED v1 audited APPROVED -> DEPLOYING. Fixed by the
    promotion moving the version conditionally on the status it read, which its audit names."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", ALL_AT_ONCE)
        checked(model, "controller_runs", 4, 60)
        checked(model, "operator_rollback", "ep-a", "none", 1)

    run(steps)


def test_i4_an_endpoint_deleted_outside_is_deployed_again() -> None:
    """Fix 9: today the next promotion fails ("no longer exists") and the record says v1 is live."""

    def steps(model: RolloutModel) -> None:
        checked(model, "endpoint_deleted_outside", "ep-a")
        promote(model, "ep-a", CANARY)

    run(steps)


def test_i4_the_version_of_an_endpoint_deleted_outside_can_be_deployed_again() -> None:
    """Fix 9 (found by the test on the merged fixes): after the endpoint is deleted outside, promoting
    the version it served was refused ("v1 is LIVE; only APPROVED versions can be promoted") and the
    record kept saying v1 serves a missing endpoint. Fixed: that version may be deployed again, moved
    LIVE -> DEPLOYING by the start that drops the stale baseline."""

    def steps(model: RolloutModel) -> None:
        checked(model, "endpoint_deleted_outside", "ep-a")
        checked(model, "promote", "ep-a", CANARY, "any", 1, False, set(), "now")

    run(steps)


def test_i4_a_first_deployment_left_in_place_is_recorded() -> None:
    """Fix 9: the endpoint comes up after the deadline and is left in place; today nothing records it."""

    def steps(model: RolloutModel) -> None:
        checked(model, "endpoint_stuck", "ep-a", True)
        promote(model, "ep-a", {"type": "all_at_once", **NO_JUDGE})
        checked(model, "controller_runs", 1, 60)
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)
        checked(model, "endpoint_stuck", "ep-a", False)
        checked(model, "controller_runs", 1, 60)

    run(steps, deployed=())


def test_i4_a_failed_first_deployment_that_comes_up_late_is_removed_by_clean_up() -> None:
    """Clean-up finishes an abort that ended early (found by the long run): the endpoint stays
    Creating, the first deployment fails and its restore gives up; when the endpoint comes up at last,
    nothing records it and every later promotion is refused ("exists but was not deployed by
    Shepherd"). The clean-up, which waits while the endpoint is changing, now deletes it."""

    def steps(model: RolloutModel) -> None:
        checked(model, "endpoint_stuck", "ep-a", True)
        promote(model, "ep-a", {"type": "all_at_once", **NO_JUDGE})
        checked(model, "controller_runs", 1, 60)
        for _ in range(2):
            checked(model, "time_passes", 3700)
            checked(model, "controller_runs", 1, 60)
        checked(model, "endpoint_stuck", "ep-a", False)

    run(steps, deployed=())


def test_i4_a_restore_that_gives_up_leaves_the_endpoint_and_records_consistent() -> None:
    """Fix 9 and 4: the start update never ends, the rollout fails and its restore gives up; when the
    update lands at last the endpoint runs on the rollout's shift config, which clean-up deleted,
    while the record says it runs v1 on its own config. Fixed by clean-up waiting while the endpoint
    is changing, then finishing the restore (back to the recorded baseline config)."""

    def steps(model: RolloutModel) -> None:
        checked(model, "endpoint_stuck", "ep-a", True)
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 1, 60)
        for _ in range(2):
            checked(model, "time_passes", 3700)
            checked(model, "controller_runs", 1, 60)
        checked(model, "endpoint_stuck", "ep-a", False)

    run(steps)


def test_i4_a_restore_refused_once_before_giving_up_is_finished_by_clean_up() -> None:
    """Found by the long run on the merged fixes: the rollback's restore update fails (SageMaker rolls
    it back, with a FailureReason), and the next look is past the restore deadline, so the rollback
    ends with the endpoint on its shift config. Clean-up did not finish the restore while a
    FailureReason was shown; it now tries again whenever the endpoint is stable and no rollout holds it."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 3, 60)
        checked(model, "operator_rollback", "ep-a", "none", 1)
        checked(model, "update_will_fail", "ep-a")
        checked(model, "controller_runs", 1, 60)
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)

    run(steps)


def test_i4_a_restore_left_unfinished_while_another_rollout_holds_the_endpoint_is_finished_later() -> None:
    """Found by the long run: a rollout's restore gives up (the endpoint stuck), and when the endpoint
    comes back on that rollout's shift config, a new promotion already holds it. The clean-up, seeing
    the lock held, did not finish the restore but completed anyway; the new rollout's update failed
    (SageMaker rolled it back to the old shift config) and its rollback, with nothing of its own to
    undo, left the endpoint there for good, while the records said v1 runs on its own config. The
    clean-up now waits while another rollout holds the endpoint, then finishes the restore."""

    def steps(model: RolloutModel) -> None:
        checked(model, "endpoint_stuck", "ep-a", True)
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 1, 60)
        for _ in range(2):
            checked(model, "time_passes", 3700)
            checked(model, "controller_runs", 1, 60)
        checked(model, "endpoint_stuck", "ep-a", False)
        promote(model, "ep-a", CANARY)
        checked(model, "update_will_fail", "ep-a")
        checked(model, "controller_runs", 6, 60)

    run(steps)


def test_i3_a_retried_alarm_that_rolled_back_one_rollout_is_a_duplicate_for_the_next() -> None:
    """Found by the long run: an alarm named by two promotions rolls the first back, and its
    invocation dies after the abort commit; the controller finishes that rollback, and a second
    rollout starts (its promotion dated before the alarm). Lambda's retry of the alarm then tried to
    abort the second with the same audit entry (same endpoint, time, event and action): refused as
    already written at every try, the retry lost "races" until it gave up, and the event was lost
    after Lambda's retries. One alarm event, one rollback: the retry is now a duplicate (it finds the
    rollout it rolled back among the endpoint's newest)."""

    def steps(model: RolloutModel) -> None:
        a_named_alarm_rolls_back_and_its_invocation_dies(model)
        promote(model, "ep-a", CANARY, when="stale", named={"kpi"})
        lambda_retries_the_alarm(model)
        second = model.active_rollout("ep-a")
        assert second is not None and second.rollback is None

    run(steps)


def a_named_alarm_rolls_back_and_its_invocation_dies(model: RolloutModel) -> None:
    """A canary naming alarm "kpi" is rolled back by it; the invocation dies after the abort commit
    (before the flip, so Lambda retries it), and the controller flips and finishes the rollback."""
    promote(model, "ep-a", CANARY, named={"kpi"})
    checked(model, "controller_runs", 3, 60)
    checked(model, "time_passes", 60)  # the abort's time is the alarm's, as a later abort's would be
    checked(model, "crash_next_invocation", 4)  # after the abort commit, before the flip
    checked(model, "alarm", "ep-a", "kpi", "eventbridge", "ALARM", "now")
    checked(model, "controller_runs", 3, 60)


def lambda_retries_the_alarm(model: RolloutModel) -> None:
    [retried] = [invocation for invocation in model.failed if invocation.kind == "rollback"]
    model.failed.remove(retried)
    model.deliver(retried)
    model.invariants_hold()


def test_i1_a_restore_refused_for_a_while_is_tried_again_not_given_up() -> None:
    """Found by the long run: the flip back is refused (AccessDenied, twice), so the rollback leaves
    it to the controller, whose restore was refused once more; an aborting rollout refused anything
    for good ended at once, releasing the endpoint with 10% still on the rolled-back candidate (and
    the clean-up's restore failed too). An aborting rollout whose candidate still has traffic now keeps
    the endpoint and tries again (a permission can be fixed) until its update deadline."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 3, 60)  # the canary takes its 10%
        checked(model, "sagemaker_fault", "AccessDeniedException", "set_weights", "ep-a", 2, False)
        checked(model, "alarm", "ep-a", "own-error-rate", "eventbridge", "ALARM", "now")
        checked(model, "update_will_fail", "ep-a")  # and the clean-up's restore, once it has ended
        checked(model, "controller_runs", 1, 60)
        for _ in range(model.sagemaker.settle_after_describes + 1):  # SageMaker finishes, watched or not
            model.sagemaker.describe("ep-a")
        model.invariants_hold()
        checked(model, "controller_runs", 3, 60)

    run(steps)


def test_i1_a_refused_look_at_an_aborting_endpoint_does_not_end_the_abort() -> None:
    """Found by review: the rollback's flip is refused, then DescribeEndpoint is refused (twice) at
    the controller's next pass; the refusal ended the abort at once, with 10% still on the
    rolled-back candidate. An aborting rollout that cannot see its endpoint keeps it, and tries again."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 3, 60)  # the canary takes its 10%
        checked(model, "sagemaker_fault", "AccessDeniedException", "set_weights", "ep-a", 1, False)
        checked(model, "alarm", "ep-a", "own-error-rate", "eventbridge", "ALARM", "now")
        checked(model, "sagemaker_fault", "AccessDeniedException", "describe", "ep-a", 2, False)
        checked(model, "controller_runs", 1, 60)
        checked(model, "controller_runs", 2, 60)

    run(steps)


@pytest.mark.parametrize("when", ["now", "stale"])
def test_i1_a_retried_named_alarm_does_not_roll_back_the_next_rollout(when: str) -> None:
    """Found by review: as the I3 sequence above, but the second rollout has moved on before Lambda
    retries the alarm (no audit entry collides): the retry rolled it back, one alarm event rolling
    back two rollouts (and the second from a state change older than itself). A retried alarm named
    by promotions is now checked against the rollbacks this event already made."""

    def steps(model: RolloutModel) -> None:
        a_named_alarm_rolls_back_and_its_invocation_dies(model)
        model.alarms.states[named_alarms("ep-a")["kpi"]] = "OK"  # the alarm is over
        promote(model, "ep-a", CANARY, when=when, named={"kpi"})
        checked(model, "controller_runs", 3, 60)
        lambda_retries_the_alarm(model)
        second = model.active_rollout("ep-a")
        assert second is not None and second.phase is Phase.SHIFTING and second.rollback is None

    run(steps)


def test_i2_a_gating_alarm_read_refused_for_good_does_not_hold_the_lock_forever() -> None:
    """Found by review: CloudWatch refuses DescribeAlarms for good (AccessDenied) at every pass; the
    error was not one the controller timed, so the rollout held the endpoint forever. Any failure
    of a pass is now timed from the first one and ends the rollout after the update deadline."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY, named={"kpi"})
        checked(model, "controller_runs", 3, 60)

        def refused(names: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized: cloudwatch:DescribeAlarms"}},
                "DescribeAlarms",
            )

        model.alarms.alarm_states = refused  # as the adapter lets a non-retryable ClientError through
        for _ in range(3):
            checked(model, "time_passes", 3700)
            checked(model, "controller_runs", 1, 60)
        assert model.active_rollout("ep-a") is None and model.store.lock_holder("ep-a") is None

    run(steps)


# --- I5 -----------------------------------------------------------------------------------------------


def test_i5_a_refused_update_on_one_endpoint_does_not_stop_the_others() -> None:
    """Fix 1: ResourceLimitExceeded on ep-a's UpdateEndpoint; today the pass stops and ep-b waits."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        promote(model, "ep-b", CANARY)
        checked(model, "sagemaker_fault", "ResourceLimitExceeded", "update_endpoint", "ep-a", 1, False)
        checked(model, "controller_runs", 1, 60)

    run(steps, deployed=("ep-a", "ep-b"))


def test_i5_a_judge_rollback_on_an_endpoint_deleted_outside_does_not_stall_its_pass() -> None:
    """Found by the long run: the judge rolls a linear step back (inconclusive past its extension)
    on an endpoint deleted outside Shepherd; the rollback's flip (no look first) was refused for
    good ("Could not find endpoint"), and the error ended the controller's pass before it looked at
    the endpoint. A flip refused for good now looks once and leaves the endpoint to the controller,
    which sees it gone in the same pass."""
    judged = {"on_inconclusive": "rollback", "max_extension_seconds": 120}
    linear = {"type": "linear", "step_percent": 20, "interval_seconds": 300, "analysis": {"judge": judged}}

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-b", linear)
        checked(model, "controller_runs", 3, 60)  # to the first step, baking
        checked(model, "time_passes", 900)  # past the bake and its extension
        checked(model, "endpoint_deleted_outside", "ep-b")
        checked(model, "controller_runs", 1, 60)

    run(steps, deployed=("ep-a", "ep-b"))


def test_a_lone_controller_pass_takes_several_steps_without_racing_itself() -> None:
    """Found by review: a linear rollout with no interval takes one step a minute. In one pass, its
    second "progress" audit entry had the same key as the first (endpoint, time, event, action):
    refused as written already, the pass re-decided as if it had lost a race, six times over. The
    entry's key now holds the record's revision, so one pass takes every step SageMaker allows."""

    def steps(model: RolloutModel) -> None:
        checked(model, "sagemaker_speed", 0)  # every change lands at once
        linear = {"type": "linear", "step_percent": 20, "interval_seconds": 0, "post_deploy_watch_seconds": 0}
        promote(model, "ep-a", {**linear, **NO_JUDGE})
        checked(model, "controller_runs", 1, 60)
        assert "raced" not in model.log[-1]
        assert model.sagemaker.desired_weights("ep-a").get("model-a-v2", 0) >= 0.4

    run(steps)


# --- the README's promises about alarms, operator rollbacks and duplicates ------------------------------


def test_a_target_tracking_alarm_on_the_baseline_does_not_roll_back() -> None:
    """Fix 5: today any alarm with the endpoint's EndpointName dimension rolls the rollout back."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 3, 60)
        checked(model, "alarm", "ep-a", "baseline", "eventbridge", "ALARM", "now")

    run(steps)


def test_an_alarm_named_in_the_promotion_rolls_back_whatever_its_dimensions() -> None:
    """Fix 5: today a named alarm without an EndpointName dimension is ignored."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY, named=("kpi",))
        checked(model, "controller_runs", 3, 60)
        checked(model, "alarm", "ep-a", "kpi", "eventbridge", "ALARM", "now")

    run(steps)


@pytest.mark.parametrize("to", ["baseline", "other"])
def test_an_operator_rollback_with_to_version_during_a_rollout(to: str) -> None:
    """Fix 6: to the baseline it rolls back; to another version it is refused with Rollback Skipped.
    Today both try a promotion, which is refused with Promotion Rejected."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 3, 60)
        checked(model, "operator_rollback", "ep-a", to, 7)

    run(steps)


def test_a_duplicate_promotion_delivered_concurrently_does_not_reject_itself() -> None:
    """Fix 10: the same event delivered twice at once; today the slower one announces Promotion
    Rejected, naming its own rollout as the one holding the endpoint."""

    def steps(model: RolloutModel) -> None:
        checked(model, "interleave_next_invocation", 2, "ep-a", "duplicate", "sns")
        promote(model, "ep-a", CANARY)

    run(steps, deployed=())


@pytest.mark.parametrize("at_call", [3, 4, 5])  # before the describe, the alarms' read, the commit
def test_i4_a_promotion_raced_by_a_completing_first_deployment_does_not_forget_the_new_baseline(at_call) -> None:
    """Found by the long run after issue 14: a promotion read the endpoint's baseline (none: v1's first
    deployment was still starting) and whether the endpoint existed (not yet), then a controller pass
    created the endpoint and completed v1 before the promotion's commit. The commit took the free
    lock and started v2 as a *first deployment*, blind to v1 now LIVE; once the endpoint was deleted
    outside, v2's deployment replaced the baseline and v1 stayed LIVE for good (before the describe:
    refused, the endpoint "not deployed by Shepherd"). The commit is now conditional on the baseline
    it read, and the promotion decides again when it moved."""

    def steps(model: RolloutModel) -> None:
        checked(model, "sagemaker_speed", 0)  # a created endpoint is InService at once
        promote(model, "ep-a", ALL_AT_ONCE)  # v1, a first deployment: no endpoint yet
        checked(model, "interleave_next_invocation", at_call, "ep-a", "tick", "eventbridge")
        promote(model, "ep-a", ALL_AT_ONCE)  # v2, while the interleaved pass completes v1
        # Started over v1, the baseline now (neither a first deployment nor refused as "not Shepherd's").
        [started] = [stored.rollout for stored in model.store.active_rollouts()]
        assert (started.version, started.previous_version) == (2, 1)
        checked(model, "endpoint_deleted_outside", "ep-a")
        checked(model, "controller_runs", 3, 60)  # v2 creates the endpoint again
        promote(model, "ep-a", ALL_AT_ONCE)  # v3: the records are checked again once it ends
        checked(model, "controller_runs", 3, 60)

    run(steps, deployed=())


# --- the canary judge's holds (issue: holding is not forgetting) --------------------------------------

ERRORS_ONLY = {"latency_p50": {"enabled": False}, "latency_p99": {"enabled": False}}


def judged(**judge: Any) -> dict[str, Any]:
    return {
        "type": "canary",
        "canary_percent": 10,
        "bake_seconds": 600,
        "post_deploy_watch_seconds": 0,
        "analysis": {"judge": {"max_extension_seconds": 60, "default_metrics": ERRORS_ONLY, **judge}},
    }


def decisions(model: RolloutModel) -> list[str]:
    return [
        f"{a.decision}{' (advisory)' if a.advisory else ''}"
        for a in model.publisher.published
        if a.DETAIL_TYPE == "Canary Analysis Completed"
    ]


def test_a_held_step_whose_candidate_starts_failing_is_rolled_back_without_an_operator() -> None:
    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", judged())
        checked(model, "controller_runs", 14, 60)  # silent candidate: bake, extension, held
        assert model.store.lock_holder("ep-a") is not None and decisions(model) == ["hold"]
        checked(model, "candidate_behaves", "ep-a", "failing")
        checked(model, "controller_runs", 8, 60)
        assert decisions(model) == ["hold", "rollback"]
        [rolled_back] = [a for a in model.publisher.published if a.DETAIL_TYPE == "Rollout Rolled Back"]
        assert rolled_back.trigger == "analysis"
        assert model.store.lock_holder("ep-a") is None

    run(steps)


def test_a_hold_that_reaches_its_deadline_is_rolled_back_and_the_lock_released() -> None:
    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", judged(max_hold_seconds=900, hold_reminder_seconds=300))
        checked(model, "controller_runs", 12, 300)  # an hour of silence
        held = [a.announcement for a in model.publisher.published if a.DETAIL_TYPE == "Rollout Held"]
        assert held == [1, 2, 3] and decisions(model) == ["hold", "rollback"]
        assert model.store.lock_holder("ep-a") is None

    run(steps)


def test_an_operator_resumes_a_held_step_and_a_duplicate_resume_gets_the_same_answer() -> None:
    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", judged())
        checked(model, "controller_runs", 14, 60)
        checked(model, "operator_resumes", "ep-a", "active")
        checked(model, "repeat_resume", _Draw(lambda options: options[-1]))
        assert [a.DETAIL_TYPE for a in model.publisher.published if "Resume" in a.DETAIL_TYPE] == [
            "Rollout Resumed",
            "Rollout Resumed",
        ]
        checked(model, "controller_runs", 3, 60)
        assert model.store.lock_holder("ep-a") is None  # 100%, no watch: completed

    run(steps)


def test_an_advisory_judge_announces_the_rollback_it_would_make_and_the_rollout_completes() -> None:
    def steps(model: RolloutModel) -> None:
        checked(model, "candidate_behaves", "ep-a", "failing")
        promote(model, "ep-a", judged(mode="advisory"))
        checked(model, "controller_runs", 20, 60)
        assert decisions(model) == ["rollback (advisory)"]
        assert model.store.lock_holder("ep-a") is None
        assert not [a for a in model.publisher.published if a.DETAIL_TYPE == "Rollout Rolled Back"]

    run(steps)


def test_a_held_step_whose_candidate_gets_healthy_traffic_advances_without_an_operator() -> None:
    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", judged())
        checked(model, "controller_runs", 14, 60)
        checked(model, "candidate_behaves", "ep-a", "healthy")
        checked(model, "controller_runs", 12, 60)
        assert decisions(model) == ["hold", "advance"]
        assert model.store.lock_holder("ep-a") is None

    run(steps)


class _Draw:
    """Stands in for hypothesis's `data` in a rule that draws: picks with the given function."""

    def __init__(self, pick: Callable[[list[Any]], Any]) -> None:
        self.pick = pick

    def draw(self, strategy: Any) -> Any:
        return self.pick(list(strategy.elements))


def test_a_day_long_hold_rolled_back_on_slow_ticks_has_its_restore_finished_by_the_clean_up() -> None:
    """Found by the long run: a hold of a day times out while time runs out (hourly ticks, an endpoint
    that settles after 3 describes), so the restore gives up an hour after the abort and the clean-up
    finishes it; time running out must wait for that clean-up, as the controller does."""

    def steps(model: RolloutModel) -> None:
        checked(model, "sagemaker_speed", 3)
        promote(model, "ep-a", {**judged(), "post_deploy_watch_seconds": 900})
        checked(model, "controller_runs", 5, 60)

    run(steps)


# --- one command, one answer (issue 22, defect 3) -------------------------------------------------------


def answers(model: RolloutModel, *kinds: str) -> list[str]:
    return [a.DETAIL_TYPE for a in model.publisher.published if a.DETAIL_TYPE in kinds]


RESUME_ANSWERS = ("Rollout Resumed", "Rollout Resume Refused")


def test_a_resume_refused_before_the_hold_is_refused_again_when_delivered_during_it() -> None:
    """Defect 3: a refusal recorded nothing, so a duplicate delivered once the step was held resumed it:
    one command answered `Rollout Resume Refused`, then `Rollout Resumed`."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", judged())
        checked(model, "controller_runs", 3, 60)  # baking: not held
        checked(model, "operator_resumes", "ep-a", "active")
        checked(model, "controller_runs", 14, 60)  # held
        checked(model, "repeat_resume", _Draw(lambda options: options[-1]))
        assert answers(model, *RESUME_ANSWERS) == ["Rollout Resume Refused", "Rollout Resume Refused"]

    run(steps)


def test_a_resume_retried_after_a_failed_putevents_keeps_its_first_answer() -> None:
    """Defect 3: the refusal was published but PutEvents reported a failure (a 5xx after the work), so
    Lambda retried the event once the step was held, and the retry resumed it (from the outbox)."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", judged())
        checked(model, "controller_runs", 3, 60)
        checked(model, "putevents_or_cloudwatch_fault", 1, True, "events")
        checked(model, "operator_resumes", "ep-a", "active")
        checked(model, "controller_runs", 14, 60)
        checked(model, "lambda_retries", _Draw(lambda options: options[0]))
        assert set(answers(model, *RESUME_ANSWERS)) == {"Rollout Resume Refused"}

    run(steps)


def test_an_operator_rollback_delivered_again_while_its_restore_runs_is_not_skipped() -> None:
    """Defect 3's sibling: the command rolled the canary back (`Rollout Rolled Back` answers it) and the
    controller restores the endpoint; a second delivery found the rollout ABORTING for its own cause,
    flip done, and answered `Rollback Skipped` ("already ABORTING") to the same command."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 2, 60)
        checked(model, "operator_rollback", "ep-a", "none", 1)  # flipped (after the shift lands)
        assert model.store.latest_rollout("ep-a").rollout.phase is Phase.ABORTING  # restoring
        checked(model, "repeat_rollback_event", _Draw(lambda options: options[-1]))
        assert answers(model, "Rollback Skipped") == []

    run(steps)


def test_a_promotion_during_a_first_deployment_is_told_the_endpoint_is_busy() -> None:
    """Defect 5: the endpoint is Creating (Shepherd's first deployment) and has no baseline yet, so a
    second promotion was told it "exists but was not deployed by Shepherd"."""

    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", ALL_AT_ONCE)
        checked(model, "controller_runs", 1, 60)  # CreateEndpoint: Creating
        first = model.store.lock_holder("ep-a")
        assert first is not None and "ep-a" in model.sagemaker.endpoints
        promote(model, "ep-a", ALL_AT_ONCE)
        [rejected] = [a for a in model.publisher.published if a.DETAIL_TYPE == "Promotion Rejected"]
        assert rejected.active_rollout_id == first
        assert f"has an active rollout {first}" in rejected.reason

    run(steps, deployed=())


def test_a_rollout_whose_promotion_died_after_its_commit_does_not_run_before_its_model_exists() -> None:
    """Found by the model test once its fake SageMaker refused configs naming missing models (issue 22)."""

    def steps(model: RolloutModel) -> None:
        checked(model, "crash_next_invocation", 6)  # after the start's commit, before ensure_model
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 2, 60)

    run(steps)


# --- a manual gate (blue/green) -----------------------------------------------------------------------

BLUE_GREEN = {"type": "blue_green", "post_deploy_watch_seconds": 600, **NO_JUDGE}


def test_a_blue_green_gate_holds_until_resumed_twice_then_completes() -> None:
    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", BLUE_GREEN)
        checked(model, "controller_runs", 4, 60)  # the candidate up at weight 0: held
        stored = model.store.latest_rollout("ep-a")
        assert stored is not None and stored.rollout.gates and stored.rollout.gates[0].opened_at is None
        checked(model, "operator_resumes", "ep-a", "active")
        checked(model, "operator_resumes", "ep-a", "latest")  # another command, same gate: refused or resumed
        checked(model, "controller_runs", 15, 60)

    run(steps)


def test_a_blue_green_gate_rolled_back_by_an_alarm_or_left_to_time_out_keeps_the_invariants() -> None:
    def steps(model: RolloutModel) -> None:
        promote(model, "ep-a", BLUE_GREEN)
        promote(model, "ep-b", BLUE_GREEN)
        checked(model, "controller_runs", 4, 60)
        checked(model, "alarm", "ep-a", "own-error-rate", "eventbridge", "ALARM", "now")
        checked(model, "controller_runs", 4, 60)  # ep-b is still held: the end's time running out times it out

    run(steps, deployed=("ep-a", "ep-b"))


# --- capacity (issue 23) ---------------------------------------------------------------------------------


def test_i4_a_restore_onto_the_restore_config_that_lands_after_giving_up_becomes_the_baseline() -> None:
    """Found by the long run with capacity: autoscaling moved the live fleet, so the restore writes the
    rollout's restore config (the live variant at its observed count); the endpoint is still Updating
    when the restore gives up, then lands there. The records must say the endpoint runs that config:
    the clean-up adopts it as the baseline, as the restore's own end does when it sees it land."""

    def steps(model: RolloutModel) -> None:
        checked(model, "user_autoscales", "ep-a", (2, 8, 4))
        promote(model, "ep-a", CANARY)
        checked(model, "controller_runs", 3, 60)
        checked(model, "operator_rollback", "ep-a", "none", 1)
        checked(model, "controller_runs", 2, 60)  # the flip lands, then the restore config is requested
        checked(model, "endpoint_stuck", "ep-a", True)
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)
        checked(model, "endpoint_stuck", "ep-a", False)
        checked(model, "controller_runs", 2, 60)

    run(steps)


def autoscaled_canary(model: RolloutModel, runs: int) -> None:
    """ep-a autoscaled (min 2, max 8, scaled out to 4 over its configured 2), a canary of v2 promoted on
    it, and ``runs`` controller minutes (14: at 100%, watched; 29: the retire just requested)."""
    checked(model, "user_autoscales", "ep-a", (2, 8, 4))
    promote(model, "ep-a", CANARY)
    model.invariants_hold()  # the live fleet as the rollout starts (C1, C3 compare with it)
    checked(model, "controller_runs", runs, 60)


def test_c1_the_clean_ups_restore_keeps_the_fleet_autoscaling_grew() -> None:
    """Found by the long run: a rollback while the endpoint is stuck Updating gives up its restore, so
    the clean-up finishes it once the endpoint is stable. It went back to the old config, whose count
    (2) is not the 4 autoscaling runs: it must write the restore config at the observed count, as the
    restore itself does (kept_capacity.py)."""

    def steps(model: RolloutModel) -> None:
        autoscaled_canary(model, 14)  # 100% reached: the watch keeps the old variant for a fast flip
        checked(model, "endpoint_stuck", "ep-a", True)
        checked(model, "operator_rollback", "ep-a", "none", 1)  # flipped, then stuck Updating
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)  # the restore gives up: ROLLED_BACK
        checked(model, "endpoint_stuck", "ep-a", False)
        checked(model, "controller_runs", 3, 60)  # the clean-up finishes the restore

    run(steps)


def test_c2_the_clean_ups_restore_after_the_retire_carries_the_scaling_back_first() -> None:
    """Found by the long run: the retire is stuck Updating, the rollout gives up waiting and its restore
    gives up too, then the retire lands. The clean-up's restore asked SageMaker to remove the candidate,
    which the retire's hand-over had registered: refused, at every tick, for ever. It must deregister
    the candidate first, as the restore does (scaling_handover.py)."""

    def steps(model: RolloutModel) -> None:
        autoscaled_canary(model, 29)  # the retire requested: the candidate carries the scaling
        checked(model, "endpoint_stuck", "ep-a", True)
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)  # gives up waiting for the retire: aborting
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)  # the restore gives up: FAILED
        checked(model, "endpoint_stuck", "ep-a", False)
        checked(model, "controller_runs", 3, 60)  # the retire lands; the clean-up finishes the restore

    run(steps)


def test_c1_a_restore_from_the_final_config_brings_the_old_variant_back_at_the_count_it_served_with() -> None:
    """Found by the long run: the retire is stuck Updating and the rollout gives up waiting, then the
    retire lands: the restore brings the old variant back with its config's 2 instances, not the 4
    autoscaling ran it at when the retire removed it (recorded then, with its scaling)."""

    def steps(model: RolloutModel) -> None:
        autoscaled_canary(model, 29)
        checked(model, "endpoint_stuck", "ep-a", True)
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)  # gives up waiting for the retire: aborting
        checked(model, "endpoint_stuck", "ep-a", False)
        checked(model, "controller_runs", 2, 60)  # the retire lands; the restore, then its end

    run(steps)


def test_c3_a_restore_that_lands_after_the_rollout_ended_gives_the_old_variant_its_scaling_back() -> None:
    """Found by the long run: after the retire, the restore deregisters the candidate and asks for the
    old variant back, but the endpoint is stuck Updating and the restore gives up; the rollout ends
    with no variant registered. Once the endpoint is stable, the clean-up must do what the pass does at
    an end: the variant that serves carries the scaling, and none that left stays registered."""

    def steps(model: RolloutModel) -> None:
        autoscaled_canary(model, 29)
        checked(model, "endpoint_stuck", "ep-a", True)
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)  # gives up waiting for the retire: aborting
        checked(model, "endpoint_stuck", "ep-a", False)
        checked(model, "controller_runs", 1, 60)  # the retire lands; the restore is requested
        checked(model, "endpoint_stuck", "ep-a", True)
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)  # the restore gives up: FAILED
        checked(model, "endpoint_stuck", "ep-a", False)
        checked(model, "controller_runs", 2, 60)  # the restore lands; the clean-up

    run(steps)


def test_c1_a_retire_tried_again_after_autoscaling_moved_the_old_variant_keeps_the_new_count() -> None:
    """The retire keeps the old variant's scaling and count on the record, then its hand-over is
    throttled; autoscaling moves the old variant (4 to 6) before the retire is tried again, lands stuck,
    and is given up on. The restore from the final config must bring back the 6, not the 4 first kept
    (failed with the count written once: the record is brought up to date while the variant scales)."""

    def steps(model: RolloutModel) -> None:
        autoscaled_canary(model, 28)  # the retire comes next
        checked(model, "autoscaling_fault", "throttling", "register", "ep-a", 1, False)
        checked(model, "controller_runs", 1, 60)  # scaling and count kept; the candidate's registration throttled
        checked(model, "autoscaling_acts", "ep-a", 0, 6)
        checked(model, "controller_runs", 2, 60)  # the scale-out lands; the retire again
        checked(model, "endpoint_stuck", "ep-a", True)
        checked(model, "time_passes", 3700)
        checked(model, "controller_runs", 1, 60)  # gives up waiting for the retire: aborting
        checked(model, "endpoint_stuck", "ep-a", False)
        checked(model, "controller_runs", 2, 60)  # the restore from the final config, then the end

    run(steps)
