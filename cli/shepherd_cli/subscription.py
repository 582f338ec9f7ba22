"""A temporary subscription to Shepherd's announcements: how the CLI hears the answer to a command.

The same way for a deployed stack and for local mode: an SQS queue of the CLI's own, and a rule on
the Shepherd bus (``source: shepherd``) whose target is that queue, both named
``shepherd-cli-<12 hex digits>``, created before the command is sent and deleted when the command's
answer arrived (or the wait timed out, or Ctrl-C, or SIGTERM: `main` turns SIGTERM into `Terminated`,
which unwinds like Ctrl-C). The queue policy lets only that rule send to the queue. The queue carries
tags saying who made it and that it is still in use, so that `shepherd cleanup` can tell a live
subscription from one a killed CLI left (see `cleanup.py`): ``shepherd-cli:bus``, ``shepherd-cli:host``,
``shepherd-cli:pid``, and ``shepherd-cli:heartbeat``, refreshed every minute while the CLI waits.
The caller needs ``events:PutRule/PutTargets/RemoveTargets/DeleteRule`` on the bus and
``sqs:CreateQueue/TagQueue/SetQueueAttributes/ReceiveMessage/DeleteMessage/DeleteQueue`` on
``shepherd-cli-*`` queues. A new rule can take a moment to take effect on AWS; the CLI therefore also
reads the records the functions write when no answer arrived (see `command_answers.wait_for_answer`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shepherd_cli.errors import CliError
from shepherd_cli.target import Target

ANNOUNCEMENTS_PATTERN = {"source": ["shepherd"]}
MAX_LONG_POLL_SECONDS = 20  # SQS's limit
NAME_PREFIX = "shepherd-cli-"
TARGET_ID = "shepherd-cli"
HEARTBEAT_SECONDS = 60
QUEUE_GONE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})  # query, JSON protocol
# The queue's tags (see the module docstring and cleanup.py).
TAG_BUS, TAG_HOST, TAG_PID, TAG_HEARTBEAT = (
    "shepherd-cli:bus",
    "shepherd-cli:host",
    "shepherd-cli:pid",
    "shepherd-cli:heartbeat",
)


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (a second SIGTERM must not cut a clean-up short)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Subscription:
    """Announcements on the Shepherd bus from the moment it is entered; use as a context manager."""

    def __init__(self, target: Target) -> None:
        self.name = f"{NAME_PREFIX}{uuid.uuid4().hex[:12]}"
        self._target = target
        self._sqs = target.client("sqs")
        self._events = target.client("events")
        self._queue_url: str | None = None
        self._rule = False
        self._last_beat = time.monotonic()

    def __enter__(self) -> Subscription:
        try:
            self._subscribe()
        except BaseException:
            self.close()
            raise
        return self

    def _subscribe(self) -> None:
        tags = {TAG_BUS: self._target.bus, TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid())}
        self._queue_url = self._sqs.create_queue(QueueName=self.name, tags={**tags, TAG_HEARTBEAT: utc_now()})[
            "QueueUrl"
        ]
        attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
        queue_arn = attributes["Attributes"]["QueueArn"]
        self._rule = True  # set first: a signal during the call must not leave the rule out of `close`
        rule_arn = self._events.put_rule(
            Name=self.name,
            EventBusName=self._target.bus,
            EventPattern=json.dumps(ANNOUNCEMENTS_PATTERN),
            Description="shepherd CLI: waiting for an answer (deleted when done)",
        )["RuleArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        self._sqs.set_queue_attributes(QueueUrl=self._queue_url, Attributes={"Policy": json.dumps(policy)})
        self._events.put_targets(
            Rule=self.name, EventBusName=self._target.bus, Targets=[{"Id": TARGET_ID, "Arn": queue_arn}]
        )

    def receive(self, wait_seconds: float) -> list[dict[str, Any]]:
        """The announcements that arrived, waiting up to `wait_seconds` for the first (oldest first)."""
        assert self._queue_url is not None, "use the subscription as a context manager"
        deadline = time.monotonic() + wait_seconds
        while True:
            self._beat()
            remaining = deadline - time.monotonic()
            poll = max(0, min(MAX_LONG_POLL_SECONDS, int(remaining)))
            messages = self._receive(poll)
            if messages:
                for message in messages:
                    self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                announcements = [json.loads(message["Body"]) for message in messages]
                return sorted(announcements, key=lambda announcement: str(announcement.get("time", "")))
            if remaining <= 0:
                return []
            if poll == 0:  # under a second left: an emulator without long polling returns at once
                time.sleep(min(0.2, remaining))

    def _receive(self, poll: int) -> list[dict[str, Any]]:
        assert self._queue_url is not None
        try:
            messages: list[dict[str, Any]] = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=poll
            ).get("Messages", [])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in QUEUE_GONE:
                raise CliError(f"this CLI's queue {self.name} was deleted (by `shepherd cleanup`?)") from None
            raise
        return messages

    def _beat(self) -> None:
        """Tell `shepherd cleanup` this subscription is in use, once a minute."""
        if time.monotonic() - self._last_beat < HEARTBEAT_SECONDS:
            return
        assert self._queue_url is not None
        self._sqs.tag_queue(QueueUrl=self._queue_url, Tags={TAG_HEARTBEAT: utc_now()})
        self._last_beat = time.monotonic()

    def close(self) -> None:
        """Delete the rule, then the queue (the order `shepherd cleanup` relies on: a rule without its
        queue is never a live one). Ctrl-C and SIGTERM wait meanwhile; a failure leaves them behind
        for `shepherd cleanup`."""
        with _signals_held():
            if self._rule:
                self._quietly(
                    self._events.remove_targets, Rule=self.name, EventBusName=self._target.bus, Ids=[TARGET_ID]
                )
                self._quietly(self._events.delete_rule, Name=self.name, EventBusName=self._target.bus)
            if self._queue_url is not None:
                self._quietly(self._sqs.delete_queue, QueueUrl=self._queue_url)
            self._rule, self._queue_url = False, None

    @staticmethod
    def _quietly(call: Any, **arguments: Any) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):  # already gone, or AWS failing: left for cleanup
            call(**arguments)

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.close()
