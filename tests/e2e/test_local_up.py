"""`shepherd local up` in its own process: an upload by boto3 to its endpoint registers a version that
`shepherd versions` (a third process) shows."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120
REGISTER_TIMEOUT_SECONDS = 60


def cli_environment() -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("SHEPHERD_ENDPOINT_URL", "SHEPHERD_STACK", "AWS_ENDPOINT_URL", "AWS_PROFILE")
    }
    paths = [str(ROOT / "cli"), str(ROOT / "layers" / "shepherd"), environment.get("PYTHONPATH", "")]
    return {**environment, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def shepherd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shepherd_cli", *args],
        cwd=cwd,
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_for_state(path: Path, process: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"local up exited early:\n{log.read_text()}"
        if path.exists():
            return dict(json.loads(path.read_text()))
        time.sleep(0.2)
    raise AssertionError(f"local up wrote no {path} within {START_TIMEOUT_SECONDS}s:\n{log.read_text()}")


def test_an_upload_to_local_up_is_listed_by_shepherd_versions(tmp_path):
    log = tmp_path / "local-up.log"
    state_file = tmp_path / ".shepherd" / "local.json"
    with log.open("w") as log_file:
        command = ["local", "up", "--template", str(ROOT / "template.yaml"), "--port", "0"]
        process = subprocess.Popen(
            [sys.executable, "-m", "shepherd_cli", *command],
            cwd=tmp_path,
            env=cli_environment(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        state = wait_for_state(state_file, process, log)

        # Given an upload by boto3, as any S3 client would make it
        s3 = boto3.client(
            "s3",
            endpoint_url=state["endpoint_url"],
            region_name=state["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket = state["outputs"]["ArtifactBucketName"]
        s3.put_object(Bucket=bucket, Key="models/churn/run-1/manifest.json", Body=b'{"metrics": {"auc": 0.9}}')
        s3.put_object(
            Bucket=bucket,
            Key="models/churn/run-1/model.tar.gz",
            Body=gzip.compress(b"weights"),
            ChecksumAlgorithm="SHA256",
        )

        # Then `shepherd versions` in another process finds local up through its state file and lists it
        deadline = time.monotonic() + REGISTER_TIMEOUT_SECONDS
        while True:
            listed = shepherd("versions", "churn", "--json", cwd=tmp_path)
            if listed.returncode == 0 or time.monotonic() > deadline:
                break
            assert "no model churn" in listed.stderr, listed.stderr  # not registered yet, nothing worse
            time.sleep(0.5)
        assert listed.returncode == 0, listed.stderr
        [version] = json.loads(listed.stdout)
        assert version["version"] == 1 and version["status"] == "REGISTERED"
        assert version["artifact"]["key"] == "models/churn/run-1/model.tar.gz"
        assert version["metrics"] == {"auc": 0.9}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    output = log.read_text()
    assert process.returncode == 0, output
    assert "Model Version Registered" in output and state["endpoint_url"] in output
    assert not state_file.exists()  # removed on the way out

    # With local up gone, the CLI says so instead of failing obscurely.
    gone = shepherd("versions", "churn", cwd=tmp_path)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
