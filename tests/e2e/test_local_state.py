"""`local up --state`: a restart in the middle of a canary comes back as it was, and carries on.

The demo's world is run to a 10% canary of v2 with simulated traffic, saved as `local up` saves it at a
stop, and restored into a freshly deployed emulator: the CLI sees the same versions (with the same S3
version ids), the same rollout, weights, alarms and metrics, nothing is announced again on the way in,
and the canary then bakes and completes.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shepherd_cli import operations
from shepherd_cli.endpoint_view import endpoint_status
from shepherd_cli.local import emulator, persistence, simulation
from shepherd_cli.local.demo import SCENARIO, run_steps
from shepherd_cli.local.demo_expectations import Step, all_of, announced, weights_are
from shepherd_cli.local.demo_world import ENDPOINT, MODEL, QUIET, TRAFFIC_SEED, Demo, dimensions
from shepherd_cli.local.simulated_time import SimulatedClock
from shepherd_cli.local.stack import LocalShepherd

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
UP_TO_THE_CANARY = SCENARIO[:6]  # v1 live, v2 registered, approved and promoted: 10% canary


def seen(demo: Demo) -> dict[str, Any]:
    """What the CLI and the handlers read: versions, rollouts, `status`, every S3 version, the metrics."""
    target, s3 = demo.target, demo.local.client("s3")
    bucket = demo.local.outputs["ArtifactBucketName"]
    listing = s3.list_object_versions(Bucket=bucket)
    window = {"StartTime": demo.started_at - timedelta(hours=1), "EndTime": demo.now + timedelta(minutes=1)}
    stat = {"Namespace": "AWS/SageMaker", "Dimensions": dimensions(2)}
    metrics = demo.local.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {"Id": "calls", "MetricStat": {"Metric": {**stat, "MetricName": "Invocations"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "p99", "MetricStat": {"Metric": {**stat, "MetricName": "ModelLatency"}, "Period": 60, "Stat": "p99"}},
        ],
        **window,
    )["MetricDataResults"]  # fmt: skip
    return {
        "versions": [version.model_dump() for version in operations.list_versions(target, MODEL)],
        "rollouts": operations.list_rollouts(target, ENDPOINT),
        "status": endpoint_status(target, ENDPOINT),
        "objects": sorted(
            (entry["Key"], entry["VersionId"], entry["LastModified"], entry.get("ETag"))
            for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", [])
        ),
        "metrics": [(result["Id"], result["Timestamps"], result["Values"]) for result in metrics],
    }


def test_a_restart_mid_canary_shows_the_same_world_and_the_canary_carries_on(tmp_path):
    state = tmp_path / "state"
    start = {"environment_overrides": QUIET, "names_seed": persistence.NAMES_SEED}
    # Given the demo's world with v2 a few minutes into its 10% canary, saved as `local up` saves at a stop
    with LocalShepherd.start(ROOT / "template.yaml", clock=SimulatedClock(), **start) as local:
        simulation.attach(local, seed=TRAFFIC_SEED)
        demo = Demo(local)
        assert all(step.ok for step in run_steps(demo, UP_TO_THE_CANARY))
        demo.pump.advance(5 * 60)
        demo.settle()
        emulator.settle_pending()  # as the save does
        before = seen(demo)
        began = time.monotonic()
        persistence.save(state, local.outputs, local.pump.clock.now)
        saved_in = time.monotonic() - began

    # When a fresh emulator deploys the template again and restores it
    with LocalShepherd.start(
        ROOT / "template.yaml", clock=SimulatedClock(persistence.saved_clock(state)), **start
    ) as local:
        began = time.monotonic()
        persistence.restore(state)
        restored_in = time.monotonic() - began
        local.pump.run_until_idle()
        demo = Demo(local)

        # Then the CLI sees the same world: versions with their S3 version ids, the rollout at 10%,
        # the weights, the alarms and their states, every object version and the canary's metrics
        after = seen(demo)
        assert after == before
        weights = {v["version"]: v["current_weight"] for v in after["status"]["endpoint"]["variants"]}
        assert weights == {1: 0.9, 2: 0.1}
        assert after["status"]["alarms"] and after["status"]["rollout"]["phase"] == "SHIFTING"
        assert all(values for _id, _timestamps, values in after["metrics"])
        assert all(
            v["artifact"]["s3_version_id"] not in (None, "null") and v["manifest_version_id"] for v in after["versions"]
        )
        # and nothing was announced again on the way in: no upload, no alarm state change
        heard = [invocation.event.get("detail-type") for invocation in local.pump.invocations()]
        assert "Object Created" not in heard and "CloudWatch Alarm State Change" not in heard

        # and the canary carries on: it bakes, then v2 takes 100%
        simulation.attach(local, seed=TRAFFIC_SEED)
        completes = Step(
            "the canary bakes, then v2 takes 100%",
            None,
            all_of(announced("Rollout Completed", version=2), weights_are({1: 0.0, 2: 1.0})),
            within_seconds=1500,
        )
        [result] = run_steps(demo, [completes])
        assert result.ok, result.problem
    print(f"\nsaved in {saved_in:.3f}s, restored in {restored_in:.3f}s")  # the report reads it (-s)
