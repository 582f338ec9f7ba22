"""Local mode's Lambda: hands each function its events the way AWS would, and runs it in-process.

moto cannot run Lambda functions (it needs Docker, and an EventBridge rule with a Lambda target makes
``PutEvents`` fail), never fires schedules, and never acts on an alarm's state. The pump fills that in:

* **Routing stays moto's.** Each function target of a stack rule is replaced by an SQS queue (one per
  function and rule), so moto's own pattern matching decides which function gets which event - the
  patterns are the template's. Schedule rules and disabled rules get no queue target: moto treats a
  rule without a pattern as matching every event, and ignores a rule's state. SNS subscriptions of
  functions become SQS subscriptions with the same filter policy.
* **Invocation is Lambda's asynchronous one.** Queues are drained and each event is given to the
  function's ``lambda_handler(event, context)``, imported from its code folder under a unique module
  name, with the function's resolved environment in ``os.environ`` (plus the emulator's endpoint,
  region and dummy credentials) only while it runs. A failed invocation is retried (twice, or the
  function's ``MaximumRetryAttempts``), then the event goes to the function's dead-letter queue with
  Lambda's message attributes. SNS notifications arrive in the SNS record shape; EventBridge events
  get a constant ``Input``/``InputPath`` applied here (moto ignores both for SQS targets), and the
  ``account`` field moto leaves out of events sent with ``PutEvents``.
* **Time is simulated.** Schedules (``rate(...)`` and ``cron(...)`` rules, Scheduler schedules) fire
  from ``clock``, which moves only with ``advance(seconds)`` (or ``serve(speed=...)``): a rule sends
  EventBridge's "Scheduled Event" with ``time`` = the simulated now.
* **Alarm state changes are emitted.** Every state change made in the emulator (``SetAlarmState`` from
  the AWS CLI or any client, or ``set_alarm_state`` here) is seen through `alarm_changes` and does
  what CloudWatch does on a transition: puts "CloudWatch Alarm State Change" on the default bus
  (routed by moto like any event), invokes a stack function named in the alarm's actions with the
  Lambda alarm-action event, and publishes the alarm notification to an SNS topic in its actions.

Every invocation attempt is recorded in ``history`` and passed to ``on_event(function_name, event,
outcome)``. While a handler runs, Shepherd's services read the simulated clock too (`bootstrap.wired`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shepherd_cli.local import alarm_changes
from shepherd_cli.local.alarm_changes import AlarmChange
from shepherd_cli.local.alarm_events import lambda_alarm_event, sns_alarm_message, state_change_detail
from shepherd_cli.local.handler_runner import HandlerRunner
from shepherd_cli.local.lambda_runtime import (
    event_time,
    eventbridge_event,
)
from shepherd_cli.local.simulated_time import SimulatedClock, Timer
from shepherd_cli.local.stack_description import Function, Stack

logger = logging.getLogger(__name__)

MAX_ROUNDS = 200  # run_until_idle gives up after this many rounds that still moved events
HISTORY_SIZE = 10_000

ClientFactory = Callable[[str], Any]
EventHook = Callable[[str, dict[str, Any], "Outcome"], None]


# --- what flows --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One invocation attempt. status: "ok", "error" (will be retried), "dead-lettered" or "dropped"
    (failed for the last time, with no dead-letter queue)."""

    status: str
    source: str
    attempt: int
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Invocation:
    function_name: str
    event: dict[str, Any]
    outcome: Outcome
    at: datetime  # simulated time


@dataclass
class _Route:
    """One queue the pump drains for one function, and how to turn its messages into events."""

    function: Function
    queue_url: str
    source: str  # for people: "rule shepherd-dev/<name>", "sns <topic>", "async"
    kind: str  # "eventbridge", "sns" or "payload" (the body is the event as it is)
    input: str | None = None
    input_path: str | None = None


@dataclass
class _ScheduledRoute:
    route: _Route
    timer: Timer
    make_event: Callable[[datetime], dict[str, Any]]
    last: datetime  # the last firing (or when the pump started)


@dataclass
class _Ticker:
    """Something the pump calls on the simulated clock (see `Pump.every`), e.g. local traffic."""

    timer: Timer
    callback: Callable[[datetime], None]
    last: datetime


def _json_path(document: Any, path: str) -> Any:
    """EventBridge's InputPath: `$` or `$.a.b`."""
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            document = document[part]
    return document


# --- the pump ----------------------------------------------------------------------------------------


class Pump:
    """Routes the stack's events to its functions and runs them; see the module docstring."""

    def __init__(
        self,
        stack: Stack,
        client: ClientFactory,
        *,
        endpoint_url: str,
        clock: SimulatedClock | None = None,
        on_event: EventHook | None = None,
        environment_overrides: dict[str, str] | None = None,
    ) -> None:
        self.stack = stack
        self.clock = clock or SimulatedClock()
        self.on_event = on_event
        self.history: deque[Invocation] = deque(maxlen=HISTORY_SIZE)
        self._handlers = HandlerRunner(stack, endpoint_url, dict(environment_overrides or {}), self.clock)
        self._events, self._sqs = client("events"), client("sqs")
        self._sns, self._cloudwatch = client("sns"), client("cloudwatch")
        self._routes: list[_Route] = []
        self._scheduled: list[_ScheduledRoute] = []
        self._tickers: list[_Ticker] = []
        self._async_routes: dict[str, _Route] = {}
        self._lock = threading.RLock()  # one pump step at a time (serve() runs in its own thread)
        for function in stack.functions.values():
            self._wire(function)
        # Alarm state changes made by anyone in the emulator (the AWS CLI, boto3, this pump).
        self._alarm_changes: deque[AlarmChange] = deque()
        alarm_changes.install()
        alarm_changes.subscribe(self._alarm_changed)

    # --- wiring ---

    def _queue(self, *name_parts: str) -> tuple[str, str]:
        name = re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(("local", *name_parts)))
        if len(name) > 80:
            name = f"{name[:71]}-{uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:8]}"
        url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def _wire(self, function: Function) -> None:
        url, _arn = self._queue(function.logical_id, "async")
        self._async_routes[function.arn] = _Route(function, url, "async invoke", "payload")
        self._routes.append(self._async_routes[function.arn])
        for rule in function.rules:
            self._events.remove_targets(Rule=rule.name, EventBusName=rule.bus, Ids=list(rule.target_ids))
            if not rule.enabled:
                continue
            url, arn = self._queue(function.logical_id, rule.logical_id)
            route = _Route(function, url, f"rule {rule.bus}/{rule.name}", "eventbridge", rule.input, rule.input_path)
            self._routes.append(route)
            if rule.schedule_expression:
                self._schedule(route, rule.schedule_expression, self._scheduled_event_maker(rule.arn))
            else:
                target_id = f"local-{rule.target_ids[0]}"[:64]
                self._events.put_targets(Rule=rule.name, EventBusName=rule.bus, Targets=[{"Id": target_id, "Arn": arn}])
        for schedule in function.schedules:
            if not schedule.enabled:
                continue
            url, _arn = self._queue(function.logical_id, schedule.logical_id)
            route = _Route(function, url, f"schedule {schedule.name}", "payload")
            self._routes.append(route)
            self._schedule(
                route, schedule.schedule_expression, self._scheduler_payload_maker(schedule.arn, schedule.input)
            )
        for subscription in function.subscriptions:
            url, arn = self._queue(function.logical_id, subscription.logical_id)
            attributes = {"FilterPolicy": subscription.filter_policy} if subscription.filter_policy else {}
            if subscription.filter_policy_scope:
                attributes["FilterPolicyScope"] = subscription.filter_policy_scope
            self._sns.subscribe(TopicArn=subscription.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
            self._routes.append(_Route(function, url, f"sns {subscription.topic_arn}", "sns"))

    def _schedule(self, route: _Route, expression: str, make_event: Callable[[datetime], dict[str, Any]]) -> None:
        try:
            timer = Timer(expression, self.clock.start)
        except ValueError as error:
            logger.warning("local mode: %s: %s; it never fires", route.source, error)
            return
        self._scheduled.append(_ScheduledRoute(route, timer, make_event, last=self.clock.now))

    def _scheduled_event_maker(self, rule_arn: str) -> Callable[[datetime], dict[str, Any]]:
        def make(moment: datetime) -> dict[str, Any]:
            return self._eventbridge_event("aws.events", "Scheduled Event", {}, [rule_arn], moment)

        return make

    def _scheduler_payload_maker(self, schedule_arn: str, payload: str | None) -> Callable[[datetime], dict[str, Any]]:
        def make(moment: datetime) -> dict[str, Any]:
            text = (payload or "{}").replace("<aws.scheduler.scheduled-time>", event_time(moment))
            text = text.replace("<aws.scheduler.schedule-arn>", schedule_arn)
            text = text.replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
            return dict(json.loads(text.replace("<aws.scheduler.attempt-number>", "1")))

        return make

    def _eventbridge_event(
        self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str], moment: datetime
    ) -> dict[str, Any]:
        stack = self.stack
        return eventbridge_event(
            source, detail_type, detail, moment, account=stack.account_id, region=stack.region, resources=resources
        )

    def invocations(self) -> list[Invocation]:
        """A copy of `history`, safe to read while `serve` runs in another thread."""
        with self._lock:
            return list(self.history)

    @property
    def routes(self) -> list[tuple[str, str]]:
        """(function name, event source) for every route, e.g. for a CLI to show the wiring."""
        scheduled = {id(entry.route): entry.timer.expression for entry in self._scheduled}
        return [
            (route.function.name, f"{route.source} {scheduled[id(route)]}" if id(route) in scheduled else route.source)
            for route in self._routes
        ]

    # --- moving events ---

    def run_until_idle(self, max_rounds: int = MAX_ROUNDS) -> int:
        """Drain every queue until a round moves nothing; returns how many events were handled."""
        handled = 0
        with self._lock:
            for _round in range(max_rounds):
                moved = self._deliver_alarm_changes() + sum(self._drain(route) for route in self._routes)
                if not moved:
                    return handled
                handled += moved
        raise RuntimeError(f"events still moving after {max_rounds} rounds: does a function trigger itself?")

    def _drain(self, route: _Route) -> int:
        moved = 0
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=route.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return moved
            for message in messages:
                self._invoke(route, self._event_from(route, message["Body"]))
                self._sqs.delete_message(QueueUrl=route.queue_url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1

    def _event_from(self, route: _Route, body: str) -> dict[str, Any]:
        message = json.loads(body)
        if route.kind == "sns":
            return {"Records": [self._sns_record(message)]}
        if route.kind == "eventbridge":
            message.setdefault("account", self.stack.account_id)  # moto leaves it out of PutEvents events
            if isinstance(message.get("time"), int | float):
                message["time"] = event_time(datetime.fromtimestamp(message["time"], UTC))
            if route.input is not None:
                return dict(json.loads(route.input))
            if route.input_path:
                return dict(_json_path(message, route.input_path))
        return dict(message)

    def _sns_record(self, notification: dict[str, Any]) -> dict[str, Any]:
        topic_arn = notification["TopicArn"]
        return {
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid5(uuid.NAMESPACE_URL, topic_arn)}",
            "Sns": {
                "Type": notification.get("Type", "Notification"),
                "MessageId": notification["MessageId"],
                "TopicArn": topic_arn,
                "Subject": notification.get("Subject"),
                "Message": notification["Message"],
                "Timestamp": notification["Timestamp"],
                "SignatureVersion": notification.get("SignatureVersion", "1"),
                "Signature": notification.get("Signature", ""),
                "SigningCertUrl": notification.get("SigningCertURL", ""),
                "UnsubscribeUrl": notification.get("UnsubscribeURL", ""),
                "MessageAttributes": notification.get("MessageAttributes", {}),
            },
        }

    def invoke_async(self, function_name: str, event: dict[str, Any]) -> None:
        """Queue an asynchronous invocation (`InvocationType=Event`) of a stack function."""
        function = next((f for f in self.stack.functions.values() if function_name in (f.name, f.logical_id)), None)
        if function is None:
            raise KeyError(f"no function {function_name!r} in stack {self.stack.name}")
        self._sqs.send_message(QueueUrl=self._async_routes[function.arn].queue_url, MessageBody=json.dumps(event))

    def _invoke(self, route: _Route, event: dict[str, Any]) -> None:
        """Lambda's asynchronous invocation: the first attempt, its retries, then the dead-letter queue."""
        function = route.function
        attempts = 1 + function.max_retries
        for attempt in range(1, attempts + 1):
            try:
                result = self._handlers.call(function, json.loads(json.dumps(event)))
            # The emulated Lambda runtime: whatever the handler raises fails this attempt.
            except Exception as error:
                logger.warning("%s failed (attempt %d of %d)", function.name, attempt, attempts, exc_info=True)
                message = f"{type(error).__name__}: {error}"
                if attempt < attempts:
                    self._record(function, event, Outcome("error", route.source, attempt, error=message))
                    continue
                self._record(
                    function,
                    event,
                    Outcome(self._dead_letter(function, event, message), route.source, attempt, error=message),
                )
                return
            self._record(function, event, Outcome("ok", route.source, attempt, result=result))
            return

    def _dead_letter(self, function: Function, event: dict[str, Any], error: str) -> str:
        """Send the event to the function's DeadLetterConfig target (SQS or SNS) with Lambda's attributes."""
        target = function.dead_letter_arn
        if target is None:
            return "dropped"
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": error[:1024]},
        }
        service, account, name = target.split(":")[2], target.split(":")[4], target.split(":")[5]
        if service == "sns":
            self._sns.publish(TopicArn=target, Message=json.dumps(event), MessageAttributes=attributes)
        else:
            url = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event), MessageAttributes=attributes)
        return "dead-lettered"

    def _record(self, function: Function, event: dict[str, Any], outcome: Outcome) -> None:
        self.history.append(Invocation(function.name, event, outcome, self.clock.now))
        if self.on_event is not None:
            self.on_event(function.name, event, outcome)

    # --- running a handler ---

    def warm_up(self) -> None:
        """Import every function's handler now (Lambda's cold start), so the first event, e.g. an
        alarm that must roll back within seconds, does not wait for the imports."""
        self._handlers.warm_up()

    def handler_environment(self, function: Function) -> dict[str, str]:
        """What os.environ holds while the function runs: its own variables, then Lambda's and ours."""
        return self._handlers.environment(function)

    # --- time ---

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing each schedule at each time it is due and handling the
        consequences (run_until_idle) before the next firing."""
        with self._lock:
            until = self.clock.now + timedelta(seconds=seconds)
            while True:
                entries: list[_Ticker | _ScheduledRoute] = [*self._tickers, *self._scheduled]
                due = [(entry.timer.next_after(entry.last, until), entry) for entry in entries]
                firings = [(moment, entry) for moment, entry in due if moment is not None]
                if not firings:
                    break
                moment = min(moment for moment, _entry in firings)
                self.clock.advance_to(moment)
                for entry_moment, entry in firings:
                    if entry_moment != moment:
                        continue
                    entry.last = moment
                    if isinstance(entry, _Ticker):
                        entry.callback(moment)
                    else:
                        body = json.dumps(entry.make_event(moment))
                        self._sqs.send_message(QueueUrl=entry.route.queue_url, MessageBody=body)
                self.run_until_idle()
            self.clock.advance_to(until)
            self.run_until_idle()

    def every(self, expression: str, callback: Callable[[datetime], None]) -> None:
        """Call ``callback(moment)`` each time the schedule ``expression`` fires on the simulated clock,
        before the schedules due at the same moment are sent."""
        with self._lock:
            self._tickers.append(_Ticker(Timer(expression, self.clock.start), callback, self.clock.now))

    def serve(self, stop: threading.Event, *, speed: float = 1.0, poll_seconds: float = 0.25) -> None:
        """Until `stop` is set: handle events as they arrive, with the clock running `speed` times
        faster than real time (for `shepherd local up`)."""
        last = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            self.advance((now - last) * speed)
            last = now
            stop.wait(poll_seconds)

    # --- alarms ---

    def set_alarm_state(self, alarm_name: str, state: str, reason: str, reason_data: str | None = None) -> None:
        """Set an alarm's state in moto, as any client would, then run_until_idle: the change is
        delivered like every other one made in the emulator (see `_deliver_alarm_change`)."""
        with self._lock:
            if not self._cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]:
                raise KeyError(f"no metric alarm {alarm_name!r}")
            arguments = {"AlarmName": alarm_name, "StateValue": state, "StateReason": reason}
            if reason_data is not None:
                arguments["StateReasonData"] = reason_data
            self._cloudwatch.set_alarm_state(**arguments)
            self.run_until_idle()

    def _alarm_changed(self, change: AlarmChange) -> None:
        # Runs inside moto's request handling: only queue it (the pump's thread delivers it).
        self._alarm_changes.append(change)

    def _deliver_alarm_changes(self) -> int:
        delivered = 0
        while self._alarm_changes:
            self._deliver_alarm_change(self._alarm_changes.popleft())
            delivered += 1
        return delivered

    def _deliver_alarm_change(self, change: AlarmChange) -> None:
        """What CloudWatch emits on a transition: the EventBridge event, then the alarm's actions."""
        if change.previous_state == change.state:
            return  # not a transition: CloudWatch emits nothing
        alarms = self._cloudwatch.describe_alarms(AlarmNames=[change.alarm_name])["MetricAlarms"]
        if not alarms or alarms[0]["AlarmArn"] != change.alarm_arn:
            return  # another account or region of the emulator, or deleted meanwhile
        alarm = alarms[0]
        now = self.clock.now
        detail = state_change_detail(change, alarm, now)
        self._events.put_events(
            Entries=[
                {
                    "Source": "aws.cloudwatch",
                    "DetailType": "CloudWatch Alarm State Change",
                    "Detail": json.dumps(detail),
                    "Resources": [change.alarm_arn],
                    "Time": now,
                }
            ]
        )
        if alarm.get("ActionsEnabled", True):
            self._alarm_actions(alarm, detail, change.state, now)

    def close(self) -> None:
        """Stop listening to the emulator's alarm changes."""
        alarm_changes.unsubscribe(self._alarm_changed)

    def _alarm_actions(self, alarm: dict[str, Any], detail: dict[str, Any], state: str, now: datetime) -> None:
        actions_key = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}
        for action in alarm.get(actions_key[state], []):
            function = self.stack.function_by_arn(action) if action.startswith("arn:aws:lambda:") else None
            if function is not None:
                self.invoke_async(function.name, lambda_alarm_event(alarm, detail, self.stack, now))
            elif action.startswith("arn:aws:sns:"):
                self._sns.publish(
                    TopicArn=action,
                    Subject=f'{state}: "{alarm["AlarmName"]}" in {self.stack.region}'[:100],
                    Message=json.dumps(sns_alarm_message(alarm, detail, self.stack)),
                )
