"""`shepherd cleanup`: the temporary subscriptions that killed CLIs left behind.

A CLI's subscription (`subscription.py`) is a queue and a rule named ``shepherd-cli-<12 hex>``,
deleted when the CLI is done, interrupted or sent SIGTERM. A CLI killed outright (SIGKILL, a lost
machine) leaves them, and the rule keeps copying every announcement into the queue. `find` lists the
subscriptions on the target's bus and says of each whether it is orphaned; `remove` deletes one.

Orphaned (`judge`), in this order:

* a rule on the bus without its queue: a CLI creates the queue first and deletes it last, so no live
  CLI has one;
* never one whose CLI runs on this machine (its host tag is this host name and its process exists);
* never one whose heartbeat is younger than `GRACE` (a live CLI refreshes it every minute, whatever
  a process id says about another container with the same host name);
* one whose CLI ran on this machine and is gone;
* one whose heartbeat (or, for a queue made by a CLI before the tags, its creation) is older than
  ``older_than`` (10 minutes by default): its CLI, wherever it ran, stopped waiting that long ago.

Queues tagged for another bus (another stack in the same account and region) are not listed; an
untagged queue is listed only with a rule of its name on this bus. Local mode's own monitor
(``shepherd-cli-monitor``) does not match the name.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from shepherd_cli.local.state import pid_alive
from shepherd_cli.subscription import NAME_PREFIX, QUEUE_GONE, TAG_BUS, TAG_HEARTBEAT, TAG_HOST, TAG_PID, TARGET_ID
from shepherd_cli.target import Target

NAME = re.compile(re.escape(NAME_PREFIX) + r"[0-9a-f]{12}")
DEFAULT_OLDER_THAN = timedelta(minutes=10)
GRACE = timedelta(minutes=2)  # two missed heartbeats


class Found(msgspec.Struct, frozen=True):
    """One temporary subscription as found on AWS (or local mode)."""

    name: str
    queue_url: str | None
    has_rule: bool
    last_sign_of_life: datetime | None  # the heartbeat tag, else the queue's creation
    host: str | None = None
    pid: int | None = None


class Judged(msgspec.Struct, frozen=True):
    found: Found
    orphaned: bool
    why: str

    def to_json(self) -> dict[str, Any]:
        life = self.found.last_sign_of_life
        return {
            "name": self.found.name,
            "queue_url": self.found.queue_url,
            "rule": self.found.has_rule,
            "last_sign_of_life": life.isoformat() if life else None,
            "host": self.found.host,
            "pid": self.found.pid,
            "orphaned": self.orphaned,
            "why": self.why,
        }


def judge(
    found: Found,
    now: datetime,
    older_than: timedelta,
    this_host: str,
    alive: Callable[[int], bool] = pid_alive,
) -> Judged:
    if found.queue_url is None:
        return Judged(found, True, "a rule without its queue")
    here = found.host == this_host and found.pid is not None
    if here and alive(found.pid or 0):
        return Judged(found, False, f"its CLI runs here (pid {found.pid})")
    age = now - (found.last_sign_of_life or now)
    if age < GRACE:
        return Judged(found, False, f"in use {_minutes(age)} ago")
    if here:
        return Judged(found, True, f"its CLI (pid {found.pid} on this machine) is gone")
    if age >= older_than:
        return Judged(found, True, f"unused for {_minutes(age)}")
    return Judged(found, False, f"in use {_minutes(age)} ago (orphaned after {_minutes(older_than)})")


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes}m" if minutes < 120 else f"{minutes // 60}h"


def find(target: Target, now: datetime, older_than: timedelta = DEFAULT_OLDER_THAN) -> list[Judged]:
    """Every temporary subscription on the target's bus, oldest sign of life first, judged."""
    sqs, bus = target.client("sqs"), target.bus
    rules = set(_rule_names(target.client("events"), bus))
    found: dict[str, Found] = {}
    for url in _queue_urls(sqs):
        described = _describe_queue(sqs, url)
        if described is None:
            continue  # deleted meanwhile
        tags, created = described
        name = url.rstrip("/").rsplit("/", 1)[-1]
        if tags.get(TAG_BUS, bus) != bus or (TAG_BUS not in tags and name not in rules):
            continue  # another stack's, or not known to be this bus's
        found[name] = Found(name, url, name in rules, _sign_of_life(tags, created), tags.get(TAG_HOST), _pid(tags))
    for name in rules - found.keys():
        # ListQueues is eventually consistent: a CLI that has just made its queue, then its rule, may
        # show the rule alone. Only a queue that does not exist makes a rule queue-less.
        lagging = _queue_url(sqs, name)
        described = _describe_queue(sqs, lagging) if lagging is not None else None
        if lagging is None or described is None:
            found[name] = Found(name, None, True, None)
            continue
        tags, created = described
        found[name] = Found(name, lagging, True, _sign_of_life(tags, created), tags.get(TAG_HOST), _pid(tags))
    this_host = socket.gethostname()
    judged = [judge(item, now, older_than, this_host) for item in found.values()]
    return sorted(judged, key=lambda j: (j.found.last_sign_of_life or datetime.min.replace(tzinfo=UTC), j.found.name))


def remove(target: Target, found: Found) -> None:
    """Delete the rule (its target first, as EventBridge requires), then the queue."""
    events, bus = target.client("events"), target.bus
    if found.has_rule:
        _unless_gone(events.remove_targets, Rule=found.name, EventBusName=bus, Ids=[TARGET_ID])
        _unless_gone(events.delete_rule, Name=found.name, EventBusName=bus)
    if found.queue_url is not None:
        _unless_gone(target.client("sqs").delete_queue, QueueUrl=found.queue_url)


def _unless_gone(call: Callable[..., Any], **arguments: Any) -> None:
    try:
        call(**arguments)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"ResourceNotFoundException", *QUEUE_GONE}:
            raise


def _rule_names(events: Any, bus: str) -> Iterator[str]:
    for page in events.get_paginator("list_rules").paginate(NamePrefix=NAME_PREFIX, EventBusName=bus):
        yield from (rule["Name"] for rule in page.get("Rules", []) if NAME.fullmatch(rule["Name"]))


def _queue_urls(sqs: Any) -> Iterator[str]:
    pages = sqs.get_paginator("list_queues").paginate(QueueNamePrefix=NAME_PREFIX, PaginationConfig={"PageSize": 1000})
    for page in pages:
        yield from (url for url in page.get("QueueUrls", []) if NAME.fullmatch(url.rstrip("/").rsplit("/", 1)[-1]))


def _queue_url(sqs: Any, name: str) -> str | None:
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in QUEUE_GONE:
            return None
        raise


def _describe_queue(sqs: Any, url: str) -> tuple[dict[str, str], datetime] | None:
    try:
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["CreatedTimestamp"])["Attributes"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in QUEUE_GONE:
            return None
        raise
    return dict(tags), datetime.fromtimestamp(float(attributes["CreatedTimestamp"]), UTC)  # seconds (moto: a float)


def _sign_of_life(tags: dict[str, str], created: datetime) -> datetime:
    try:
        return datetime.fromisoformat(tags[TAG_HEARTBEAT])
    except (KeyError, ValueError):
        return created


def _pid(tags: dict[str, str]) -> int | None:
    value = tags.get(TAG_PID, "")
    return int(value) if value.isdigit() else None
