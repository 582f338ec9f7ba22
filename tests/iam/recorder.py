"""Records every AWS call a function's handler makes, as the requests IAM authorises for it.

A botocore `before-parameter-build` hook (in BUILTIN_HANDLERS, so every session has it, moto's
too) sees each API call once with its parameters, whatever client or container made it, retries
not repeated. A call counts for the function whose handler is running (`running`), on the thread
that runs it or on any thread it starts (the controller's passes run on worker threads); the tests'
own calls (set-up, probes) run outside any handler and are not recorded. Besides the calls the code
makes, each invocation records what Lambda does with the function's role: its log stream and events
on the function's log group, its trace segments when traced, and, for an invocation that raises,
the failed event sent to its dead-letter queue.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import msgspec
from botocore.handlers import BUILTIN_HANDLERS

from tests.iam.calls import Tags, UnmappedCall, rows
from tests.iam.evaluator import Request
from tests.iam.template_roles import DEFAULT_ACCOUNT, DEFAULT_REGION, FunctionRole


class Call(msgspec.Struct, frozen=True):
    function: str  # the function's folder, functions/<folder>/
    operation: str  # service:Operation as botocore names it (for reports)
    requests: tuple[Request, ...]
    # moto answered that the resource does not exist: said when IAM refuses the call, which AWS does
    # before the service looks (a tag condition on a missing resource has no tag to match).
    on_missing_resource: bool = False


MISSING_CODES = ("ValidationException", "ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "404")


_running: contextvars.ContextVar[FunctionRole | None] = contextvars.ContextVar("iam_running", default=None)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.unmapped: list[str] = []
        self.tags = Tags()
        self._rows = rows(self.tags)

    def reset(self) -> None:
        """A new test: no call recorded yet, and a new moto world, whose resources have no tags."""
        self.calls.clear()
        self.unmapped.clear()
        self.tags.by_arn.clear()

    def before_parameter_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        function = _running.get()
        if function is None:
            return
        service, operation = model.service_model.service_name, model.name
        row = self._rows.get((service, operation))
        if row is None:
            self.unmapped.append(f"{function.folder}: {service} {operation} has no row in tests/iam/calls.py")
            return
        requests = row(params, context.get("client_region") or DEFAULT_REGION)
        self.tags.remember(requests)
        context["iam_call"] = len(self.calls)  # the same dict reaches after-call
        self.calls.append(Call(function.folder, f"{service}:{operation}", tuple(requests)))

    def after_call(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        index = context.pop("iam_call", None)
        error = parsed.get("Error", {})
        message = str(error.get("Message", "")).lower()
        missing = error.get("Code") in MISSING_CODES and ("not found" in message or "could not find" in message)
        if index is not None and index < len(self.calls) and missing:
            self.calls[index] = msgspec.structs.replace(self.calls[index], on_missing_resource=True)

    def runtime(self, function: FunctionRole, failed: bool) -> None:
        """What Lambda itself does with the function's role around an invocation."""
        group = f"arn:aws:logs:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:log-group:{function.log_group}"
        stream = f"{group}:log-stream:2026/11/20/[$LATEST]0123456789abcdef"
        requests = [Request("logs:CreateLogStream", stream), Request("logs:PutLogEvents", stream)]
        if function.traced:
            requests += [Request("xray:PutTraceSegments", "*"), Request("xray:PutTelemetryRecords", "*")]
        if failed and function.dead_letter_arn:
            requests.append(Request("sqs:SendMessage", function.dead_letter_arn))
        self.calls.append(Call(function.folder, "lambda:Invoke (the runtime's calls)", tuple(requests)))

    @contextmanager
    def running(self, function: FunctionRole) -> Iterator[None]:
        token = _running.set(function)
        failed = True
        try:
            yield
            failed = False
        finally:
            _running.reset(token)
            self.runtime(function, failed)

    def handler(self, function: FunctionRole, handler: Callable[..., Any]) -> Callable[..., Any]:
        """`handler`, recording its calls for `function`."""

        @wraps(handler)
        def recorded(event: Any, context: Any) -> Any:
            with self.running(function):
                return handler(event, context)

        return recorded


def _start_as_the_running_function(start: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    """Thread.start, the new thread's calls counted for the function whose handler starts it (a
    thread does not inherit the context variables of the thread that starts it)."""

    @wraps(start)
    def started(thread: threading.Thread) -> None:
        function = _running.get()
        if function is not None:
            run = thread.run

            def run_as_the_function() -> None:
                _running.set(function)
                run()

            thread.run = run_as_the_function  # type: ignore[method-assign]
        start(thread)

    return started


RECORDER = Recorder()
threading.Thread.start = _start_as_the_running_function(threading.Thread.start)  # type: ignore[method-assign]
BUILTIN_HANDLERS.append(("before-parameter-build", RECORDER.before_parameter_build))
BUILTIN_HANDLERS.append(("after-call", RECORDER.after_call))
__all__ = ["RECORDER", "Call", "Recorder", "UnmappedCall"]
