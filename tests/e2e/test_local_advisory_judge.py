"""The canary judge's trust ladder in local mode: in advisory mode it judges a canary whose errors it
would roll back, announces so (`"advisory": true`) and lets the rollout complete on its bake; then
`shepherd analysis replay` judges that rollout again from local mode's CloudWatch, minute by minute,
under an enforcing configuration. Judged on errors alone: 3% of v2's requests fail, under the 5%
error-rate alarm, so only the judge could tell (the latency metrics need CloudWatch's trimmed counts,
which local mode's CloudWatch gains separately)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shepherd.registry.model import VersionStatus
from shepherd_cli.local.demo import run_demo
from shepherd_cli.local.demo_expectations import Step, all_of, announced, version_is
from shepherd_cli.local.demo_world import ENDPOINT, MODEL, Demo
from tests.e2e.test_local_canary_analysis import V2_READY, shepherd

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ERRORS_ONLY = {"latency_p50": {"enabled": False}, "latency_p99": {"enabled": False}}
ADVISORY = {
    "type": "canary",
    "canary_percent": 10,
    "bake_seconds": 600,
    "post_deploy_watch_seconds": 0,
    "analysis": {"judge": {"mode": "advisory", "default_metrics": ERRORS_ONLY}},
}


def test_an_advisory_judge_announces_the_rollback_it_would_make_and_a_replay_enforces_it(tmp_path):
    outputs: dict[str, str] = {}

    def promote_failing_v2(demo: Demo) -> None:
        shepherd(demo, "local", "traffic", MODEL, "2", "--latency-ms", "40", "--error-percent", "3")
        demo.promote(2, ADVISORY)

    def replayed(demo: Demo) -> None:
        rollout = demo.target.rollouts().latest_rollout(ENDPOINT)
        assert rollout is not None
        config = tmp_path / "enforce.json"
        config.write_text(json.dumps({"mode": "enforce", "default_metrics": ERRORS_ONLY}))
        rollout_id = rollout.rollout.rollout_id
        outputs["replay"] = shepherd(demo, "analysis", "replay", rollout_id, "--config", str(config))
        outputs["json"] = shepherd(demo, "analysis", "replay", rollout_id, "--json")
        outputs["analysis"] = shepherd(demo, "analysis", rollout_id)

    steps = (
        *V2_READY,
        Step(
            "v2 fails 3% of its requests, promoted as a 10% canary judged in advisory mode",
            promote_failing_v2,
            announced("Rollout Traffic Shifted", version=2, to_percent=10),
            within_seconds=300,
        ),
        Step(
            "the judge announces the rollback it would make, and the canary completes on its bake",
            None,
            all_of(
                announced("Canary Analysis Completed", version=2, decision="rollback", advisory=True),
                announced("Rollout Completed", version=2),
                version_is(2, VersionStatus.LIVE),
            ),
            within_seconds=1200,
        ),
        Step("shepherd analysis replay", replayed, lambda demo: None if "json" in outputs else "no replay", 0),
    )

    result = run_demo(ROOT / "template.yaml", steps=steps)

    assert result.failed_step is None, result.failed_step
    assert [line for line in result.timeline if line.title == "Rollout Rolled Back"] == []
    [verdict] = [line.data for line in result.timeline if line.title == "Canary Analysis Completed"]
    assert (verdict["outcome"], verdict["advisory"]) == ("FAIL", True)
    assert "(advisory: not acted on)" in outputs["analysis"]
    # The replay, under its own (advisory) configuration as JSON, and enforcing as a table.
    [step] = json.loads(outputs["json"])["steps"]
    assert step["happened"] == {**step["happened"], "decision": "rollback", "advisory": True}
    assert step["replayed"]["decision"] == "rollback"
    assert any(minute["metrics"]["errors_5xx"] == "FAIL" for minute in step["minutes"])
    assert "Replay of" in outputs["replay"] and "ERRORS_5XX" in outputs["replay"] and "rollback" in outputs["replay"]
