"""Shared fixtures: a clean AWS environment per test, and a moto world holding Shepherd's resources."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from shepherd import bootstrap
from shepherd_cli.local import atomic_dynamodb
from tests.world import World

ROOT = Path(__file__).resolve().parents[1]

# Handler modules build Powertools' Logger, Tracer and Metrics at import, as in Lambda: set their
# configuration before any test module imports one.
os.environ.update(
    POWERTOOLS_SERVICE_NAME="shepherd",
    POWERTOOLS_METRICS_NAMESPACE="Shepherd",
    POWERTOOLS_TRACE_DISABLED="true",  # no X-Ray daemon outside Lambda
)

# moto's DynamoDB is not atomic across threads; DynamoDB is (see the module's docstring).
atomic_dynamodb.install()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach real AWS: dummy credentials, a fixed region, no endpoint overrides."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Shepherd's bucket, table and bus in moto, with the functions' environment variables set."""
    with mock_aws():
        created = World.create()
        for name, value in created.environment().items():
            monkeypatch.setenv(name, value)
        # The handlers' container for this test only: clients on this moto world, built on first use.
        with bootstrap.wired(bootstrap.Container()):
            yield created


# --- The IAM proof (tests/iam/): what the handler tests' calls needed, reported and checked at the end ---


# Whether the whole handler suite ran, and what the proof found (set at the session's end).
IAM_REPORT = pytest.StashKey[tuple[bool, list[str]]]()


def _proof_of_this_run() -> Any:
    from tests.iam.proof import PROOF  # imported on use: a run without handler tests never loads it

    return PROOF


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist: merge what a worker's handler tests recorded."""
    data = getattr(node, "workeroutput", {}).get("iam_proof")
    if data:
        _proof_of_this_run().merge(json.loads(data))


def _whole_handler_suite_ran(config: pytest.Config, proof: Any) -> bool:
    """Only a run of every handler test module, unfiltered, can say a grant is never used."""
    modules = {f"tests/handlers/{path.name}" for path in (ROOT / "tests" / "handlers").glob("test_*.py")}
    filtered = config.option.keyword or config.option.markexpr or any("::" in arg for arg in config.args)
    return modules <= proof.modules and not filtered


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if "tests.iam.proof" not in sys.modules and not hasattr(config, "workerinput"):
        return
    proof = _proof_of_this_run()
    if hasattr(config, "workeroutput"):  # an xdist worker: the controller reports
        config.workeroutput["iam_proof"] = json.dumps(proof.as_json())
        return
    if not proof.modules:  # no handler test ran
        return
    complete = _whole_handler_suite_ran(config, proof)
    problems = (proof.unused() + proof.misused_set_operators()) if complete else []
    config.stash[IAM_REPORT] = (complete, problems)
    if problems and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if IAM_REPORT not in config.stash:
        return
    complete, problems = config.stash[IAM_REPORT]
    proof = _proof_of_this_run()
    write = terminalreporter.write_line
    terminalreporter.section("IAM: the actions each function's recorded calls used (tests/iam/)")
    for line in proof.report():
        write(line)
    if not complete:
        write("unused grants not checked: not every handler test ran")
    elif problems:
        write("IAM proof FAILED: grants no recorded call uses, or set operators on single-valued keys:", red=True)
        for line in problems:
            write(f"  {line}", red=True)
    else:
        write("IAM proof: every recorded call is allowed and every grant is used", green=True)
