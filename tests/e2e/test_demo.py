"""`shepherd local demo`'s scenario, end to end through the event pump.

The demo uploads to the emulator's bucket, sends commands to the bus with the CLI's own code and
makes v3 fail under the simulated traffic: every function runs because the pump handed it its event,
never because the test called a handler, and no alarm state is set by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shepherd_cli.local import persistence
from shepherd_cli.local.demo import SCENARIO, run_demo
from shepherd_cli.local.demo_world import CANARY_BAKE_SECONDS, ENDPOINT
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.target import local_target
from shepherd_cli.ui import views

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def rolled_back_at(result, version):
    [line] = [
        line for line in result.timeline if line.title == "Rollout Rolled Back" and line.data["version"] == version
    ]
    return line.at


def test_the_demo_registers_canaries_and_rolls_back_a_failing_canary(tmp_path):
    result = run_demo(ROOT / "template.yaml", keep_state=tmp_path / "state")

    # Every step happened as expected, in order.
    assert [step.name for step in result.steps] == [step.name for step in SCENARIO]
    assert result.failed_step is None, result.failed_step
    assert result.ok

    # v2 serves all traffic again; v1 was retired after v2's watch window; v3 and v4 were rolled back.
    assert result.versions == {"v1": "RETIRED", "v2": "LIVE", "v3": "ROLLED_BACK", "v4": "ROLLED_BACK"}
    status = result.final_status
    assert status is not None and status["endpoint_name"] == ENDPOINT
    assert status["live"]["version"] == 2
    assert status["endpoint"]["status"] == "InService"
    assert [(v["version"], v["current_weight"]) for v in status["endpoint"]["variants"]] == [(2, 1.0)]
    assert status["rollout"]["version"] == 4 and status["rollout"]["phase"] == "ROLLED_BACK"

    # The timeline tells the story: the canary baked its 15 simulated minutes, the alarm's own action
    # rolled v3 back, and nothing failed.
    announced = [(line.title, line.data) for line in result.timeline if line.kind == "announcement"]
    shifts = [line for line in result.timeline if line.title == "Rollout Traffic Shifted" and line.data["version"] == 2]
    assert [(line.data["from_percent"], line.data["to_percent"]) for line in shifts] == [(0, 10), (10, 100)]
    assert (shifts[1].at - shifts[0].at).total_seconds() >= CANARY_BAKE_SECONDS
    # v2's canary was judged against v1 and passed; v3's (judge off) was left to the alarms.
    judged = [detail for title, detail in announced if title == "Canary Analysis Completed"]
    assert [(d["version"], d["outcome"], d["decision"]) for d in judged] == [
        (2, "PASS", "advance"),
        (4, "FAIL", "rollback"),
    ]
    rolled_back, by_the_judge = [detail for title, detail in announced if title == "Rollout Rolled Back"]
    assert rolled_back["version"] == 3 and rolled_back["restored_version"] == 2
    assert rolled_back["trigger"].endswith("-error-rate")
    # The alarm was evaluated from the simulated traffic: three minutes of v3 failing about 30%.
    assert "3 out of the last 3 datapoints" in rolled_back["reason"]
    cold, failing, slower = [line for line in result.timeline if line.title == "shepherd local traffic"]
    # v2 started cold (two slow minutes) and still passed: the judge's warm-up left those minutes out.
    assert "2-minute warm-up (first minute 2x slower)" in cold.details
    # The minute in progress counts (the simulator reads the behaviour when it closes the minute).
    assert 120 <= (rolled_back_at(result, 3) - failing.at).total_seconds() <= 240
    assert [line for line in result.timeline if line.kind == "failure"] == []
    # v4, 40% slower but far under the 300 ms alarm, was rolled back by the judge on latency, no alarm.
    assert (by_the_judge["version"], by_the_judge["restored_version"], by_the_judge["trigger"]) == (4, 2, "analysis")
    assert "latency_p50" in by_the_judge["reason"]
    # The judge leaves out the step's first 3 minutes (warm-up) and reads a minute 2 minutes after it
    # began (CloudWatch's delay): it cannot act sooner than 5 minutes after the shift; it acts within
    # the bake.
    [shifted] = [
        line for line in result.timeline if line.title == "Rollout Traffic Shifted" and line.data["version"] == 4
    ]
    assert slower.at <= shifted.at
    assert 5 * 60 <= (rolled_back_at(result, 4) - shifted.at).total_seconds() <= 15 * 60

    # Minutes of simulated time, seconds of real time.
    assert result.simulated_seconds >= 20 * 60
    assert result.wall_seconds < 120
    # The README tells the demo as it happens: its bakes, its steps and its simulated minutes.
    readme = (ROOT / "README.md").read_text()
    assert f"bakes {CANARY_BAKE_SECONDS // 60} minutes" in readme
    stated = re.search(
        r"Demo passed: all (?P<steps>\d+) steps as expected \((?P<minutes>\d+) simulated minutes", readme
    )
    assert stated is not None and int(stated["steps"]) == len(result.steps)
    assert abs(int(stated["minutes"]) - result.simulated_seconds / 60) <= 2

    # `local demo --keep`: `local up` restarts from the demo's world, and the dashboard shows its rollouts.
    with LocalShepherd.start(ROOT / "template.yaml", names_seed=persistence.NAMES_SEED) as local:
        assert persistence.saved_outputs(tmp_path / "state") == local.outputs
        persistence.restore(tmp_path / "state")
        target = local_target(local.endpoint_url, tmp_path / "local.json")
        page = views.endpoint_page(target, ENDPOINT)
        phases = [(r["version"], r["phase"]) for r in page["rollouts"]]
        assert phases == [(4, "ROLLED_BACK"), (3, "ROLLED_BACK"), (2, "COMPLETED"), (1, "COMPLETED")]
        assert [point["percent"] for point in page["timeline"]["points"]][:2] == [0, 10]
        # every incident of the endpoint, newest first: v4's (the judge), then v3's (its alarm)
        assert [(i["version"], i["cause"]) for i in page["incidents"]] == [(4, "canary judge"), (3, "alarm")]
