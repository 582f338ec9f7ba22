"""A temporary subscription to Shepherd's announcements: how the CLI hears the answer to a command.

The same way for a deployed stack and for local mode: an SQS queue of the CLI's own, and a rule on
the Shepherd bus (``source: shepherd``) whose target is that queue, both named
``shepherd-cli-<random>``, created before the command is sent and deleted when the command's answer
arrived (or the wait timed out, or Ctrl-C). The queue policy lets only that rule send to the queue.
The caller needs ``events:PutRule/PutTargets/RemoveTargets/DeleteRule`` on the bus and
``sqs:CreateQueue/SetQueueAttributes/ReceiveMessage/DeleteMessage/DeleteQueue`` on
``shepherd-cli-*`` queues. A new rule can take a moment to take effect on AWS; the CLI therefore also
reads the records the functions write when no answer arrived (see `operations.wait_for_answer`).
"""

from __future__ import annotations

import json
import time
import uuid
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shepherd_cli.target import Target

ANNOUNCEMENTS_PATTERN = {"source": ["shepherd"]}
MAX_LONG_POLL_SECONDS = 20  # SQS's limit


class Subscription:
    """Announcements on the Shepherd bus from the moment it is entered; use as a context manager."""

    def __init__(self, target: Target) -> None:
        self.name = f"shepherd-cli-{uuid.uuid4().hex[:12]}"
        self._target = target
        self._sqs = target.client("sqs")
        self._events = target.client("events")
        self._queue_url: str | None = None
        self._rule = False

    def __enter__(self) -> Subscription:
        try:
            self._subscribe()
        except BaseException:
            self.close()
            raise
        return self

    def _subscribe(self) -> None:
        self._queue_url = self._sqs.create_queue(QueueName=self.name)["QueueUrl"]
        attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
        queue_arn = attributes["Attributes"]["QueueArn"]
        rule_arn = self._events.put_rule(
            Name=self.name,
            EventBusName=self._target.bus,
            EventPattern=json.dumps(ANNOUNCEMENTS_PATTERN),
            Description="shepherd CLI: waiting for an answer (deleted when done)",
        )["RuleArn"]
        self._rule = True
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
            Rule=self.name, EventBusName=self._target.bus, Targets=[{"Id": "shepherd-cli", "Arn": queue_arn}]
        )

    def receive(self, wait_seconds: float) -> list[dict[str, Any]]:
        """The announcements that arrived, waiting up to `wait_seconds` for the first (oldest first)."""
        assert self._queue_url is not None, "use the subscription as a context manager"
        deadline = time.monotonic() + wait_seconds
        while True:
            remaining = deadline - time.monotonic()
            poll = max(0, min(MAX_LONG_POLL_SECONDS, int(remaining)))
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=poll
            ).get("Messages", [])
            if messages:
                for message in messages:
                    self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                announcements = [json.loads(message["Body"]) for message in messages]
                return sorted(announcements, key=lambda announcement: str(announcement.get("time", "")))
            if remaining <= 0:
                return []
            if poll == 0:  # under a second left: an emulator without long polling returns at once
                time.sleep(min(0.2, remaining))

    def close(self) -> None:
        """Delete the rule and the queue; a failure here leaves them behind, which is only untidy."""
        try:
            if self._rule:
                self._events.remove_targets(Rule=self.name, EventBusName=self._target.bus, Ids=["shepherd-cli"])
                self._events.delete_rule(Name=self.name, EventBusName=self._target.bus)
            if self._queue_url is not None:
                self._sqs.delete_queue(QueueUrl=self._queue_url)
        except (ClientError, BotoCoreError):
            pass

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.close()
