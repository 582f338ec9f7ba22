"""A blue/green rollout through the handlers, on moto: the candidate comes up beside the live variant at
weight 0, a manual gate holds it until an operator resumes, then all traffic moves at once.

What is asserted is what a user sees: the endpoint's weights, version statuses, the announcements and
the audit trail. Time is the events' `time`.
"""

from __future__ import annotations

from datetime import timedelta

from shepherd import bootstrap
from tests.handlers.lifecycle import (
    ENDPOINT,
    START,
    controller,
    promote,
    promotion,
    registered_version,
    settled_weights,
    status,
    tick,
)
from tests.handlers.test_rollback import alarm_event, error_rate_alarm, rollback
from tests.handlers.test_rollout_analysis import resume_command

AT = START + timedelta(hours=1)
V1, V2 = "churn-predictor-v1", "churn-predictor-v2"
BLUE_GREEN = {"type": "blue_green", "post_deploy_watch_seconds": 600}


def rollout_record():
    latest = bootstrap.rollout_store().latest_rollout(ENDPOINT)
    assert latest is not None
    return latest.rollout


def run(lambda_context, sagemaker, minutes: range) -> dict[int, dict[str, float]]:
    """Tick at each minute after AT; the settled weights after each."""
    timeline = {}
    for minute in minutes:
        tick(lambda_context, AT + timedelta(minutes=minute))
        timeline[minute] = settled_weights(sagemaker)
    return timeline


def held_blue_green(world, sagemaker, lambda_context, strategy=BLUE_GREEN) -> str:
    """v2 promoted blue/green and held at its gate (v2 up at weight 0); its rollout id."""
    v2 = registered_version(world, lambda_context, 2)
    assert promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)["result"] == "started"
    run(lambda_context, sagemaker, range(3))
    return str(rollout_record().rollout_id)


def test_blue_green_holds_the_candidate_at_weight_0_until_an_operator_resumes_then_moves_all_traffic(
    world, sagemaker, lambda_context, first_deployment
):
    rollout_id = held_blue_green(world, sagemaker, lambda_context)

    # Held: green is up beside blue and takes nothing; said once, with what it waits for.
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    [held] = world.announcements("Rollout Held")
    assert (held["rollout_id"], held["gate"], held["step"], held["percent"], held["announcement"]) == (
        rollout_id,
        "manual",
        0,
        0,
        1,
    )
    assert "waiting for an operator" in held["reason"] and "100%" in held["reason"]
    assert held["on_timeout"] == "rollback" and held.get("outcome") is None
    [started] = world.announcements("Rollout Started")
    assert started["plan"] == [{"percent": 100, "bake_seconds": 0}]
    assert (status(world, 1), status(world, 2)) == ("LIVE", "DEPLOYING")

    # Ticks do not move it, and do not say it again before the reminder.
    later = run(lambda_context, sagemaker, range(3, 30))
    assert all(weights == {V1: 1.0, V2: 0.0} for weights in later.values())
    assert len(world.announcements("Rollout Held")) == 1
    assert world.announcements("Rollout Traffic Shifted") == []

    answer = controller.lambda_handler(resume_command(rollout_id, AT + timedelta(minutes=30)), lambda_context)

    assert answer == {"answer": "Rollout Resumed"}
    [resumed] = world.announcements("Rollout Resumed")
    assert (resumed["percent"], resumed["requested_by"]) == (0, "oncall@example.com")
    gate = rollout_record().gate_of(0)
    assert gate is not None and gate.opened_by == "oncall@example.com"

    # All traffic at once, then the watch window (600 s), then the old variant goes.
    after = run(lambda_context, sagemaker, range(30, 45))
    assert after[30] == {V1: 0.0, V2: 1.0}
    [shifted] = world.announcements("Rollout Traffic Shifted")
    assert (shifted["from_percent"], shifted["to_percent"]) == (0, 100)
    [completed] = world.announcements("Rollout Completed")
    assert completed["watch_until"] is not None
    assert after[39] == {V1: 0.0, V2: 1.0}  # watching: blue kept at weight 0
    assert after[44] == {V2: 1.0}
    assert rollout_record().phase == "COMPLETED"
    assert (status(world, 1), status(world, 2)) == ("RETIRED", "LIVE")
    audit = [entry.action for entry in bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT)]
    assert {"held", "resumed", "traffic 0% -> 100%"} <= set(audit)


def test_an_alarm_during_the_gate_rolls_the_rollout_back(world, sagemaker, lambda_context, first_deployment):
    held_blue_green(world, sagemaker, lambda_context)

    response = rollback.lambda_handler(
        alarm_event("eventbridge", error_rate_alarm(world), at=AT + timedelta(minutes=4)), lambda_context
    )
    run(lambda_context, sagemaker, range(5, 9))

    assert response["results"][0]["result"] == "rolled_back"
    assert settled_weights(sagemaker) == {V1: 1.0}
    assert rollout_record().phase == "ROLLED_BACK"
    assert (status(world, 1), status(world, 2)) == ("LIVE", "ROLLED_BACK")
    assert world.announcements("Rollout Traffic Shifted") == []  # green never served


def test_a_duplicate_resume_gets_the_same_answer_and_opens_the_gate_once(
    world, sagemaker, lambda_context, first_deployment
):
    rollout_id = held_blue_green(world, sagemaker, lambda_context)
    command = resume_command(rollout_id, AT + timedelta(minutes=5))

    first = controller.lambda_handler(command, lambda_context)
    run(lambda_context, sagemaker, range(5, 7))  # the rollout moves on meanwhile
    again = controller.lambda_handler(command, lambda_context)

    assert first == again == {"answer": "Rollout Resumed"}
    assert world.announcements("Rollout Resume Refused") == []
    assert len({a["command_id"] for a in world.announcements("Rollout Resumed")}) == 1
    resumed = [e for e in bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT) if e.action == "resumed"]
    assert len(resumed) == 1
    assert settled_weights(sagemaker) == {V1: 0.0, V2: 1.0}


def test_a_resume_before_the_gate_holds_is_refused(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, BLUE_GREEN, at=AT), lambda_context)
    tick(lambda_context, AT)  # the candidate is being deployed: nothing holds yet

    answer = controller.lambda_handler(
        resume_command(rollout_record().rollout_id, AT + timedelta(seconds=30)), lambda_context
    )

    assert answer == {"answer": "Rollout Resume Refused"}
    [refused] = world.announcements("Rollout Resume Refused")
    assert "not held by canary analysis or a manual gate" in refused["reason"]


def test_a_gate_nobody_opens_is_announced_again_then_fails_the_rollout_at_its_deadline(
    world, sagemaker, lambda_context, first_deployment
):
    judge = {"enabled": False, "max_hold_seconds": 7200, "hold_reminder_seconds": 3600}
    strategy = {**BLUE_GREEN, "analysis": {"judge": judge}}
    held_blue_green(world, sagemaker, lambda_context, strategy)
    held_since = rollout_record().gates[0].held_since

    run(lambda_context, sagemaker, range(62, 63))  # an hour on: the reminder
    run(lambda_context, sagemaker, range(125, 130))  # two hours on: the deadline, then the restore

    assert [h["announcement"] for h in world.announcements("Rollout Held")] == [1, 2]
    [failed] = world.announcements("Rollout Failed")
    assert "no operator resumed the rollout within 7200 s" in failed["reason"]
    assert rollout_record().phase == "FAILED"
    assert rollout_record().gates[0].held_since == held_since
    assert settled_weights(sagemaker) == {V1: 1.0}
    assert (status(world, 1), status(world, 2)) == ("LIVE", "FAILED")


def test_a_first_deployment_with_blue_green_has_nothing_to_hold(world, sagemaker, lambda_context):
    v1 = registered_version(world, lambda_context, 1)
    promote.lambda_handler(promotion(v1, BLUE_GREEN, at=AT), lambda_context)

    run(lambda_context, sagemaker, range(3))

    assert settled_weights(sagemaker) == {V1: 1.0}
    assert world.announcements("Rollout Held") == []
    assert rollout_record().phase == "COMPLETED"
