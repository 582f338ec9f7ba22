"""The README's "Try it locally", run as written: every command in order, in a shell of its own
directory, against the `shepherd local up` the walkthrough starts; each exits as the README says and
prints what the README shows.

What the test adds, and why:
- `.venv/bin/activate` in the test's directory puts on PATH a `shepherd` that runs this clone's CLI
  (the walkthrough's `source .venv/bin/activate`), and, where the AWS CLI is not installed, a boto3
  stand-in for the `aws` commands the walkthrough uses (`aws_standin.py`);
- the long-running commands (`shepherd local up`, `shepherd ui`) are started in the background with a
  free port (and `local up` with this clone's template), so that they neither collide with a local
  mode of yours nor need the clone as working directory;
- local mode works asynchronously, as AWS does: a read-only command whose output is shown (`versions`,
  `status`...) is run again, for up to READ_PATIENCE_SECONDS, until it shows it, as a reader would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests import readme_walkthrough as walkthrough

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_SECONDS = 120  # the canary's --follow: a 15-minute bake at --speed 60, and a loaded machine
START_TIMEOUT_SECONDS = 120
READ_PATIENCE_SECONDS = 30
READS = frozenset({"models", "versions", "show", "status", "rollouts", "rollout", "history", "rejections"})


class Shell:
    """Runs each command in a new bash that starts from the variables the previous ones left
    (exported or not: `BUCKET=$(...)` is kept), in the walkthrough's directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.variables = directory / ".walkthrough-variables.sh"
        self.variables.write_text("")
        self.environment = isolated_environment(directory)

    def script(self, code: str) -> str:
        state = shlex.quote(str(self.variables))
        return f"set -a; source {state}\n{code}\nstatus=$?; export -p > {state}; exit $status"

    def run(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", self.script(code)],
            cwd=self.directory,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )

    def start(self, code: str, log: Path) -> subprocess.Popen[str]:
        state = shlex.quote(str(self.variables))
        with log.open("w") as out:
            return subprocess.Popen(
                ["bash", "-c", f"set -a; source {state}\nexec {code}"],
                cwd=self.directory,
                env=self.environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )


def isolated_environment(directory: Path) -> dict[str, str]:
    """This process's environment without anything that points at AWS or another Shepherd."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "SHEPHERD_")) and name not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    nowhere = str(directory / "no-aws-config")
    return {
        **environment,
        "AWS_CONFIG_FILE": nowhere,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "COLUMNS": "200",  # a wide terminal: the shown lines are not wrapped
        "NO_COLOR": "1",
    }


def make_virtual_environment(directory: Path) -> str:
    """`.venv/bin` with `activate`, a `shepherd` running this clone's CLI, and `aws` if it is missing.
    Returns which `aws` the walkthrough uses."""
    bin_directory = directory / ".venv" / "bin"
    bin_directory.mkdir(parents=True)
    python_path = os.pathsep.join([str(ROOT / "cli"), str(ROOT / "layers" / "shepherd")])
    executable(
        bin_directory / "shepherd",
        f'PYTHONPATH={shlex.quote(python_path)} exec {shlex.quote(sys.executable)} -m shepherd_cli "$@"',
    )
    aws = shutil.which("aws")
    if aws is None:
        standin = Path(__file__).with_name("aws_standin.py")
        executable(bin_directory / "aws", f'exec {shlex.quote(sys.executable)} {shlex.quote(str(standin))} "$@"')
    (bin_directory / "activate").write_text(f"export PATH={shlex.quote(str(bin_directory))}:$PATH\n")
    return aws or "the boto3 stand-in"


def executable(path: Path, line: str) -> None:
    path.write_text(f"#!/bin/sh\n{line}\n")
    path.chmod(0o755)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(ready: Callable[[], bool], process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        assert process.poll() is None, f"exited early:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"not ready within {START_TIMEOUT_SECONDS}s:\n{log.read_text()}"
        time.sleep(0.3)


def page(url: str) -> tuple[int, str]:
    # A browser's way: the printed address's ?token= comes back as a cookie on a redirect, sent from then on.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(url, timeout=10) as response:  # a loopback URL the test made
        return response.status, response.read().decode()


def answers(url: str) -> bool:
    with suppress(OSError):
        return page(url)[0] == 200
    return False


def words(code: str) -> list[str]:
    try:
        return shlex.split(code)
    except ValueError:
        return []


def is_read(code: str) -> bool:
    said = words(code)
    return len(said) >= 2 and said[0] == "shepherd" and said[1] in READS and "--watch" not in said


@contextmanager
def background(processes: list[subprocess.Popen[str]]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in reversed(processes):  # the dashboard, then local mode (which saves its state)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_the_walkthrough_runs_as_written(tmp_path):
    aws = make_virtual_environment(tmp_path)
    shell = Shell(tmp_path)
    values: dict[str, str] = {}
    servers: list[subprocess.Popen[str]] = []
    ran: list[str] = []
    with background(servers):
        for step in walkthrough.steps(walkthrough.README.read_text()):
            result = None
            for command in step.commands:
                code = walkthrough.fill(command.code, values)
                said = words(code)
                if said[:3] == ["shepherd", "local", "up"]:
                    servers.append(start_local_up(shell, code, tmp_path))
                elif said[:2] == ["shepherd", "ui"]:
                    servers.append(start_dashboard(shell, code, tmp_path))
                else:
                    result = shell.run(code)
                    ran.append(code)
                    assert result.returncode == command.exit_code, (
                        f"`{code}` exited {result.returncode}, the README says {command.exit_code} (aws: {aws})\n"
                        f"{result.stdout}\n{result.stderr}"
                    )
            if step.shown:
                assert result is not None, step
                values.update(shown_by(shell, code, result, step.shown))
    assert len(ran) >= 20 and len(servers) == 2, ran  # the walkthrough was found whole


def shown_by(
    shell: Shell, code: str, result: subprocess.CompletedProcess[str], shown: tuple[str, ...]
) -> dict[str, str]:
    """The placeholders captured from what the README shows `code` prints; a read is run again until
    it prints it."""
    deadline = time.monotonic() + READ_PATIENCE_SECONDS
    while True:
        output = f"{result.stdout}\n{result.stderr}"
        captured = walkthrough.find_shown(shown, output)
        if captured is not None:
            return captured
        if not is_read(code) or time.monotonic() > deadline:
            expected = "\n".join(shown)
            raise AssertionError(
                f"`{code}` did not print what the README shows:\n{expected}\n--- it printed:\n{output}"
            )
        time.sleep(0.5)
        result = shell.run(code)


def start_local_up(shell: Shell, code: str, directory: Path) -> subprocess.Popen[str]:
    log = directory / "local-up.log"
    process = shell.start(f"{code} --port 0 --template {shlex.quote(str(ROOT / 'template.yaml'))}", log)
    wait_for(lambda: (directory / ".shepherd" / "local.json").exists(), process, log)
    return process


def start_dashboard(shell: Shell, code: str, directory: Path) -> subprocess.Popen[str]:
    log, port = directory / "ui.log", free_port()
    process = shell.start(f"{code} --port {port}", log)
    wait_for(lambda: re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", log.read_text()) is not None, process, log)
    printed = re.search(r"http://127\.0\.0\.1:\d+/\?token=(\S+)", log.read_text())
    assert printed is not None
    endpoint_page = f"http://127.0.0.1:{port}/endpoints/churn-prod"
    wait_for(lambda: answers(f"{endpoint_page}?token={printed[1]}"), process, log)
    status, html = page(f"{endpoint_page}?token={printed[1]}")
    assert status == 200 and "churn-predictor" in html and "v1" in html
    with pytest.raises(urllib.error.HTTPError, match="403"):  # without the run's token: nothing
        page(endpoint_page)
    state = json.loads((directory / ".shepherd" / "local.json").read_text())
    assert f"Shepherd dashboard for local Shepherd at {state['endpoint_url']}" in log.read_text()
    return process
