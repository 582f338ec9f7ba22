"""A fresh baseline (`analysis.judge.baseline: fresh`) through the handlers, on moto with the emulator.

The live version is deployed again beside the candidate, on the candidate's instance type and count,
so that the judge compares two variants that started cold together on the same capacity. What a user
sees: the shift config's three variants, each step's weights, the series the judge stored, one weight
flip on a rollback, and no fresh variant left once the rollout is over.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from shepherd import bootstrap
from shepherd.adapters.cloudwatch import CloudWatchVariantMetrics
from shepherd.rollouts.record import Rollout
from shepherd_cli.endpoint_view import endpoint_status
from shepherd_cli.replay import replay
from shepherd_cli.target import Target
from tests.handlers.lifecycle import ENDPOINT, promote, promotion, registered_version, settled_weights, status
from tests.handlers.test_rollback import AT, alarm_event, error_rate_alarm, hooked, rollback
from tests.handlers.test_rollout_analysis import publish, run

V1, V2 = "churn-predictor-v1", "churn-predictor-v2"
V1_MODEL = "shepherd-test--churn-predictor-v1"
V2_MODEL = "shepherd-test--churn-predictor-v2"


def fresh_canary(**judge: Any) -> dict[str, Any]:
    return {
        "type": "canary",
        "canary_percent": 10,
        "bake_seconds": 600,
        "post_deploy_watch_seconds": 60,
        "analysis": {"judge": {"baseline": "fresh", **judge}},
    }


def the_rollout() -> Rollout:
    latest = bootstrap.rollout_store().latest_rollout(ENDPOINT)
    assert latest is not None
    return latest.rollout


def exists(call: Any) -> bool:
    try:
        call()
    except ClientError:
        return False
    return True


def test_the_shift_config_runs_the_live_model_again_on_the_candidates_capacity_and_the_judge_reads_it(
    world, sagemaker, lambda_context, first_deployment
):
    # Given v1 live on one ml.m5.large, and a candidate asked for on two ml.c5.xlarge
    v2 = registered_version(world, lambda_context, 2)
    request = promotion(v2, fresh_canary(), at=AT, instance_type="ml.c5.xlarge", initial_instance_count=2)
    assert promote.lambda_handler(request, lambda_context)["result"] == "started"
    fresh = the_rollout().fresh_baseline
    assert fresh is not None and fresh.variant_name.startswith(f"{V1}-baseline-")
    # The candidate and the fresh baseline serve alike; the live variant, on other instances, does not.
    publish(V2, 12, latency_ms=60, seed=7, requests=100)
    publish(fresh.variant_name, 12, latency_ms=60, seed=7, requests=100)
    publish(V1, 12, latency_ms=30, seed=1, requests=800)

    # When the controller runs into the bake
    timeline = run(lambda_context, sagemaker, 9)

    # Then the shift config holds three variants, the fresh one running v1's model on the candidate's capacity
    config = sagemaker.describe_endpoint_config(EndpointConfigName=the_rollout().shift_config)
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    assert set(variants) == {V1, V2, fresh.variant_name}
    assert (variants[fresh.variant_name]["ModelName"], variants[V1]["ModelName"]) == (V1_MODEL, V1_MODEL)
    shape = {name: (v["InstanceType"], v["InitialInstanceCount"]) for name, v in variants.items()}
    assert shape == {V1: ("ml.m5.large", 1), V2: ("ml.c5.xlarge", 2), fresh.variant_name: ("ml.c5.xlarge", 2)}
    # ...the step gives the candidate 10%, the fresh baseline 10% and the live variant the other 80%
    assert timeline[8] == {V1: 0.8, V2: 0.1, fresh.variant_name: 0.1}
    # ...and the judge compared the candidate with the fresh baseline: the series it stored are equal.
    [step] = the_rollout().analysis
    latency = step.series["model_latency_p99"]
    assert len(latency.candidate) >= 2 and latency.baseline == latency.candidate
    # `shepherd status` names it for what it is: version 1 again, the judge's baseline.
    outputs = {"RegistryTableName": world.table, "ArtifactBucketName": world.bucket, "EventBusName": world.bus}
    target = Target("stack", "shepherd-test-stack", "eu-west-1", outputs, boto3.session.Session())
    shown = {
        v["variant_name"]: (v["version"], v["role"]) for v in endpoint_status(target, ENDPOINT)["endpoint"]["variants"]
    }
    assert shown == {V1: (1, "serving"), V2: (2, "candidate"), fresh.variant_name: (1, "baseline")}
    # `shepherd analysis replay` reads the same variants again: the candidate against the fresh baseline.
    read: list[str] = []

    class Recording(CloudWatchVariantMetrics):
        def variant_series(self, series, endpoint, candidate, baseline, start, end):  # type: ignore[no-untyped-def]
            read.append(baseline)
            return super().variant_series(series, endpoint, candidate, baseline, start, end)

    trail = bootstrap.rollout_store().endpoint_audit_trail(ENDPOINT)
    rollout = the_rollout()
    replay(rollout, trail, rollout.strategy.analysis.judge, Recording(boto3.client("cloudwatch")))
    assert read and set(read) == {fresh.variant_name}


def test_a_rollback_flips_candidate_and_fresh_baseline_to_0_in_one_call_and_keeps_the_live_model(
    world, sagemaker, lambda_context, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, fresh_canary(), at=AT), lambda_context)
    run(lambda_context, sagemaker, 3)
    fresh = the_rollout().fresh_baseline
    assert fresh is not None
    assert settled_weights(sagemaker) == {V1: 0.8, V2: 0.1, fresh.variant_name: 0.1}

    calls: list[tuple[str, dict[str, Any]]] = []
    with hooked(lambda model, params, **_: calls.append((model.name, params)), "provide-client-params.sagemaker.*"):
        event = alarm_event("lambda-action", error_rate_alarm(world), at=AT + timedelta(minutes=3))
        [outcome] = rollback.lambda_handler(event, lambda_context)["results"]

    assert outcome["result"] == "rolled_back"
    [(name, params)] = calls
    assert name == "UpdateEndpointWeightsAndCapacities"
    desired = {item["VariantName"]: item["DesiredWeight"] for item in params["DesiredWeightsAndCapacities"]}
    assert desired == {V1: 1.0, V2: 0.0, fresh.variant_name: 0.0}
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0, fresh.variant_name: 0.0}
    [incident] = bootstrap.rollout_store().incidents(ENDPOINT)
    assert incident.weights_after == desired

    # The controller then restores v1's config and cleans up: the fresh variant is gone, v1's model stays.
    run(lambda_context, sagemaker, 4, start=AT + timedelta(minutes=4))
    assert settled_weights(sagemaker) == {V1: 1.0}
    assert (status(world, 1), status(world, v2)) == ("LIVE", "ROLLED_BACK")
    assert exists(lambda: sagemaker.describe_model(ModelName=V1_MODEL))
    assert not exists(lambda: sagemaker.describe_model(ModelName=V2_MODEL))
    assert not exists(lambda: sagemaker.describe_endpoint_config(EndpointConfigName=the_rollout().shift_config))


def test_a_completed_rollout_leaves_the_candidate_alone_with_no_fresh_variant(
    world, sagemaker, lambda_context, first_deployment
):
    # No metrics at all: the step is INCONCLUSIVE, extended a minute, then advances as asked.
    v2 = registered_version(world, lambda_context, 2)
    strategy = {**fresh_canary(on_inconclusive="advance", max_extension_seconds=60), "bake_seconds": 120}
    promote.lambda_handler(promotion(v2, strategy, at=AT), lambda_context)

    timeline = run(lambda_context, sagemaker, 12)

    fresh = the_rollout().fresh_baseline
    assert fresh is not None
    distinct = [
        weights for minute, weights in sorted(timeline.items()) if minute == 0 or weights != timeline[minute - 1]
    ]
    assert distinct == [
        {V1: 1.0, V2: 0.0, fresh.variant_name: 0.0},
        {V1: 0.8, V2: 0.1, fresh.variant_name: 0.1},
        {V1: 0.0, V2: 1.0, fresh.variant_name: 0.0},  # the watch window: v1 is the standby, at 0
        {V2: 1.0},
    ]
    assert (status(world, 1), status(world, v2)) == ("RETIRED", "LIVE")
    assert not exists(lambda: sagemaker.describe_endpoint_config(EndpointConfigName=the_rollout().shift_config))
    assert not exists(lambda: sagemaker.describe_model(ModelName=V1_MODEL))  # retired with its last variant
    assert boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix="shepherd-test--")["MetricAlarms"] == []
