"""Local mode, issue 23 rule 6: an autoscaled endpoint (min 2, max 8, target tracking on
InvocationsPerInstance, at 4 instances) under a `shepherd local traffic --rps` ramp scales out, keeps
its capacity through a canary, and the dashboard's data show each variant's current and desired
instances over time. Everything a user does goes through the CLI (`--no-wait`: the test drives the
pump); the simulated clock is advanced by hand, about 20 simulated minutes in all."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shepherd.rollouts.naming import variant_name
from shepherd_cli.local import simulation
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.main import cli
from shepherd_cli.target import Target, local_target
from shepherd_cli.ui import views

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
MODEL, ENDPOINT = "ramp-model", "ramp-prod"
LIVE, CANDIDATE = variant_name(MODEL, 1), variant_name(MODEL, 2)
TARGET_PER_INSTANCE = 1000.0  # invocations per instance per minute: 4 instances hold 66 requests a second
SCALING = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": f"endpoint/{ENDPOINT}/variant/{LIVE}",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalShepherd]:
    with LocalShepherd.start(ROOT / "template.yaml", environment_overrides=QUIET) as running:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("SHEPHERD_STACK", raising=False)
        monkeypatch.setenv("SHEPHERD_ENDPOINT_URL", running.endpoint_url)
        yield running


@pytest.fixture
def target(local: LocalShepherd, tmp_path: Path) -> Target:
    found = local_target(local.endpoint_url, tmp_path / "local.json")
    found.clock = lambda: local.pump.clock.now  # as `local up`'s state file gives it to the CLI
    return found


def shepherd(local: LocalShepherd, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    local.pump.run_until_idle()
    return json.loads(result.output) if result.output.strip() else None


def upload(local: LocalShepherd, run: str) -> None:
    s3, bucket = local.client("s3"), local.outputs["ArtifactBucketName"]
    s3.put_object(Bucket=bucket, Key=f"models/{MODEL}/{run}/manifest.json", Body=b'{"metrics": {"auc": 0.8}}')
    s3.put_object(
        Bucket=bucket, Key=f"models/{MODEL}/{run}/model.tar.gz", Body=gzip.compress(b"w"), ChecksumAlgorithm="SHA256"
    )
    local.pump.run_until_idle()


def live_counts(local: LocalShepherd) -> tuple[int, int]:
    variants = local.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    [live] = [variant for variant in variants if variant["VariantName"] == LIVE]
    return live["CurrentInstanceCount"], live["DesiredInstanceCount"]


def minutes(local: LocalShepherd, count: int) -> list[tuple[int, int]]:
    """Advance ``count`` simulated minutes; the live variant's (current, desired) after each."""
    seen = []
    for _ in range(count):
        local.pump.advance(60)
        seen.append(live_counts(local))
    return seen


def test_capacity_follows_a_ramp_through_a_canary_and_the_dashboard_plots_it(local, target):
    running = simulation.attach(local, rps=50, seed=7)
    # v1 live on 4 instances, registered for 2 to 8, tracking 1,000 invocations per instance.
    upload(local, "run-1")
    shepherd(local, "approve", MODEL, "1", "--reason", "ok", "--no-wait")
    shepherd(
        local, "promote", MODEL, "1", ENDPOINT, "--all-at-once", "--watch", "0s", "--instance-count", "4", "--no-wait"
    )
    minutes(local, 3)
    assert live_counts(local) == (4, 4)
    autoscaling = local.client("application-autoscaling")
    autoscaling.register_scalable_target(**SCALING, MinCapacity=2, MaxCapacity=8)
    autoscaling.put_scaling_policy(
        PolicyName="invocations",
        PolicyType="TargetTrackingScaling",
        **SCALING,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": TARGET_PER_INSTANCE,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )
    # 50 requests a second is 750 per instance a minute: below the target, nothing moves.
    assert minutes(local, 2)[-1] == (4, 4)

    # The ramp, from the CLI: 50 -> 200 requests a second over 10 simulated minutes.
    answer = shepherd(local, "local", "traffic", "--rps", "50@0,200@10")
    assert answer["load"]["points"] == [{"rps": 50.0, "minute": 0.0}, {"rps": 200.0, "minute": 10.0}]
    seen = minutes(local, 8)
    assert running.traffic.rps > 100  # the simulator follows the stored ramp
    desired = [d for _, d in seen]
    assert desired == sorted(desired) and desired[-1] > 4, seen  # capacity follows the load up
    assert seen[-1][0] > 4, seen  # and the instances arrive

    # A canary during the ramp: the live variant keeps what autoscaling gave it (the candidate's own
    # count is the rollout engine's business and not asserted here).
    before = live_counts(local)
    upload(local, "run-2")
    shepherd(local, "approve", MODEL, "2", "--reason", "ok", "--no-wait")
    shepherd(local, "promote", MODEL, "2", ENDPOINT, "--canary", "10", "--bake", "10m", "--no-wait")
    during = minutes(local, 4)
    assert all(current >= before[0] for current, _ in during), (before, during)
    status = shepherd(local, "status", ENDPOINT)
    assert status["rollout"]["phase"] == "SHIFTING" and status["rollout"]["version"] == 2, status["rollout"]
    [live] = [variant for variant in status["endpoint"]["variants"] if variant["variant_name"] == LIVE]
    assert live["desired_instance_count"] == during[-1][1]

    # The dashboard's data: per variant, its current and desired counts each simulated minute, the
    # live variant's rising from 4 with the ramp, and the candidate's once it is on the endpoint.
    chart = views.endpoint_page(target, ENDPOINT)["charts"]["capacity"]
    series = {(row["variant_name"], row["count"]): row["instances"] for row in chart["variants"]}
    assert {(LIVE, "current"), (LIVE, "desired"), (CANDIDATE, "current"), (CANDIDATE, "desired")} <= set(series)
    assert len(chart["times"]) >= 15 and chart["times"] == sorted(chart["times"])
    live_desired = [value for value in series[LIVE, "desired"] if value is not None]
    assert live_desired[0] == 4 and max(live_desired) == during[-1][1] > 4
    assert series[LIVE, "current"][-1] == during[-1][0]
    assert any(value is not None for value in series[CANDIDATE, "current"])
