"""The `shepherd` commands against local mode: reads through the adapters, changes as commands on the
bus carried out by the functions (the pump runs them), clear errors without tracebacks."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from shepherd_cli.commands.rollouts import build_strategy
from shepherd_cli.errors import CliError
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.main import cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MODEL, ENDPOINT = "churn-predictor", "churn-prod"
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def shepherd(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def as_json(*args: str) -> Any:
    result = shepherd(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def fails(*args: str) -> str:
    """Runs a command that must fail cleanly; returns its error line."""
    result = shepherd(*args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")
    return result.stderr


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalShepherd]:
    """One local Shepherd for the module: each test uses its own model and endpoint names."""
    with LocalShepherd.start(ROOT / "template.yaml", environment_overrides=QUIET) as running:
        # The pump serves in the background, as `local up` does: commands wait for their answer.
        stop = threading.Event()
        server = threading.Thread(target=running.pump.serve, args=(stop,), kwargs={"poll_seconds": 0.1}, daemon=True)
        server.start()
        try:
            yield running
        finally:
            stop.set()
            server.join(30)


@pytest.fixture
def local(emulator: LocalShepherd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> LocalShepherd:
    monkeypatch.chdir(tmp_path)  # no .shepherd/local.json here: the endpoint comes from the variable
    monkeypatch.delenv("SHEPHERD_STACK", raising=False)
    monkeypatch.setenv("SHEPHERD_ENDPOINT_URL", emulator.endpoint_url)
    return emulator


def upload(local: LocalShepherd, folder: str) -> None:
    s3, bucket = local.client("s3"), local.outputs["ArtifactBucketName"]
    s3.put_object(Bucket=bucket, Key=f"{folder}/manifest.json", Body=b'{"metrics": {"auc": 0.9}, "framework": "xgb"}')
    s3.put_object(
        Bucket=bucket, Key=f"{folder}/model.tar.gz", Body=gzip.compress(b"weights"), ChecksumAlgorithm="SHA256"
    )
    local.pump.run_until_idle()


def invocation_of(local: LocalShepherd, logical_id: str, event_id: str) -> dict[str, Any]:
    """The event a function was given for the command `event_id` (the emulator is shared)."""
    name = local.stack.functions[logical_id].name
    [event] = [c.event for c in local.pump.invocations() if c.function_name == name and c.event.get("id") == event_id]
    return event


def test_the_lifecycle_through_the_cli(local):
    upload(local, f"models/{MODEL}/run-1")

    [model] = as_json("models")
    assert model["model_name"] == MODEL and model["latest_version"] == 1
    [version] = as_json("versions", MODEL)
    assert version["status"] == "REGISTERED" and version["checksum"]["algorithm"] == "SHA256"
    assert as_json("show", MODEL, "1")["framework"] == "xgb"
    assert "REGISTERED" in shepherd("versions", MODEL).stdout  # the table for a person

    sent = as_json("approve", MODEL, "1", "--reason", "offline AUC 0.9", "--by", "alice")
    assert sent["detail_type"] == "Model Version Approval Requested"
    assert sent["detail"] == {
        "model_name": MODEL,
        "version": 1,
        "decision": "approved",
        "requested_by": "alice",
        "reason": "offline AUC 0.9",
    }
    local.pump.run_until_idle()
    approval = invocation_of(local, "DecideApprovalFunction", sent["event_id"])
    assert approval["source"] == "shepherd.cli" and approval["detail-type"] == sent["detail_type"]
    assert as_json("show", MODEL, "1")["status"] == "APPROVED"
    assert "only a REGISTERED version can be approved" in fails("approve", MODEL, "1", "--reason", "again")

    sent = as_json("promote", MODEL, "latest-approved", ENDPOINT, "--all-at-once", "--watch", "2m")
    assert sent["detail"]["strategy"] == {"type": "all_at_once", "post_deploy_watch_seconds": 120}
    local.pump.run_until_idle()
    local.pump.advance(180)

    status = as_json("status", ENDPOINT)
    assert status["live"]["version"] == 1
    assert status["rollout"]["phase"] == "COMPLETED"
    assert [(v["version"], v["current_weight"]) for v in status["endpoint"]["variants"]] == [(1, 1.0)]
    assert "churn-predictor-v1" in shepherd("status", ENDPOINT).stdout

    trail = as_json("history", MODEL)
    assert [entry["to_status"] for entry in trail["model"]] == ["REGISTERED", "APPROVED", "DEPLOYING", "LIVE"]
    assert trail["endpoint"] == []
    endpoint_trail = as_json("history", ENDPOINT, "--endpoint")
    assert endpoint_trail["model"] == []
    assert {"started", "create endpoint", "completed"} <= {entry["action"] for entry in endpoint_trail["endpoint"]}

    # A first deployment has nothing to roll back to: the command waits for Shepherd's answer and exits 1.
    refused = shepherd("rollback", ENDPOINT, "--reason", "customer complaints", "--by", "bob", "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stderr) == {"error": f"refused: {ENDPOINT} has no earlier version to roll back to"}
    sent = json.loads(refused.stdout)
    assert sent["detail"] == {"endpoint_name": ENDPOINT, "reason": "customer complaints", "requested_by": "bob"}
    assert sent["answer"]["detail-type"] == "Rollback Skipped"
    assert sent["answer"]["detail"]["command_id"] == sent["event_id"]
    request = invocation_of(local, "RollbackFunction", sent["event_id"])
    assert request["detail-type"] == "Model Rollback Requested" and request["source"] == "shepherd.cli"


def test_a_deployed_stack_is_found_by_its_outputs(local, monkeypatch):
    # The emulator stands in for AWS: --stack reads the stack's Outputs like a deployed one.
    monkeypatch.delenv("SHEPHERD_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint_url)
    upload(local, "models/fraud-detector/run-1")

    assert as_json("versions", "fraud-detector", "--stack", local.stack.name)[0]["version"] == 1
    # Against a stack, a command waits for its answer the same way (a temporary queue and rule, removed after).
    approved = as_json("approve", "fraud-detector", "1", "--reason", "ok", "--stack", local.stack.name)
    assert approved["answer"]["detail"]["command_id"] == approved["event_id"]
    assert not [url for url in local.client("sqs").list_queues().get("QueueUrls", []) if "shepherd-cli-" in url]
    rules = local.client("events").list_rules(EventBusName=local.outputs["EventBusName"])["Rules"]
    assert not [rule for rule in rules if rule["Name"].startswith("shepherd-cli-")]
    assert "stack missing not found" in fails("models", "--stack", "missing")


def test_expected_errors_are_one_line_and_a_non_zero_exit(local):
    upload(local, "models/ranker/run-1")

    assert "no model nope" in fails("versions", "nope")
    assert "has no version 7" in fails("show", "ranker", "7")
    assert "no endpoint nowhere" in fails("status", "nowhere")
    assert "no model or endpoint nothing" in fails("history", "nothing")
    assert "not managed" in fails("rollback", "nowhere", "--reason", "x")
    assert "give one strategy" in fails("promote", "ranker", "1", "ranking", "--canary", "10", "--linear", "20")
    invalid = fails("promote", "ranker", "1", "ranking", "--strategy", '{"type": "canary", "canary_percent": 150}')
    assert "invalid strategy" in invalid and "canary_percent" in invalid
    assert "has no APPROVED version" in fails("promote", "ranker", "latest-approved", "ranking", "--all-at-once")

    as_json_error = shepherd("versions", "nope", "--json")
    assert as_json_error.exit_code == 1
    assert json.loads(as_json_error.stderr) == {"error": f"no model nope in {_where(local)}"}


def _where(local: LocalShepherd) -> str:
    return f"local Shepherd at {local.endpoint_url}"


def test_without_a_shepherd_to_talk_to_the_cli_says_how_to_choose(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("SHEPHERD_ENDPOINT_URL", "SHEPHERD_STACK"):
        monkeypatch.delenv(name, raising=False)

    assert "--stack NAME" in fails("models")
    assert "no local Shepherd" in fails("models", "--local")


@pytest.mark.parametrize(
    ("flags", "strategy"),
    [
        ({"canary": 10}, {"type": "canary", "canary_percent": 10, "bake_seconds": 600}),
        ({"canary": 5, "bake": 60, "watch": 0}, {"type": "canary", "canary_percent": 5, "bake_seconds": 60}
         | {"post_deploy_watch_seconds": 0}),
        ({"linear": 20}, {"type": "linear", "step_percent": 20, "interval_seconds": 300}),
        ({"steps": "5:300,50:600,100"}, {"type": "steps", "steps": [{"percent": 5, "bake_seconds": 300},
         {"percent": 50, "bake_seconds": 600}, {"percent": 100}]}),
        ({"all_at_once": True, "watch": 900}, {"type": "all_at_once", "post_deploy_watch_seconds": 900}),
        ({"strategy": '{"type": "all_at_once"}'}, {"type": "all_at_once"}),
    ],
)  # fmt: skip
def test_strategy_shorthands(flags, strategy):
    arguments = dict.fromkeys(("strategy", "canary", "bake", "linear", "interval", "steps", "watch"))
    assert build_strategy(**{**arguments, "all_at_once": False, **flags}) == strategy


@pytest.mark.parametrize(
    "flags",
    [{}, {"canary": 10, "all_at_once": True}, {"bake": 60, "linear": 10}, {"strategy": "[1]"}, {"strategy": "{"}],
)
def test_strategy_shorthands_that_make_no_sense_are_refused(flags):
    arguments = dict.fromkeys(("strategy", "canary", "bake", "linear", "interval", "steps", "watch"))
    with pytest.raises(CliError):
        build_strategy(**{**arguments, "all_at_once": False, **flags})


def test_what_happened_can_be_found_and_status_agrees_with_itself(local):
    endpoint = "ranking-prod"
    s3, bucket = local.client("s3"), local.outputs["ArtifactBucketName"]
    s3.put_object(Bucket=bucket, Key="models/ranker2/run-0/manifest.json", Body=b"{not json")
    s3.put_object(
        Bucket=bucket, Key="models/ranker2/run-0/model.tar.gz", Body=gzip.compress(b"w"), ChecksumAlgorithm="SHA256"
    )
    upload(local, "models/ranker2/run-1")
    upload(local, "models/ranker2/run-2")

    [rejection] = as_json("rejections", "ranker2")
    assert rejection["code"] == "INVALID_MANIFEST" and rejection["artifact"]["key"].endswith("run-0/model.tar.gz")
    assert as_json("rejections", "nobody") == []

    for version in ("1", "2"):
        assert (
            as_json("approve", "ranker2", version, "--reason", "ok")["answer"]["detail-type"]
            == "Model Version Approved"
        )
    first = as_json("promote", "ranker2", "1", endpoint, "--all-at-once", "--watch", "0")
    assert (
        first["answer"]["detail-type"] == "Rollout Started"
        and first["answer"]["detail"]["rollout_id"] == first["rollout_id"]
    )
    local.pump.advance(180)
    # --no-wait: sent, no answer awaited
    second = as_json("promote", "ranker2", "2", endpoint, "--all-at-once", "--watch", "10m", "--no-wait")
    assert "answer" not in second
    local.pump.advance(180)

    # In the watch window the candidate serves and the previous version is on standby, in every view.
    status = as_json("status", endpoint)
    assert status["rollout"]["phase"] == "WATCHING"
    roles = {
        variant["version"]: (variant["role"], variant["current_weight"]) for variant in status["endpoint"]["variants"]
    }
    assert roles == {2: ("serving", 1.0), 1: ("standby", 0.0)}
    shown = shepherd("status", endpoint).stdout
    assert "standby" in shown and "watch window" in shown and "DESIRED WEIGHT" in shown and "INSTANCES" in shown

    listed = as_json("rollouts", endpoint)
    assert [(r["rollout_id"], r["version"]) for r in listed] == [(second["rollout_id"], 2), (first["rollout_id"], 1)]

    rolled_back = as_json("rollback", endpoint, "--reason", "complaints", "--by", "bob")
    assert rolled_back["answer"]["detail-type"] == "Rollout Rolled Back"
    assert rolled_back["answer"]["detail"]["command_id"] == rolled_back["event_id"]

    found = as_json("rollout", second["rollout_id"])  # found without naming its endpoint
    assert found["endpoint_name"] == endpoint and found["version"] == 2
    assert found["timeline"][0]["action"] == "started"
    assert found["incident"]["trigger"] == "bob" and found["incident"]["restored_version"] == 1
    shown = shepherd("rollout", second["rollout_id"]).stdout
    assert "Incident" in shown
    # The cost ledger: v2 ran beside v1 through its watch window, priced from the built-in table
    assert found["cost"]["extra_instance_hours"] > 0
    assert "extra instance-hours" in shown and "estimate from Shepherd's built-in approximate table" in shown
    assert "not a rollout id" in fails("rollout", "nope")
