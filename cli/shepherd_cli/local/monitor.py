"""Watching local mode: Shepherd's announcements and the functions' invocations, as readable lines.

`BusMonitor` subscribes a queue of its own to the Shepherd bus (a rule for source ``shepherd``, as any
subscriber would), so announcements no function consumes are seen too. `describe_announcement` and
`describe_invocation` turn events into one line for a person; `local up` and `local demo` print them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shepherd_cli.local.pump import Outcome
from shepherd_cli.local.stack import LocalShepherd

MONITOR_NAME = "shepherd-cli-monitor"


@dataclass(frozen=True)
class Line:
    """One entry of a timeline: when (simulated), what, and the details."""

    at: datetime
    kind: str  # "action" (something the user did), "announcement", "failure", "invocation"
    title: str
    details: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "kind": self.kind, "title": self.title, "details": self.details}


class BusMonitor:
    """A queue subscribed to every announcement (source ``shepherd``) on the Shepherd bus."""

    def __init__(self, local: LocalShepherd, name: str = MONITOR_NAME) -> None:
        self._sqs = local.client("sqs")
        events = local.client("events")
        bus = local.outputs["EventBusName"]
        self._url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["shepherd"]}))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "cli-monitor", "Arn": arn}])

    def drain(self) -> list[dict[str, Any]]:
        """Every announcement received since the last call, oldest first."""
        received: list[dict[str, Any]] = []
        while True:
            messages = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])


def event_shape(event: dict[str, Any]) -> str:
    """What kind of event a function was given."""
    if "detail-type" in event:
        return str(event["detail-type"])
    if "alarmData" in event:
        return "alarm action"
    if "Records" in event:
        return "SNS notification"
    return "event"


def _item_summary(item: Any) -> str:
    """One entry of a handler's `results`: its result, and its reason when short."""
    if not isinstance(item, dict):
        return str(item)
    reason = str(item.get("reason") or "")
    return f"{item.get('result')} ({reason})" if reason and len(reason) <= 60 else str(item.get("result"))


def _result_summary(result: Any) -> str:
    if isinstance(result, dict) and isinstance(result.get("results"), list):
        return ", ".join(_item_summary(item) for item in result["results"])
    if isinstance(result, dict) and isinstance(result.get("results"), dict):  # the controller: per rollout
        return ", ".join(f"rollout {rollout}: {action}" for rollout, action in result["results"].items()) or "idle"
    if isinstance(result, dict) and result.get("result") == "refused" and "command_id" in result:
        return "refused: malformed command (the Command Refused line says why)"
    if isinstance(result, dict):
        result = {key: value for key, value in result.items() if value not in (None, {}, [])}
    text = "" if result is None else json.dumps(result, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def condensed_error(error: str | None) -> str:
    """One line for a handler's error: a pydantic validation error becomes `invalid <what>: <field>:
    <message>` (its first problem, and how many more), not its multi-line report."""
    lines = (error or "").splitlines()
    if len(lines) >= 3 and " validation error" in lines[0]:
        count, _, what = lines[0].removeprefix("ValidationError: ").partition(" validation error")
        message = lines[2].strip().split(" [type=")[0]
        more = f" (and {int(count) - 1} more)" if count.isdigit() and int(count) > 1 else ""
        return f"invalid {what.removeprefix('s').removeprefix(' for ')}: {lines[1].strip()}: {message}{more}"
    return lines[0] if lines else ""


def invocation_summary(event: dict[str, Any], outcome: Outcome) -> str:
    """`<- <event shape>: <result or error>` for one invocation attempt."""
    if outcome.status != "ok":
        return (
            f"<- {event_shape(event)}: {outcome.status} (attempt {outcome.attempt}): {condensed_error(outcome.error)}"
        )
    return f"<- {event_shape(event)}: {_result_summary(outcome.result)}"


def describe_invocation(function_name: str, event: dict[str, Any], outcome: Outcome) -> str:
    return f"{function_name} {invocation_summary(event, outcome)}"


def is_idle_tick(event: dict[str, Any], outcome: Outcome) -> bool:
    """A controller pass that found nothing to do or only waited: not worth a line."""
    if outcome.status != "ok" or event.get("detail-type") != "Scheduled Event":
        return False
    results = outcome.result.get("results") if isinstance(outcome.result, dict) else None
    return isinstance(results, dict) and all(value == "waiting" for value in results.values())
