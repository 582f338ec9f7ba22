"""The CLI's temporary subscriptions (a `shepherd-cli-*` queue and rule) never outlive it unnoticed.

A CLI in its own process, against moto's server: SIGTERM (a cancelled CI job) removes its queue and
rule as Ctrl-C does; `shepherd cleanup` lists what killed CLIs left, removes it with --delete, and
keeps what a running CLI uses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from shepherd_cli import cleanup, subscription
from shepherd_cli.cleanup import Found, judge
from shepherd_cli.main import cli
from shepherd_cli.subscription import TAG_BUS, TAG_HEARTBEAT, TAG_HOST, TAG_PID, Subscription
from shepherd_cli.target import resolve

ROOT = Path(__file__).resolve().parents[2]
REGION, BUS = "eu-west-1", "shepherd-test"
STACK = {  # what the CLI reads of a Shepherd stack: its outputs
    "Resources": {"Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": BUS}}},
    "Outputs": {
        "ArtifactBucketName": {"Value": "unused-bucket"},
        "RegistryTableName": {"Value": "unused-table"},
        "EventBusName": {"Value": BUS},
    },
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
        client(url, "cloudformation").create_stack(StackName="shepherd-local", TemplateBody=json.dumps(STACK))
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        server.stop()


def client(url: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def local(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHEPHERD_STACK", raising=False)
    monkeypatch.setenv("SHEPHERD_ENDPOINT_URL", endpoint)
    yield endpoint
    for name in subscriptions(endpoint)["queues"]:  # each test starts with none
        sqs = client(endpoint, "sqs")
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    for name in subscriptions(endpoint)["rules"]:
        client(endpoint, "events").remove_targets(Rule=name, EventBusName=BUS, Ids=["shepherd-cli"])
        client(endpoint, "events").delete_rule(Name=name, EventBusName=BUS)


def subscriptions(url: str) -> dict[str, set[str]]:
    queues = client(url, "sqs").list_queues(QueueNamePrefix="shepherd-cli-").get("QueueUrls", [])
    rules = client(url, "events").list_rules(NamePrefix="shepherd-cli-", EventBusName=BUS)["Rules"]
    return {"queues": {q.rsplit("/", 1)[-1] for q in queues}, "rules": {r["Name"] for r in rules}}


def start_cli(url: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    environment = {name: value for name, value in os.environ.items() if name not in ("SHEPHERD_STACK", "AWS_PROFILE")}
    environment["SHEPHERD_ENDPOINT_URL"] = url
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "cli"), str(ROOT / "layers" / "shepherd")])
    return subprocess.Popen(
        [sys.executable, "-m", "shepherd_cli", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_subscription(url: str, before: set[str], process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = subscriptions(url)
        new = (current["queues"] & current["rules"]) - before
        if new:
            [name] = new
            return name
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("the CLI subscribed to nothing within 30 s")


def make_heartbeat_old(url: str, name: str, minutes: int) -> None:
    sqs = client(url, "sqs")
    then = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0).isoformat()
    sqs.tag_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"], Tags={TAG_HEARTBEAT: then})


def test_a_cli_sent_sigterm_deletes_its_queue_and_rule(local, tmp_path):
    # Given a CLI waiting on its temporary subscription, as `status --watch` or a promotion does
    listener = start_cli(local, tmp_path, "events", "--follow")
    name = wait_for_subscription(local, set(), listener)

    # When it is sent SIGTERM, as a cancelled CI job's process is
    listener.send_signal(signal.SIGTERM)
    _, stderr = listener.communicate(timeout=30)

    # Then it says so, exits 143 as a terminated process does, and leaves nothing behind
    assert listener.returncode == 143, stderr
    assert stderr.strip() == "error: terminated"
    assert name not in subscriptions(local)["queues"] and name not in subscriptions(local)["rules"]


def test_cleanup_removes_what_killed_clis_left_and_keeps_what_a_running_cli_uses(local, tmp_path):
    # Given a CLI killed outright 15 minutes ago (SIGKILL cannot be caught: its queue and rule stay)
    killed = start_cli(local, tmp_path, "events", "--follow")
    orphan = wait_for_subscription(local, set(), killed)
    killed.kill()
    killed.wait(timeout=30)
    make_heartbeat_old(local, orphan, minutes=15)
    # and a CLI still running, whose heartbeat is old too (suspended, say): its process is alive here
    running = start_cli(local, tmp_path, "events", "--follow")
    live = wait_for_subscription(local, {orphan}, running)
    make_heartbeat_old(local, live, minutes=15)
    try:
        # When `shepherd cleanup` runs without --delete, it only says what it would remove
        listed = CliRunner().invoke(cli, ["cleanup"])
        assert listed.exit_code == 0, listed.output
        assert f"{orphan}  orphaned: its CLI (pid {killed.pid} on this machine) is gone" in listed.output
        assert f"{live}  kept: its CLI runs here (pid {running.pid})" in listed.output
        assert {orphan, live} <= subscriptions(local)["queues"]

        # and with --delete it removes the orphan's queue and rule, and only those
        deleted = CliRunner().invoke(cli, ["cleanup", "--delete", "--json"])
        assert deleted.exit_code == 0, deleted.output
        verdicts = {item["name"]: item["removed"] for item in json.loads(deleted.stdout)}
        assert verdicts == {orphan: True, live: False}
        assert subscriptions(local) == {"queues": {live}, "rules": {live}}
        assert running.poll() is None  # still listening
    finally:
        running.send_signal(signal.SIGTERM)
        running.communicate(timeout=30)
    assert subscriptions(local) == {"queues": set(), "rules": set()}


def test_cleanup_judges_subscriptions_made_elsewhere_by_their_heartbeat(local):
    # Given queues tagged by CLIs on another machine: one heard from a minute ago, one 11 minutes ago
    sqs = client(local, "sqs")
    now = datetime.now(UTC).replace(microsecond=0)
    for name, minutes in (("shepherd-cli-000000000f01", 1), ("shepherd-cli-0000000000a1", 11)):
        tags = {TAG_BUS: BUS, TAG_HOST: "ci-runner-7", TAG_PID: "4242"}
        sqs.create_queue(QueueName=name, tags={**tags, TAG_HEARTBEAT: (now - timedelta(minutes=minutes)).isoformat()})
    # and a rule whose queue is gone (a live CLI deletes its rule first, its queue last)
    client(local, "events").put_rule(Name="shepherd-cli-0000000000b2", EventBusName=BUS, EventPattern="{}")

    result = CliRunner().invoke(cli, ["cleanup", "--delete"])

    assert result.exit_code == 0, result.output
    assert "shepherd-cli-0000000000a1  removed: unused for 11m (host ci-runner-7, pid 4242)" in result.output
    assert "shepherd-cli-0000000000b2  removed: a rule without its queue" in result.output
    assert subscriptions(local) == {"queues": {"shepherd-cli-000000000f01"}, "rules": set()}


def test_cleanup_keeps_a_new_cli_whose_queue_the_listing_does_not_show_yet(local, monkeypatch):
    # ListQueues is eventually consistent: a CLI that has just made its queue and its rule can show
    # the rule alone. Its queue exists: it is not a rule without its queue.
    sqs, now = client(local, "sqs"), datetime.now(UTC).replace(microsecond=0)
    name = "shepherd-cli-00000000c0de"
    tags = {TAG_BUS: BUS, TAG_HOST: "ci-runner-7", TAG_PID: "4242", TAG_HEARTBEAT: now.isoformat()}
    sqs.create_queue(QueueName=name, tags=tags)
    client(local, "events").put_rule(Name=name, EventBusName=BUS, EventPattern="{}")
    monkeypatch.setattr(cleanup, "_queue_urls", lambda sqs: iter(()))  # the listing lags

    result = CliRunner().invoke(cli, ["cleanup", "--delete"])

    assert result.exit_code == 0, result.output
    assert "removed" not in result.output
    assert subscriptions(local) == {"queues": {name}, "rules": {name}}


def test_a_waiting_cli_tells_that_its_subscription_is_in_use(local, monkeypatch):
    monkeypatch.setattr(subscription, "HEARTBEAT_SECONDS", 0)  # every receive, rather than every minute
    sqs = client(local, "sqs")
    with Subscription(resolve(None, True, None)) as waiting:
        url = sqs.get_queue_url(QueueName=waiting.name)["QueueUrl"]
        make_heartbeat_old(local, waiting.name, minutes=15)

        waiting.receive(0)

        heartbeat = datetime.fromisoformat(sqs.list_queue_tags(QueueUrl=url)["Tags"][TAG_HEARTBEAT])
        assert datetime.now(UTC) - heartbeat < timedelta(minutes=1)


THIS_HOST = socket.gethostname()
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("found", "orphaned"),
    [
        # a live CLI here, whatever its heartbeat says
        (Found("q", "url", True, NOW - timedelta(hours=5), THIS_HOST, 1), False),
        # its process gone here, once two heartbeats are missed
        (Found("q", "url", True, NOW - timedelta(minutes=1), THIS_HOST, 2), False),
        (Found("q", "url", True, NOW - timedelta(minutes=3), THIS_HOST, 2), True),
        # made elsewhere: only after --older-than
        (Found("q", "url", True, NOW - timedelta(minutes=9), "elsewhere", 1), False),
        (Found("q", "url", True, NOW - timedelta(minutes=10), "elsewhere", 1), True),
        # untagged (an older CLI): by the queue's creation
        (Found("q", "url", True, NOW - timedelta(minutes=30)), True),
        (Found("q", None, True, None), True),
    ],
)
def test_judge(found, orphaned):
    verdict = judge(found, NOW, timedelta(minutes=10), THIS_HOST, alive=lambda pid: pid == 1)

    assert verdict.orphaned is orphaned, verdict.why
