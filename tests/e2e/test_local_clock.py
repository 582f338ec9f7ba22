"""Local mode has one clock, the simulated one, and a restart continues it.

Before, moto stamped announcements and uploads with the wall clock while everything else read the
simulated clock ("Last announcements" and `shepherd events` showed another time than the records),
and `local up` restarted the simulated clock at the wall clock's time, so after a run at --speed 60 a
watch window with 4 minutes left showed 73 minutes, and newest-first lists came out of order.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from shepherd_cli.local import persistence
from shepherd_cli.local.simulated_time import SimulatedClock
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.local.state import read_state
from shepherd_cli.local.up import run_up
from shepherd_cli.subscription import Subscription
from shepherd_cli.target import local_target

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
SIMULATED = datetime(2031, 1, 1, 9, 30, tzinfo=UTC)  # far from the wall clock


def test_uploads_and_announcements_carry_the_simulated_time(tmp_path):
    with LocalShepherd.start(
        ROOT / "template.yaml", clock=SimulatedClock(SIMULATED), environment_overrides=QUIET
    ) as local:
        target = local_target(local.endpoint_url, tmp_path / "none.json")
        bucket = local.outputs["ArtifactBucketName"]
        with Subscription(target) as subscription:  # what `shepherd events` and `status --watch` hear
            # When a model is uploaded and registered
            s3 = local.client("s3")
            s3.put_object(Bucket=bucket, Key="models/churn/run-1/manifest.json", Body=b'{"metrics": {}}')
            s3.put_object(
                Bucket=bucket,
                Key="models/churn/run-1/model.tar.gz",
                Body=gzip.compress(b"w"),
                ChecksumAlgorithm="SHA256",
            )
            local.pump.run_until_idle()
            heard = subscription.receive(2)

        # Then the upload's event, the announcement and the record all say the simulated time
        uploads = [i.event for i in local.pump.invocations() if i.event.get("detail-type") == "Object Created"]
        assert uploads and {upload["time"] for upload in uploads} == {"2031-01-01T09:30:00Z"}
        assert [(a["detail-type"], a["time"]) for a in heard] == [("Model Version Registered", "2031-01-01T09:30:00Z")]
        version = target.registry().get_version("churn", 1)
        assert version is not None and version.uploaded_at == version.created_at == SIMULATED


def serve(state_dir: Path, cwd: Path, speed: float, seconds: float) -> tuple[dict[str, object], str]:
    """`local up --state DIR --speed SPEED` for `seconds` of wall time; its state file and output."""
    out, stop = io.StringIO(), threading.Event()
    state_file = cwd / ".shepherd" / "local.json"
    runner = threading.Thread(
        target=run_up,
        args=(ROOT / "template.yaml",),
        kwargs={
            "out": Console(file=out, width=200),
            "port": 0,
            "speed": speed,
            "rps": 0,
            "state_file": state_file,
            "state_dir": state_dir,
            "stop": stop,
        },
    )
    runner.start()
    try:
        deadline = time.monotonic() + 120
        while not state_file.exists() and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        state = json.loads(state_file.read_text())
        time.sleep(seconds)
    finally:
        stop.set()
        runner.join(120)
    return state, out.getvalue()


def test_a_restart_continues_the_simulated_clock_where_it_stopped(tmp_path):
    state_dir = tmp_path / "state"
    # Given local up at 600x (ten simulated minutes a second), stopped after a second or so
    first, _ = serve(state_dir, tmp_path, speed=600, seconds=1.5)
    stopped_at = persistence.saved_clock(state_dir)
    started_at = datetime.fromisoformat(str(first["clock"]["origin"]))  # type: ignore[index]
    assert stopped_at is not None and stopped_at - started_at >= timedelta(minutes=2)  # ahead of the wall clock

    # When it starts again from the saved state
    second, output = serve(state_dir, tmp_path, speed=1, seconds=0)

    # Then the simulated clock continues from where it stopped, not from the wall clock
    assert datetime.fromisoformat(str(second["clock"]["origin"])) == stopped_at  # type: ignore[index]
    assert f"The simulated clock continues from {stopped_at.isoformat()}." in output
    assert read_state(tmp_path / ".shepherd" / "local.json") is None  # removed on the way out
