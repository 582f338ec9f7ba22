"""Issue 12's local-mode acceptance: under simulated traffic, the canary judge rolls back a 10% canary
of v2 made 40% slower with `shepherd local traffic` (still far under the 300 ms p99 alarm) with no
alarm firing, and lets an identical v2 complete. Everything runs through the event pump, on the
simulated clock, with the demo's steps; the slowdown is the real CLI command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shepherd.registry.model import VersionStatus
from shepherd_cli import command_answers
from shepherd_cli.local.demo import SCENARIO, run_demo
from shepherd_cli.local.demo_expectations import (
    Step,
    all_of,
    announced,
    no_alarm_fired,
    rolled_back,
    version_is,
    weights_are,
)
from shepherd_cli.local.demo_world import CANARY, ENDPOINT, MODEL, Demo
from shepherd_cli.main import cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
V2_READY = SCENARIO[:5]  # v1 registered, approved and live; v2 registered and approved


def shepherd(demo: Demo, *arguments: str) -> str:
    """The CLI against the demo's local mode, as a user in another terminal runs it."""
    result = CliRunner().invoke(
        cli, list(arguments), env={"SHEPHERD_ENDPOINT_URL": demo.local.endpoint_url, "SHEPHERD_STACK": ""}
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def shepherd_local_traffic(*arguments: str):
    def act(demo: Demo) -> None:
        shepherd(demo, "local", "traffic", MODEL, "2", *arguments)
        demo.promote(2, CANARY)

    return act


def shown(outputs: dict[str, str], command: str, *arguments: str):
    """A step that runs a read-only CLI command and keeps its output for the test to read."""

    def act(demo: Demo) -> None:
        rollout = demo.target.rollouts().latest_rollout(ENDPOINT)
        assert rollout is not None
        outputs[command] = shepherd(demo, command, *[rollout.rollout.rollout_id if a == "ID" else a for a in arguments])

    return Step(f"shepherd {command}", act, lambda demo: None if command in outputs else "no output")


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
            within_seconds=900,  # within the 15-minute bake: about 6 minutes of warm-up and delay are not judged
        ),
        shown(outputs := {}, "analysis", "ID"),
    )

    result = run_demo(ROOT / "template.yaml", steps=steps)

    assert result.failed_step is None, result.failed_step
    # `shepherd analysis` prints the evidence of the judged step, per metric.
    evidence = outputs["analysis"]
    assert "Step 1 at 10%: FAIL" in evidence and "-> rollback" in evidence
    assert "latency_p50 (critical)" in evidence and "errors_5xx (critical)" in evidence
    [verdict] = [line.data for line in result.timeline if line.title == "Canary Analysis Completed"]
    assert (verdict["outcome"], verdict["decision"], verdict["critical_failure"]) == ("FAIL", "rollback", True)
    latency = {metric["metric"]: metric for metric in verdict["metrics"]}["latency_p50"]
    # The median is paired minute by minute: 56 ms against 40 ms, an effect of about +40%.
    assert latency["outcome"] == "FAIL" and 0.3 < latency["relative_effect"] < 0.5
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


def test_a_kpi_nobody_publishes_holds_the_canary_until_shepherd_resume():
    # The judge compares a user KPI that is never published: INCONCLUSIVE, extended, then held.
    accuracy = {
        "name": "accuracy",
        "namespace": "Acme/Quality",
        "metric_name": "Accuracy",
        "statistic": "Average",
        "direction": "lower_is_worse",
        "tolerance": 0.02,
    }
    strategy = {
        "type": "canary",
        "canary_percent": 10,
        "bake_seconds": 300,
        "post_deploy_watch_seconds": 0,
        "analysis": {"judge": {"metrics": [accuracy], "max_extension_seconds": 120}},
    }
    outputs: dict[str, str] = {}

    def resume(demo: Demo) -> None:
        outputs["status"] = shepherd(demo, "status", ENDPOINT)
        outputs["resume"] = shepherd(
            demo, "resume", ENDPOINT, "--reason", "accuracy job is late", "--no-wait", "--json"
        )

    def answer_recorded(demo: Demo) -> str | None:
        # What `shepherd resume` (waiting) reads when it missed the announcement: the record's answer.
        sent = json.loads(outputs["resume"])
        recorded = command_answers._recorded_answer(demo.target, sent)
        if recorded is None:
            return "no recorded answer to the resume"
        outputs["recorded"] = recorded
        return None

    steps = (
        *V2_READY,
        Step("promote v2 as a 10% canary", lambda demo: demo.promote(2, strategy), weights_are({1: 0.9, 2: 0.1}), 300),
        Step(
            "held after the bake (5 min) and its extension (2 min)",
            None,
            announced("Canary Analysis Completed", version=2, outcome="INCONCLUSIVE", decision="hold"),
            within_seconds=900,
        ),
        Step("held: still at 10%", None, weights_are({1: 0.9, 2: 0.1}), 0),
        Step(
            "shepherd resume: v2 takes 100%",
            resume,
            all_of(
                announced("Rollout Resumed", version=2, percent=10),
                answer_recorded,
                announced("Rollout Completed", version=2),
            ),
            within_seconds=300,
        ),
    )

    result = run_demo(ROOT / "template.yaml", steps=steps)

    assert result.failed_step is None, result.failed_step
    # `shepherd status` showed the held verdict per metric before the resume.
    assert "canary analysis at 10%: INCONCLUSIVE" in outputs["status"] and "-> hold" in outputs["status"]
    assert "accuracy" in outputs["status"] and "no data yet" in outputs["status"]
    assert "latency_p99" in outputs["status"] and "PASS" in outputs["status"]
    recorded = outputs["recorded"]
    assert (
        recorded["detail-type"] == "Rollout Resumed"
        and recorded["detail"]["command_id"] == json.loads(outputs["resume"])["event_id"]
    )
    held = next(line.at for line in result.timeline if line.title == "Canary Analysis Completed")
    shifted = [
        line.at for line in result.timeline if line.title == "Rollout Traffic Shifted" and line.data["version"] == 2
    ]
    assert (shifted[-1] - held).total_seconds() > 0 and len(shifted) == 2
