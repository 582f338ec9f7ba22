"""An operator's session, as a user drives it: `shepherd local up` in its own process, the `shepherd`
CLI in others (from a subdirectory), and boto3 standing in for the AWS CLI.

It covers issue 11's acceptance: a refused promotion exits 1 with the reason within 10 s; a canary
followed with `status --watch` shows its bake's time left; `local up`, Ctrl-C and `local up` again at
once (same port) keeps the bucket and the versions; then, at --speed 1, SetAlarmState ALARM on the
rollout's error-rate alarm rolls the canary back within 5 s (wall clock) and `status` shows it.
"""

from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from test_local_up import ROOT, cli_environment, wait_for_state

pytestmark = pytest.mark.e2e

MODEL, ENDPOINT = "churn", "churn-prod"
FAST = "30"  # simulated seconds per real second for the deployments (the controller ticks each minute)


def shepherd(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shepherd_cli", *args],
        cwd=cwd,
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalUp:
    """`shepherd local up` in the background, its output in a log file."""

    def __init__(self, folder: Path, port: int, speed: str, log_name: str) -> None:
        self.log = folder / log_name
        command = ["local", "up", "--template", str(ROOT / "template.yaml"), "--port", str(port), "--speed", speed]
        with self.log.open("w") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shepherd_cli", *command],
                cwd=folder,
                env=cli_environment(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.state = wait_for_state(folder / ".shepherd" / "local.json", self.process, self.log)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.state["endpoint_url"],
            region_name=self.state["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def interrupt(self) -> str:
        """Ctrl-C, and what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=60)
        return self.log.read_text()


def upload(up: LocalUp, run: str) -> None:
    s3, bucket = up.client("s3"), up.state["outputs"]["ArtifactBucketName"]
    s3.put_object(Bucket=bucket, Key=f"models/{MODEL}/{run}/manifest.json", Body=b'{"metrics": {"auc": 0.9}}')
    s3.put_object(
        Bucket=bucket, Key=f"models/{MODEL}/{run}/model.tar.gz", Body=gzip.compress(b"w"), ChecksumAlgorithm="SHA256"
    )


def wait_until(check: Any, what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {seconds}s")


def status(cwd: Path) -> dict[str, Any]:
    result = shepherd("status", ENDPOINT, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def versions(cwd: Path) -> list[dict[str, Any]]:
    result = shepherd("versions", MODEL, "--json", cwd=cwd)
    return list(json.loads(result.stdout)) if result.returncode == 0 else []


def test_an_operator_session(tmp_path):
    work = tmp_path / "repo" / "services" / "churn"  # the CLI finds local up from below its folder
    work.mkdir(parents=True)
    port = free_port()
    up = LocalUp(tmp_path, port, FAST, "first.log")
    try:
        upload(up, "run-1")
        wait_until(lambda: len(versions(work)) == 1, "version 1")
        # A malformed command, as any client on the bus could send it.
        bad = {"model_name": MODEL, "version": 1, "endpoint_name": "not a name!", "strategy": {}}
        up.client("events").put_events(
            Entries=[
                {
                    "Source": "shepherd.cli",
                    "DetailType": "Model Promotion Requested",
                    "Detail": json.dumps({**bad, "requested_by": "eve", "reason": "typo"}),
                    "EventBusName": up.state["outputs"]["EventBusName"],
                }
            ]
        )

        # A promotion of a REGISTERED version is refused: the reason, exit 1, within 10 s.
        started = time.monotonic()
        refused = shepherd("promote", MODEL, "1", ENDPOINT, "--all-at-once", cwd=work)
        assert time.monotonic() - started < 10
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "version 1 is REGISTERED; only APPROVED versions can be promoted" in refused.stderr
        assert "Promotion Rejected" not in refused.stdout  # said once, on stderr

        listener = subprocess.Popen(
            [sys.executable, "-m", "shepherd_cli", "events", "--for", "8", "--json"],
            cwd=work,
            env=cli_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # `events` subscribes as it starts
        approved = shepherd("approve", MODEL, "1", "--reason", "offline AUC 0.9", cwd=work)
        assert approved.returncode == 0 and "Model Version Approved" in approved.stdout, approved.stderr
        heard, errors = listener.communicate(timeout=30)
        assert listener.returncode == 0, errors
        assert {"detail-type": "Model Version Approved", "version": 1} in [
            {"detail-type": event["detail-type"], "version": event["detail"].get("version")}
            for event in map(json.loads, heard.splitlines())
        ]
        first = shepherd("promote", MODEL, "1", ENDPOINT, "--all-at-once", "--watch", "0", "--follow", cwd=work)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "Rollout Started" in first.stdout and "Completed: churn v1 serves 100%." in first.stdout

        upload(up, "run-2")
        wait_until(lambda: len(versions(work)) == 2, "version 2")
        assert shepherd("approve", MODEL, "2", "--reason", "better", cwd=work).returncode == 0
        canary = shepherd("promote", MODEL, "2", ENDPOINT, "--canary", "10", "--bake", "2h", "--json", cwd=work)
        assert canary.returncode == 0, canary.stderr
        rollout_id = json.loads(canary.stdout)["rollout_id"]
        wait_until(lambda: status(work)["rollout"]["current_percent"] == 10, "10% on the canary")

        # `status --watch` shows the bake and its time left (and gives up after --timeout with exit 3).
        watched = shepherd("status", ENDPOINT, "--watch", "--timeout", "2", cwd=work)
        assert watched.returncode == 3, watched.stdout + watched.stderr
        assert "bake 120m00s started" in watched.stdout and " left" in watched.stdout
        assert "candidate" in watched.stdout and "DESIRED WEIGHT" in watched.stdout
        bucket = up.state["outputs"]["ArtifactBucketName"]
    finally:
        first_log = up.interrupt()
    assert up.process.returncode == 0, first_log
    # Readable logs: the malformed command is announced as refused, one line naming the field (no
    # retries, no pydantic report); no Powertools JSON without --verbose; the bake shows the
    # controller waiting, tick after tick.
    malformed = [line for line in first_log.splitlines() if "not a name!" in line or "endpoint_name:" in line]
    assert len(malformed) == 1 and "Command Refused" in malformed[0], malformed
    assert "validation error" not in first_log and "dead-lettered" not in first_log
    assert '"level":' not in first_log
    assert f"rollout {rollout_id}: waiting" in first_log

    # Restarted at once, on the same port, at real-time speed: the same bucket, versions and rollout.
    up = LocalUp(tmp_path, port, "1", "second.log")
    try:
        assert up.state["outputs"]["ArtifactBucketName"] == bucket
        assert [(v["version"], v["status"]) for v in versions(work)] == [(2, "DEPLOYING"), (1, "LIVE")]
        assert status(work)["rollout"]["rollout_id"] == rollout_id

        # SetAlarmState on the rollout's error-rate alarm, as `aws cloudwatch set-alarm-state` sends it.
        [alarm] = [a["alarm_name"] for a in status(work)["alarms"] if a["alarm_name"].endswith("-error-rate")]
        flipped = time.monotonic()
        up.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx by hand")

        def traffic_back_on_v1() -> bool:  # the flip, as SageMaker reports it once asked
            described = up.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
            weights = {v["VariantName"]: v["DesiredWeight"] for v in described["ProductionVariants"]}
            return weights == {"churn-v1": 1.0, "churn-v2": 0.0}

        wait_until(traffic_back_on_v1, "rollback", seconds=5)
        assert time.monotonic() - flipped < 5
        shown = shepherd("status", ENDPOINT, cwd=work).stdout
        assert "rolled back" in shown and "5xx by hand" in shown
    finally:
        second_log = up.interrupt()
    assert "Rollout Rolled Back" in second_log, second_log
