"""Issue 12's local-mode acceptance: under simulated traffic, the canary judge rolls back a 10% canary
of v2 made 40% slower with `shepherd local traffic` (still far under the 300 ms p99 alarm) with no
alarm firing, and lets an identical v2 complete. Everything runs through the event pump, on the
simulated clock, with the demo's steps; the slowdown is the real CLI command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from shepherd.registry.model import VersionStatus
from shepherd_cli.local.demo import (
    CANARY,
    MODEL,
    SCENARIO,
    Demo,
    Step,
    all_of,
    announced,
    no_alarm_fired,
    rolled_back,
    run_demo,
    version_is,
    weights_are,
)
from shepherd_cli.main import cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
V2_READY = SCENARIO[:5]  # v1 registered, approved and live; v2 registered and approved


def shepherd_local_traffic(*arguments: str):
    def act(demo: Demo) -> None:
        result = CliRunner().invoke(
            cli,
            ["local", "traffic", MODEL, "2", *arguments],
            env={"SHEPHERD_ENDPOINT_URL": demo.local.endpoint_url, "SHEPHERD_STACK": ""},
        )
        assert result.exit_code == 0, result.output
        demo.promote(2, CANARY)

    return act


def test_a_canary_40_percent_slower_is_rolled_back_by_the_judge_with_no_alarm():
    steps = (
        *V2_READY,
        Step(
            "v2 40% slower (median 56 ms, p99 112 ms), promoted as a 10% canary",
            shepherd_local_traffic("--latency-ms", "56", "--p99-ms", "112"),
            all_of(announced("Rollout Traffic Shifted", version=2, to_percent=10), weights_are({1: 0.9, 2: 0.1})),
            within_seconds=300,
        ),
        Step(
            "rolled back by analysis",
            None,
            all_of(
                announced("Rollout Rolled Back", version=2, trigger="analysis"), rolled_back(2, 1), no_alarm_fired()
            ),
            within_seconds=600,
        ),
    )

    result = run_demo(ROOT / "template.yaml", steps=steps)

    assert result.failed_step is None, result.failed_step
    [verdict] = [line.data for line in result.timeline if line.title == "Canary Analysis Completed"]
    assert (verdict["outcome"], verdict["decision"], verdict["critical_failure"]) == ("FAIL", "rollback", True)
    latency = {metric["metric"]: metric for metric in verdict["metrics"]}["latency_p50"]
    assert latency["outcome"] == "FAIL" and 0.25 < latency["relative_effect"] < 0.55
    [rolled] = [line.data for line in result.timeline if line.title == "Rollout Rolled Back"]
    assert "latency" in rolled["reason"]
    assert [line for line in result.timeline if line.kind == "failure"] == []


def test_an_identical_canary_passes_the_judge_and_completes():
    steps = (
        *V2_READY,
        Step(
            "v2 as healthy as v1, promoted as a 10% canary",
            shepherd_local_traffic("--latency-ms", "40", "--p99-ms", "80"),
            weights_are({1: 0.9, 2: 0.1}),
            within_seconds=300,
        ),
        Step(
            "the judge passes it after the bake: v2 takes 100%",
            None,
            all_of(
                announced("Canary Analysis Completed", version=2, outcome="PASS", decision="advance"),
                announced("Rollout Completed", version=2),
                version_is(2, VersionStatus.LIVE),
            ),
            within_seconds=1200,
        ),
    )

    result = run_demo(ROOT / "template.yaml", steps=steps)

    assert result.failed_step is None, result.failed_step
    assert [line for line in result.timeline if line.title == "Rollout Rolled Back"] == []
