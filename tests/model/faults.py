"""Fault injection for the model-based test: a wrapper around each fake port that can fail any call.

Every call through a `Faulty` port goes through one `FaultPlan`, which can, before the call:
- fail it the way the adapter reports that failure (throttling, a 5xx, a non-retryable 4xx, a
  cancelled transaction), optionally after letting the call take effect (a 5xx whose work was done);
- end the process (`Crash`): nothing after that point runs, as when a Lambda times out or dies;
- run another invocation first (an interleaving: the current one is paused between two AWS calls).

Faults are armed by the state machine and consumed by the calls they match; a crash or an
interleaving is armed for the next invocation only, at the n-th port call it makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


class Crash(BaseException):
    """The process died before this call (a BaseException, so no `except Exception` can catch it)."""


@dataclass
class Fault:
    port: str  # "sagemaker", "dynamodb", "events", "cloudwatch"
    methods: frozenset[str] | None  # None: any method of the port
    endpoint: str | None  # only calls about this endpoint; None: any call
    error: Callable[[], Exception]
    applied: bool  # the call takes effect before the error (a 5xx after the work was done)
    times: int
    kind: str  # for the report

    def matches(self, port: str, method: str, endpoint: str | None) -> bool:
        if self.times <= 0 or port != self.port:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.endpoint is None or self.endpoint == endpoint


@dataclass(frozen=True)
class Call:
    port: str
    method: str
    endpoint: str | None


@dataclass
class FaultPlan:
    endpoint_of: Callable[[Iterable[Any]], str | None]
    faults: list[Fault] = field(default_factory=list)
    crash_at: int | None = None  # the n-th call of the next invocation (0-based)
    interleave_at: tuple[int, Callable[[], None]] | None = None
    calls: list[Call] = field(default_factory=list)  # this invocation's calls
    fired: list[tuple[Call, str]] = field(default_factory=list)  # this invocation's faults
    crashed: bool = False
    suspended: bool = False  # an interleaved invocation runs unfaulted and uncounted
    total_faults: int = 0

    def begin(self) -> None:
        self.calls, self.fired, self.crashed = [], [], False

    def end(self) -> None:
        self.crash_at = None
        self.interleave_at = None

    def clear(self) -> None:
        self.faults, self.crash_at, self.interleave_at = [], None, None

    def call(self, port: str, method: str, args: tuple[Any, ...], run: Callable[[], Any]) -> Any:
        if self.suspended:
            return run()
        index = len(self.calls)
        current = Call(port, method, self.endpoint_of(args))
        if self.interleave_at is not None and self.interleave_at[0] == index:
            _, other = self.interleave_at
            self.interleave_at = None
            self.suspended = True
            try:
                other()
            finally:
                self.suspended = False
        self.calls.append(current)
        if self.crash_at == index:
            self.crash_at = None
            self.crashed = True
            self.fired.append((current, "crash"))
            self.total_faults += 1
            raise Crash(f"crashed before {port}.{method}")
        fault = next((f for f in self.faults if f.matches(port, method, current.endpoint)), None)
        if fault is None:
            return run()
        fault.times -= 1
        self.fired.append((current, fault.kind))
        self.total_faults += 1
        if fault.applied:
            run()
        raise fault.error()


class Faulty:
    """Wraps a port: every method call goes through the plan (which may fail, crash or interleave it)."""

    def __init__(self, port: str, inner: Any, plan: FaultPlan) -> None:
        self._port, self._inner, self._plan = port, inner, plan

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._plan.call(self._port, name, (*args, *kwargs.values()), lambda: attribute(*args, **kwargs))

        return call
