"""What local mode knows about the deployed stack: its functions, their event sources, its outputs.

Built by `stack.provision` from the template and the emulator; read by the pump, which runs the
functions. Plain data in its own module, so the pump does not import the module that provisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Rule:
    """An EventBridge rule of the stack with a function as a target."""

    logical_id: str
    name: str
    arn: str
    bus: str
    event_pattern: str | None
    schedule_expression: str | None
    enabled: bool
    target_ids: tuple[str, ...]  # the function's targets on this rule (the pump replaces them)
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None


@dataclass(frozen=True)
class Schedule:
    """An EventBridge Scheduler schedule (SAM ``ScheduleV2``) targeting a function."""

    logical_id: str
    name: str
    arn: str
    schedule_expression: str
    enabled: bool
    input: str | None


@dataclass(frozen=True)
class Subscription:
    """An SNS subscription of a function to a topic."""

    logical_id: str
    topic_arn: str
    filter_policy: str | None
    filter_policy_scope: str | None


@dataclass(frozen=True)
class Function:
    """A function of the stack as local mode runs it: code, handler, environment, event sources."""

    logical_id: str
    name: str
    arn: str
    handler: str  # e.g. "app.lambda_handler", relative to code_dir
    code_dir: Path | None  # None: not local code (InlineCode, an image, an s3:// CodeUri)
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    memory_mb: int
    timeout_seconds: int
    dead_letter_arn: str | None
    max_retries: int
    rules: tuple[Rule, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    account_id: str
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    functions: dict[str, Function]  # by logical id
    notes: tuple[str, ...] = ()

    def function_by_arn(self, arn: str) -> Function | None:
        """The stack's function an ARN names (a qualified ARN names its function too)."""
        unqualified = ":".join(arn.split(":")[:7])
        return next((function for function in self.functions.values() if function.arn == unqualified), None)
