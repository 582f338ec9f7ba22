"""The canary judge in the controller, through the handlers on moto: fetch, verdict, store, announce, act.

SageMaker's per-variant metrics are published to (moto's) CloudWatch as the endpoint would; moto
computes no percentiles, so the local-mode CloudWatch emulator is installed, as LocalShepherd does.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from shepherd import bootstrap
from shepherd.adapters.cloudwatch import CloudWatchVariantMetrics
from shepherd.analysis.ports import MetricsUnavailable
from shepherd.kernel.errors import TransientError
from shepherd_cli.local import cloudwatch_emulator
from tests.handlers.conftest import sample_event
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

AT = START + timedelta(hours=1)
V1, V2 = "churn-predictor-v1", "churn-predictor-v2"


def judged_canary(**judge: Any) -> dict[str, Any]:
    return {
        "type": "canary",
        "canary_percent": 10,
        "bake_seconds": 600,
        "post_deploy_watch_seconds": 60,
        "analysis": {"judge": judge},
    }


def publish(variant: str, minutes: int, latency_ms: float, seed: int, requests: int) -> None:
    """A variant's SageMaker metrics for `minutes` minutes from 10 minutes before AT (the judge reads the
    baseline's minutes before the step for its p99 threshold), as SageMaker publishes them: per-request
    latencies (log-normal, 200 distinct values a minute, each counted for its share of the requests)."""
    cloudwatch_emulator.install()  # percentiles and trimmed counts (moto has neither)
    client = boto3.client("cloudwatch")
    noise = random.Random(seed)
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
    for minute in range(-10, minutes):
        at = AT + timedelta(minutes=minute, seconds=30)
        level = latency_ms * 1000 * noise.lognormvariate(0, 0.03)  # microseconds, as SageMaker reports
        values = [level * noise.lognormvariate(0, 0.4) for _ in range(200)]
        client.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": at, "Value": requests},
                {"MetricName": "Invocation5XXErrors", "Dimensions": dimensions, "Timestamp": at, "Value": 0},
                {"MetricName": "Invocation4XXErrors", "Dimensions": dimensions, "Timestamp": at, "Value": 0},
                {
                    "MetricName": "ModelLatency",
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Values": values,
                    "Counts": [requests / len(values)] * len(values),
                    "Unit": "Microseconds",
                },
            ],
        )


def run(lambda_context, sagemaker, minutes: int, start: datetime = AT) -> dict[int, dict[str, float]]:
    timeline = {}
    for minute in range(minutes):
        tick(lambda_context, start + timedelta(minutes=minute))
        timeline[minute] = settled_weights(sagemaker)
    return timeline


def rollout_record():
    latest = bootstrap.rollout_store().latest_rollout(ENDPOINT)
    assert latest is not None
    return latest.rollout


def test_a_candidate_40_percent_slower_is_rolled_back_by_the_judge_with_no_alarm(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    publish(V1, 40, latency_ms=50, seed=1, requests=900)
    publish(V2, 40, latency_ms=70, seed=2, requests=100)  # 40% slower, far under the 300 ms alarm
    assert promote.lambda_handler(promotion(v2, judged_canary(), at=AT), lambda_context)["result"] == "started"

    timeline = run(lambda_context, sagemaker, 14)

    assert timeline[1] == {V1: 0.9, V2: 0.1}
    rolled_back_at = min(minute for minute, weights in timeline.items() if minute > 1 and weights.get(V2, 0) == 0)
    # Before the 10-minute bake is over (latency is critical), though the first 3 minutes are warm-up
    # and a minute is judged 2 minutes after it began (CloudWatch publishes late).
    assert rolled_back_at < 12
    assert status(world, v2) == "ROLLED_BACK"
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert rolled_back["trigger"] == "analysis"
    # The median's paired minutes fail first (5 after the warm-up); the tail share needs 500 requests.
    assert "latency_p50" in rolled_back["reason"]
    assert rolled_back.get("command_id") is None  # the judge is not an operator's command
    [completed] = world.announcements("Canary Analysis Completed")
    assert (completed["step"], completed["percent"], completed["outcome"], completed["decision"]) == (
        0,
        10,
        "FAIL",
        "rollback",
    )
    latency = {m["metric"]: m for m in completed["metrics"]}["latency_p50"]
    assert latency["outcome"] == "FAIL" and 0.3 < latency["relative_effect"] < 0.5
    # No alarm fired: the per-rollout alarms exist (until clean-up) but none is in ALARM.
    alarms = boto3.client("cloudwatch").describe_alarms(StateValue="ALARM")["MetricAlarms"]
    assert alarms == []
    # The incident holds the evidence; the record keeps the verdict of the step.
    [incident] = bootstrap.rollout_store().incidents(ENDPOINT)
    assert incident.trigger == "analysis" and incident.alarm_name is None
    assert incident.analysis is not None and "latency_p50" in incident.analysis.failing()
    [step] = rollout_record().analysis
    assert (step.step, step.decision, step.verdict.outcome) == (0, "rollback", "FAIL")
    assert len(step.series["model_latency_p99"].candidate) == len(step.series["model_latency_p99"].baseline) >= 2


def test_a_candidate_like_the_live_one_passes_and_completes(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    # 500 requests/s, 50 to the candidate: without errors on either side, the 15,000 requests judged
    # within the bake bound the candidate's 5xx rate below 0.1% (PASS on evidence). The p99 tail is
    # left out: its PASS needs hundreds of the candidate's slow requests, which this fixture's 200
    # latencies a minute cannot give (tests/unit/test_canary_judge.py and the local-mode e2e test it).
    publish(V1, 40, latency_ms=50, seed=1, requests=27000)
    publish(V2, 40, latency_ms=50, seed=2, requests=3000)
    judge = {"default_metrics": {"latency_p99": {"enabled": False}}}
    promote.lambda_handler(promotion(v2, judged_canary(**judge), at=AT), lambda_context)

    timeline = run(lambda_context, sagemaker, 16)

    assert timeline[1] == {V1: 0.9, V2: 0.1}
    assert timeline[9] == {V1: 0.9, V2: 0.1}  # baking
    assert timeline[15][V2] == 1.0
    [completed] = world.announcements("Canary Analysis Completed")
    assert (completed["outcome"], completed["decision"]) == ("PASS", "advance")
    assert completed["extended_seconds"] <= 120  # 3 minutes of warm-up and 2 of publishing delay are not judged
    assert {m["metric"] for m in completed["metrics"]} == {"errors_5xx", "errors_4xx", "latency_p50"}
    assert world.announcements("Rollout Rolled Back") == []
    assert status(world, v2) == "LIVE"


def resume_command(rollout_id: str, at: datetime) -> dict[str, Any]:
    event = sample_event("model-rollout-resume-requested.json")
    event["id"] = str(uuid.uuid4())
    event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["detail"]["rollout_id"] = rollout_id
    return event


def test_no_data_extends_the_bake_then_holds_until_an_operator_resumes(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)  # no traffic at all: every metric INCONCLUSIVE
    promote.lambda_handler(promotion(v2, judged_canary(max_extension_seconds=180), at=AT), lambda_context)

    timeline = run(lambda_context, sagemaker, 20)

    assert timeline[19] == {V1: 0.9, V2: 0.1}  # bake (10 min) + extension (3 min) over: held
    [completed] = world.announcements("Canary Analysis Completed")
    assert (completed["outcome"], completed["decision"], completed["extended_seconds"]) == (
        "INCONCLUSIVE",
        "hold",
        180,
    )
    rollout_id = rollout_record().rollout_id

    answer = controller.lambda_handler(resume_command(rollout_id, AT + timedelta(minutes=20)), lambda_context)
    later = run(lambda_context, sagemaker, 3, start=AT + timedelta(minutes=20))

    assert answer == {"answer": "Rollout Resumed"}
    [resumed] = world.announcements("Rollout Resumed")
    assert (resumed["rollout_id"], resumed["percent"], resumed["requested_by"]) == (
        rollout_id,
        10,
        "oncall@example.com",
    )
    assert resumed["command_id"]
    assert later[2][V2] == 1.0
    assert rollout_record().analysis[0].resumed_by == "oncall@example.com"


def test_a_resume_of_a_rollout_that_is_not_held_is_refused_with_the_reason(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, judged_canary(), at=AT), lambda_context)
    run(lambda_context, sagemaker, 3)
    rollout_id = rollout_record().rollout_id

    answer = controller.lambda_handler(resume_command(rollout_id, AT + timedelta(minutes=3)), lambda_context)

    assert answer == {"answer": "Rollout Resume Refused"}
    [refused] = world.announcements("Rollout Resume Refused")
    assert "not held by canary analysis" in refused["reason"]
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}  # still baking, untouched


@pytest.mark.parametrize(
    "failure",
    [TransientError("GetMetricData: Throttling"), MetricsUnavailable("GetMetricData refused: AccessDenied")],
)
def test_metrics_that_cannot_be_read_never_roll_back_they_hold(
    world, sagemaker, lambda_context, first_deployment, monkeypatch, failure
):
    # moto cannot make GetMetricData fail on demand: the adapter raises what it raises on throttling
    # (after the SDK's retries) or on a refusal (tested with the adapter in test_cloudwatch_variant_metrics).
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(CloudWatchVariantMetrics, "variant_series", unavailable)
    v2 = registered_version(world, lambda_context, 2)
    strategy = judged_canary(max_extension_seconds=60, on_inconclusive="rollback")
    promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)

    timeline = run(lambda_context, sagemaker, 15)

    assert timeline[14] == {V1: 0.9, V2: 0.1}
    assert world.announcements("Rollout Rolled Back") == []
    [completed] = world.announcements("Canary Analysis Completed")
    assert (completed["outcome"], completed["decision"]) == ("INCONCLUSIVE", "hold")
    assert (
        completed["waiting"] == "the metrics could not be read from CloudWatch: nothing can be decided until they can"
    )
    [held] = world.announcements("Rollout Held")
    assert held["waiting"] == completed["waiting"]  # what the operator reads says why nothing is decided
    [step] = rollout_record().analysis
    assert step.metrics_unavailable >= 10  # one per tick of the bake and its extension
    assert status(world, v2) == "DEPLOYING"


@pytest.mark.parametrize("judge", [{"enabled": False}])
def test_with_the_judge_off_the_bake_alone_decides(world, sagemaker, lambda_context, first_deployment, judge):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, judged_canary(**judge), at=AT), lambda_context)

    timeline = run(lambda_context, sagemaker, 14)

    assert timeline[13][V2] == 1.0
    assert world.announcements("Canary Analysis Completed") == []
    assert rollout_record().analysis == ()


def test_a_resume_command_without_its_rollout_id_is_refused_and_changes_nothing(
    world, sagemaker, lambda_context, first_deployment
):
    event = resume_command("unused", AT)
    del event["detail"]["rollout_id"]  # "the held one: never another" - so it is required

    response = controller.lambda_handler(event, lambda_context)

    assert response["result"] == "refused"
    [refused] = world.announcements("Command Refused")
    assert refused["command_id"] == event["id"] and refused["reason"].startswith("detail.rollout_id")
    assert world.announcements("Rollout Resumed") == world.announcements("Rollout Resume Refused") == []


# --- holding is not forgetting -------------------------------------------------------------------

# Errors only: the latency metrics need CloudWatch's trimmed counts, which these tests do not publish.
ERRORS_ONLY = {"latency_p50": {"enabled": False}, "latency_p99": {"enabled": False}}


def publish_errors(variant: str, first: int, minutes: int, requests: int, errors: int) -> None:
    """A variant's request and 5xx counts, from minute `first` after AT, as SageMaker publishes them."""
    client = boto3.client("cloudwatch")
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
    for minute in range(first, first + minutes):
        at = AT + timedelta(minutes=minute, seconds=30)
        client.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": at, "Value": requests},
                {"MetricName": "Invocation5XXErrors", "Dimensions": dimensions, "Timestamp": at, "Value": errors},
                {"MetricName": "Invocation4XXErrors", "Dimensions": dimensions, "Timestamp": at, "Value": 0},
            ],
        )


def held_canary(**judge: Any) -> dict[str, Any]:
    return judged_canary(max_extension_seconds=60, hold_reminder_seconds=300, default_metrics=ERRORS_ONLY, **judge)


def test_a_held_step_whose_candidate_starts_failing_is_rolled_back_without_an_operator(
    world, sagemaker, lambda_context, first_deployment
):
    # Given a canary held for want of traffic (the live variant serves, the candidate has no requests)
    v2 = registered_version(world, lambda_context, 2)
    publish_errors(V1, 0, 60, requests=900, errors=0)
    promote.lambda_handler(promotion(v2, held_canary(), at=AT), lambda_context)
    run(lambda_context, sagemaker, 20)
    held = world.announcements("Rollout Held")[0]
    assert (held["percent"], held["outcome"], held["announcement"], held["on_timeout"]) == (
        10,
        "INCONCLUSIVE",
        1,
        "rollback",
    )
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    # When its traffic arrives, one request in five failing
    publish_errors(V2, 20, 40, requests=100, errors=20)

    timeline = run(lambda_context, sagemaker, 20, start=AT + timedelta(minutes=20))

    # Then the judge, still looking at the held step, rolls it back: no operator, no alarm
    assert timeline[19] == {V1: 1.0} or timeline[19].get(V2, 0) == 0
    assert status(world, v2) == "ROLLED_BACK"
    [rolled_back] = world.announcements("Rollout Rolled Back")
    assert rolled_back["trigger"] == "analysis" and "errors_5xx" in rolled_back["reason"]
    decisions = [a["decision"] for a in world.announcements("Canary Analysis Completed")]
    assert decisions == ["hold", "rollback"]  # the hold, then its end
    assert bootstrap.rollout_store().lock_holder(ENDPOINT) is None
    step = rollout_record().analysis[0]
    assert (step.decision, step.held_since is not None, step.hold_timed_out) == ("rollback", True, False)


@pytest.mark.parametrize(("on_hold_timeout", "ends"), [("rollback", "ROLLED_BACK"), ("advance", "LIVE")])
def test_a_hold_that_reaches_its_deadline_does_what_the_strategy_says_and_releases_the_lock(
    world, sagemaker, lambda_context, first_deployment, on_hold_timeout, ends
):
    v2 = registered_version(world, lambda_context, 2)  # no traffic at all: INCONCLUSIVE throughout
    strategy = held_canary(max_hold_seconds=900, on_hold_timeout=on_hold_timeout)
    promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)

    run(lambda_context, sagemaker, 40)

    assert status(world, v2) == ends
    assert bootstrap.rollout_store().lock_holder(ENDPOINT) is None
    helds = world.announcements("Rollout Held")
    assert [held["announcement"] for held in helds] == [1, 2, 3]  # at the start, then every 300 s
    assert len({held["deadline"] for held in helds}) == 1
    decisions = [a["decision"] for a in world.announcements("Canary Analysis Completed")]
    assert decisions == ["hold", on_hold_timeout]
    trail = bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT)
    assert [e.action for e in trail if e.action in ("held", "hold timed out")] == ["held", "hold timed out"]
    if on_hold_timeout == "rollback":
        [rolled_back] = world.announcements("Rollout Rolled Back")
        assert rolled_back["trigger"] == "analysis"
        assert "held at 10% for 900 s without a decision" in rolled_back["reason"]


def test_a_duplicate_resume_gets_the_same_answer_and_resumes_once(world, sagemaker, lambda_context, first_deployment):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, held_canary(), at=AT), lambda_context)
    run(lambda_context, sagemaker, 14)
    command = resume_command(rollout_record().rollout_id, AT + timedelta(minutes=14))

    first = controller.lambda_handler(command, lambda_context)
    again = controller.lambda_handler(command, lambda_context)

    assert first == again == {"answer": "Rollout Resumed"}
    assert world.announcements("Rollout Resume Refused") == []
    assert len({a["command_id"] for a in world.announcements("Rollout Resumed")}) == 1
    resumed = [e for e in bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT) if e.action == "resumed"]
    assert len(resumed) == 1


# --- advisory mode -----------------------------------------------------------------------------------


def test_in_advisory_mode_the_judge_announces_a_rollback_it_does_not_make(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    publish_errors(V1, 0, 40, requests=900, errors=0)
    publish_errors(V2, 0, 40, requests=100, errors=20)  # would be rolled back when enforced
    promote.lambda_handler(promotion(v2, held_canary(mode="advisory"), at=AT), lambda_context)

    timeline = run(lambda_context, sagemaker, 16)

    assert timeline[9] == {V1: 0.9, V2: 0.1}  # baked for its 10 minutes all the same
    assert timeline[15][V2] == 1.0
    [completed] = world.announcements("Canary Analysis Completed")
    assert (completed["decision"], completed["advisory"], completed["outcome"]) == ("rollback", True, "FAIL")
    assert world.announcements("Rollout Rolled Back") == []
    [step] = rollout_record().analysis
    assert (step.decision, step.advisory) == ("rollback", True)


def test_a_replay_judges_the_steps_again_from_cloudwatch_minute_by_minute_under_another_config(
    world, sagemaker, lambda_context, first_deployment
):
    from shepherd.analysis.config import JudgeConfig
    from shepherd_cli.replay import replay

    # Given a rollout the advisory judge would have rolled back for its 5xx errors
    v2 = registered_version(world, lambda_context, 2)
    publish_errors(V1, 0, 40, requests=900, errors=0)
    publish_errors(V2, 0, 40, requests=100, errors=20)
    promote.lambda_handler(promotion(v2, held_canary(mode="advisory"), at=AT), lambda_context)
    run(lambda_context, sagemaker, 16)
    record = rollout_record()
    trail = bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT)
    metrics = CloudWatchVariantMetrics(boto3.client("cloudwatch"))
    # (the entries that saw a step reached say which one in a field, stored with them)
    reached = [
        (e.reached_step, e.detail) for e in trail if e.rollout_id == record.rollout_id and e.reached_step is not None
    ]
    assert [(step, detail.split(";")[0]) for step, detail in reached] == [(0, "reached 10%"), (1, "reached 100%")]

    # When it is replayed under its own configuration, then under one that ignores 5xx errors
    same = replay(record, trail, record.strategy.analysis.judge, metrics)
    # (100 requests a minute without a 4xx are not yet evidence of no regression at the bake's end:
    # INCONCLUSIVE, and this configuration then advances at once.)
    lenient = JudgeConfig.model_validate(
        {
            "default_metrics": {**ERRORS_ONLY, "errors_5xx": {"enabled": False}},
            "max_extension_seconds": 0,
            "on_inconclusive": "advance",
        }
    )
    other = replay(record, trail, lenient, metrics)

    # Then each minute of the 10-minute bake is judged again, and the decisions are told apart
    [step] = same["steps"]
    assert [m["minute"] for m in step["minutes"]] == list(range(1, len(step["minutes"]) + 1))
    assert len(step["minutes"]) >= 10
    assert (step["happened"]["decision"], step["happened"]["advisory"], step["replayed"]["decision"]) == (
        "rollback",
        True,
        "rollback",
    )
    assert step["replayed"]["decided_at"] == step["happened"]["decided_at"] and not step["differs"]
    first = next(m for m in step["minutes"] if m["decided_now"])
    assert (first["outcome"], first["metrics"]["errors_5xx"], first["decision"]) == ("FAIL", "FAIL", "rollback")
    [step] = other["steps"]
    assert set(step["minutes"][-1]["metrics"]) == {"errors_4xx"}
    assert (step["replayed"]["decision"], step["differs"]) == ("advance", True)
