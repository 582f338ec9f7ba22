"""What the CLI tells an operator matches what happened (issue 21): against local mode, in process.

What serves is read from the endpoint's weights; ignored and broken uploads, and refused promotions,
leave a record the operator can find; reasons are printed as given; a rolled-back version can be
promoted again when asked explicitly.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest
import test_cli
from test_cli import as_json, fails, shepherd

from shepherd_cli.local.stack import LocalShepherd

pytestmark = pytest.mark.e2e
# test_cli's local Shepherd, shared by the tests of this module (each with its own names).
emulator = test_cli.emulator
local = test_cli.local


def put(local: LocalShepherd, key: str, body: bytes) -> None:
    local.client("s3").put_object(Bucket=local.outputs["ArtifactBucketName"], Key=key, Body=body)


def registered(local: LocalShepherd, model: str, *runs: int) -> None:
    """Versions of `model`, one per run, approved."""
    for run in runs:
        put(local, f"models/{model}/run-{run}/model.tar.gz", gzip.compress(f"weights {run}".encode()))
        local.pump.run_until_idle()
    for version in range(1, len(runs) + 1):
        assert as_json("approve", model, str(version), "--reason", "ok")["answer"]["detail-type"] == (
            "Model Version Approved"
        )


def statuses(model: str) -> dict[int, str]:
    return {version["version"]: version["status"] for version in as_json("versions", model)}


def test_live_is_the_version_taking_the_traffic_after_a_rollback_to_an_earlier_version(local):
    model, endpoint = "scorer", "scorer-prod"
    registered(local, model, 1, 2)
    as_json("promote", model, "1", endpoint, "--all-at-once", "--watch", "0")
    local.pump.advance(180)
    as_json("promote", model, "2", endpoint, "--all-at-once", "--watch", "0")
    local.pump.advance(300)
    assert statuses(model) == {2: "LIVE", 1: "RETIRED"}

    # v2 misbehaves after its watch window: the operator redeploys v1 (with the default watch window).
    answer = as_json("rollback", endpoint, "--to-version", "1", "--reason", "complaints", "--by", "bob")["answer"]
    assert answer["detail-type"] == "Rollout Started"
    local.pump.advance(180)

    status = as_json("status", endpoint)
    assert status["rollout"]["phase"] == "WATCHING"
    assert [(entry["version"], round(entry["percent"])) for entry in status["serving"]] == [(1, 100)]
    assert status["standby"] == [2]
    shown = shepherd("status", endpoint).stdout
    assert f"Serving:   {model} v1 100%" in shown and "Standby:   v2 at 0%" in shown
    assert "Live:" not in shown
    # The registry agrees: one version LIVE, the other on standby, never both LIVE.
    assert statuses(model) == {2: "STANDBY", 1: "LIVE"}
    assert "STANDBY" in shepherd("versions", model).stdout


def test_ignored_and_broken_uploads_are_recorded_with_their_key_and_reason(local):
    put(local, "models/parser/run-1/model.zip", b"PK\x03\x04")
    put(local, "model.tar.gz", gzip.compress(b"w"))
    put(local, "incoming/parser/model.tar.gz", gzip.compress(b"w"))
    put(local, "models/parser/run-2/model.tar.gz", b"")
    put(local, "models/parser/run-3/model.tar.gz", b"just some text")
    put(local, "models/parser/run-4/manifest.json", b"{" + b" " * (300 * 1024) + b"}")
    put(local, "models/parser/run-4/model.tar.gz", gzip.compress(b"w"))
    put(local, "models/Parser_v2/run-1/model.tar.gz", gzip.compress(b"w"))
    local.pump.run_until_idle()

    found = {entry["artifact"]["key"]: (entry["code"], entry["reason"]) for entry in as_json("rejections")}
    assert found["models/parser/run-1/model.zip"][0] == "IGNORED"
    assert "'model.zip', not 'model.tar.gz'" in found["models/parser/run-1/model.zip"][1]
    assert "bucket root" in found["model.tar.gz"][1]
    assert "outside models/" in found["incoming/parser/model.tar.gz"][1]
    assert found["models/parser/run-2/model.tar.gz"] == ("INVALID_ARTIFACT", "model.tar.gz is empty (0 bytes)")
    assert found["models/parser/run-3/model.tar.gz"][0] == "INVALID_ARTIFACT"
    assert "not gzip-compressed" in found["models/parser/run-3/model.tar.gz"][1]
    assert "larger than the 256 KiB limit" in found["models/parser/run-4/model.tar.gz"][1]
    assert "no model parser" in fails("versions", "parser")  # nothing registered

    # A reason quoting the name rule is printed as given, not read as Rich markup.
    table = shepherd("rejections", "--limit", "20").stdout
    assert "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$" in table
    assert "models/parser/run-1/model.zip" in table


def promotion_refusal(status: dict[str, Any]) -> dict[str, Any]:
    refused = status["refused"]
    assert refused is not None, status
    return dict(refused)


def test_a_refused_promotion_is_found_by_status_rejections_and_history(local):
    model, endpoint = "ranker3", "ranker3-prod"
    put(local, f"models/{model}/run-1/model.tar.gz", gzip.compress(b"w"))
    local.pump.run_until_idle()

    # Waiting for the answer: the refusal is said once, on stderr.
    result = shepherd("promote", model, "1", endpoint, "--all-at-once")
    assert result.exit_code == 1
    assert "only APPROVED versions can be promoted" in result.stderr
    assert "Promotion Rejected" not in result.stdout and "only APPROVED" not in result.stdout

    # --no-wait, then status: the refusal, not "no endpoint". (A second later: a command's time is to
    # the second, as EventBridge keeps it, and status shows the newest refusal.)
    time.sleep(1.1)
    sent = as_json("promote", model, "1", endpoint, "--all-at-once", "--no-wait")
    local.pump.run_until_idle()
    refused = promotion_refusal(as_json("status", endpoint))
    assert refused["rollout_id"] == sent["rollout_id"] and "REGISTERED" in refused["reason"]
    assert "Refused:" in shepherd("status", endpoint).stdout
    watched = shepherd("status", endpoint, "--watch", "--timeout", "10")
    assert watched.exit_code == 1 and "only APPROVED versions" in watched.stderr

    # Sent straight to the bus, by another tool: recorded all the same.
    detail = {
        "model_name": model,
        "version": 1,
        "endpoint_name": endpoint,
        "strategy": {"type": "all_at_once"},
        "requested_by": "ci-bot",
        "reason": "nightly",
    }
    local.client("events").put_events(
        Entries=[
            {
                "Source": "acme.ci",
                "DetailType": "Model Promotion Requested",
                "Detail": json.dumps(detail),
                "EventBusName": local.outputs["EventBusName"],
            }
        ]
    )
    local.pump.run_until_idle()

    listed = [entry for entry in as_json("rejections", model) if entry["kind"] == "promotion"]
    assert [entry["requested_by"] for entry in listed][:1] == ["ci-bot"]
    assert {entry["endpoint_name"] for entry in listed} == {endpoint} and len(listed) == 3
    assert "promotion v1 to ranker3-prod by ci-bot" in shepherd("rejections", model).stdout
    trail = as_json("history", endpoint, "--endpoint")["endpoint"]
    assert [entry["action"] for entry in trail] == ["promotion rejected"] * 3


def test_a_rolled_back_version_is_promoted_again_only_when_asked_and_the_audit_says_so(local):
    model, endpoint = "tagger", "tagger-prod"
    registered(local, model, 1, 2)
    as_json("promote", model, "1", endpoint, "--all-at-once", "--watch", "0")
    local.pump.advance(180)
    second = as_json("promote", model, "2", endpoint, "--all-at-once", "--watch", "10m")
    local.pump.advance(180)
    rolled_back = as_json("rollback", endpoint, "--reason", "false alarm?", "--by", "bob")
    assert rolled_back["answer"]["detail-type"] == "Rollout Rolled Back"
    local.pump.advance(180)
    assert statuses(model) == {2: "ROLLED_BACK", 1: "LIVE"}

    # What happened reads right: who rolled v2 back and why; weights as percentages; what the flip
    # was timed from (bob's request, not an alarm).
    shown = shepherd("show", model, "2").stdout
    assert "rolled back by" in shown and "bob: false alarm?" in shown
    shown = shepherd("rollout", second["rollout_id"]).stdout
    assert "{'" not in shown and "100%" in shown
    assert "after the alarm" not in shown and "bob's request" in shown

    refusal = fails("promote", model, "2", endpoint, "--all-at-once")
    assert "ROLLED_BACK" in refusal and "--allow-rolled-back" in refusal

    again = as_json("promote", model, "2", endpoint, "--all-at-once", "--allow-rolled-back", "--reason", "it was fine")
    assert again["detail"]["allow_rolled_back"] is True
    assert again["answer"]["detail-type"] == "Rollout Started"
    trail = as_json("history", model, "--model")["model"]
    [redeployed] = [entry for entry in trail if entry["version"] == 2 and entry["from_status"] == "ROLLED_BACK"]
    assert redeployed["to_status"] == "DEPLOYING" and redeployed["actor"] == again["detail"]["requested_by"]
    assert "promoted again after its rollback" in redeployed["reason"]
