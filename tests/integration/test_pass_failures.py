"""A controller pass that fails anywhere, at any AWS call, is counted, timed and bounded (issue 22, defect 2).

Through the handlers on moto, faults injected as the network would produce them (test_fault_injection.py):
an HTTP error, or no answer at all (a connection error, which the SDK retries and then raises as a
`BotoCoreError`, not a `ClientError`). What is asserted is what a user sees: endpoint weights, version
statuses, the lock, the announcements and the tick's error count.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from shepherd import bootstrap
from shepherd_cli.local import cloudwatch_emulator
from tests.handlers.lifecycle import ENDPOINT, promote, promotion, registered_version, settled_weights, status, tick
from tests.handlers.test_rollout_analysis import judged_canary
from tests.integration import test_fault_injection as fault_injection
from tests.integration.test_fault_injection import AT, V1, V2, rollout_record, shifted
from tests.integration.test_rollout_failures import lock_holder

lambda_context = fault_injection.lambda_context
sagemaker = fault_injection.sagemaker
first_deployment = fault_injection.first_deployment
faults = fault_injection.faults
candidate_joined = fault_injection.candidate_joined

FOREVER = 10**6
DENIED = (400, {"__type": "AccessDeniedException", "message": "not authorized to perform events:PutEvents"})


def unreachable() -> Exception:
    return EndpointConnectionError(endpoint_url="https://unreachable.invalid/")


def minutes(*spans: range) -> list[int]:
    return [minute for span in spans for minute in span]


def run(lambda_context, at_minutes: list[int]) -> list[dict[str, Any]]:
    """Ticks at AT + each minute; every one returns (a failing pass is the rollout's, not the tick's)."""
    return [tick(lambda_context, AT + timedelta(minutes=minute)) for minute in at_minutes]


def failing_since(world) -> str | None:
    value = rollout_record(world)["rollout"]["M"].get("failing_since", {"NULL": True})
    return value.get("S")


@pytest.fixture
def judged_at_10(world, sagemaker, lambda_context, first_deployment) -> int:
    """v2 at 10% with the canary judge on (no metrics published: each look is INCONCLUSIVE)."""
    cloudwatch_emulator.install()  # GetMetricData as CloudWatch answers it (moto computes no percentiles)
    v2 = registered_version(world, lambda_context, 2)
    strategy = judged_canary(max_extension_seconds=60, max_hold_seconds=7200)
    assert promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)["result"] == "started"
    run(lambda_context, [0, 1, 2])  # joins, 10%, reached (the judge looks from the next pass on)
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    world.announcements()
    world.seen.clear()
    return v2


# --- the canary judge's read ------------------------------------------------------------------------------


def test_get_metric_data_unreachable_is_no_new_data_for_the_judge_not_a_failed_pass(
    world, sagemaker, lambda_context, faults, judged_at_10
):
    read = faults("cloudwatch", "GetMetricData", raises=unreachable, times=FOREVER)

    responses = run(lambda_context, [3, 4])

    assert read.injected > 0 and [response["errors"] for response in responses] == [0, 0]
    [step] = bootstrap.rollout_store().latest_rollout(ENDPOINT).rollout.analysis  # type: ignore[union-attr]
    assert step.metrics_unavailable == 2  # one per look, as for throttling: the bake is extended, never failed
    assert failing_since(world) is None


def test_a_pass_failing_before_its_decision_is_timed_and_the_rollout_ends_at_the_deadline(
    world, sagemaker, lambda_context, faults, judged_at_10
):
    # CloudWatch answers every look with a body the adapter cannot read (a value missing from its series):
    # the judge fails before the pass decides anything, on every pass.
    def garbled() -> tuple[int, dict[str, Any]]:
        series = {"Id": "invocations_c", "StatusCode": "Complete", "Timestamps": [1795770000], "Values": []}
        return 200, {"MetricDataResults": [series]}

    faults("cloudwatch", "GetMetricData", respond=garbled, times=FOREVER)

    early = run(lambda_context, [3, 4, 30])

    # Each failing pass is counted, and timed from the first failure (kept, not restarted).
    assert [response["errors"] for response in early] == [1, 1, 1]
    assert failing_since(world) == "2026-11-20T11:03:00Z"
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1} and lock_holder(world) is not None

    # The update deadline (an hour) after the first failure: the candidate loses its traffic, the
    # rollout fails saying why, the endpoint is released.
    run(lambda_context, minutes(range(63, 70)))

    assert settled_weights(sagemaker) == {V1: 1.0}
    assert status(world, judged_at_10) == "FAILED" and lock_holder(world) is None
    [failed] = world.announcements("Rollout Failed")
    assert failed["reason"].startswith("still failing after 3600 s: ")


# --- the outbox ---------------------------------------------------------------------------------------------


def test_put_events_refused_for_good_does_not_freeze_the_rollout_and_its_announcements_wait(
    world, sagemaker, lambda_context, faults, candidate_joined
):
    outage = [True]
    refused = faults("events", "PutEvents", respond=lambda: DENIED, times=FOREVER, armed=lambda: outage[0])

    responses = run(lambda_context, minutes(range(1, 16)))

    # The rollout went on deciding: 10%, bake, 100%, watch window, retired.
    assert refused.injected > 0
    assert settled_weights(sagemaker) == {V2: 1.0}
    assert status(world, candidate_joined) == "LIVE" and lock_holder(world) is None
    assert world.announcements() == []
    assert any(response["errors"] for response in responses)  # the failed publishes are counted

    outage[0] = False
    tick(lambda_context, AT + timedelta(minutes=16))

    assert shifted(world) == [(0, 10), (10, 100)]  # kept in the outbox, published once PutEvents works
    assert len(world.announcements("Rollout Completed")) == 1
    assert len(world.announcements("Model Version Retired")) == 1


# --- every AWS call of a pass, failing for good -------------------------------------------------------------

# (service, operation, only requests whose body holds this, what the rollout comes to)
PASS_CALLS = [
    ("dynamodb", "Query", "OUTBOX", "completes"),  # the outbox: read before the pass decides
    ("events", "PutEvents", None, "completes"),
    # Published announcements dropped from the outbox (a transaction of deletes only): sent again later.
    ("dynamodb", "TransactWriteItems", '"TransactItems": [{"Delete"', "completes"),
    ("sagemaker", "DescribeEndpoint", None, "fails"),
    ("cloudwatch", "DescribeAlarms", None, "fails"),
    ("sagemaker", "UpdateEndpointWeightsAndCapacities", None, "fails"),
]


@pytest.mark.parametrize(("service", "operation", "about", "end"), PASS_CALLS)
def test_a_call_of_the_pass_unreachable_for_good_is_counted_and_the_rollout_still_ends(
    world, sagemaker, lambda_context, faults, candidate_joined, service, operation, about, end
):
    fault = faults(service, operation, raises=unreachable, times=FOREVER, holding=about)

    # Two update deadlines: one to give up, one for a restore that cannot see the endpoint either.
    responses = run(lambda_context, minutes(range(1, 16), range(20, 140, 5)))

    assert fault.injected > 0
    assert any(response["errors"] for response in responses)  # counted (RolloutErrors), never hidden
    assert lock_holder(world) is None  # bounded: the endpoint is released either way
    if end == "completes":
        assert settled_weights(sagemaker) == {V2: 1.0}
        assert status(world, candidate_joined) == "LIVE"
    else:
        assert status(world, candidate_joined) == "FAILED"
        assert not settled_weights(sagemaker).get(V2)  # the candidate kept no traffic
        fault.times = 0
        tick(lambda_context, AT + timedelta(minutes=141))
        [failed] = world.announcements("Rollout Failed")
        assert "still failing after 3600 s" in failed["reason"]
