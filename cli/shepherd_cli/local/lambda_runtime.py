"""Running a function's handler as Lambda would, in this process: one module for local mode's pump,
the handler tests and the benchmarks, so the three never drift apart.

- `LambdaContext`: the attributes of Lambda's context object that handlers and Powertools read.
- `load_handler`: import a function's `app.py` under a unique module name (every function's module
  is called `app`, and Lambda gives each its own interpreter).
- `swapped_environment`: the function's environment variables in `os.environ` while it runs, and
  the process's own back afterwards.
- `eventbridge_event`: an event in EventBridge's envelope, as a rule's target receives it.
"""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "eu-west-1"


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str = "test"
    invoked_function_arn: str = f"arn:aws:lambda:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:function:test"
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 30
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(path: Path, unique_name: str) -> ModuleType:
    """Import the handler module at `path` under `unique_name` (its folder must be on sys.path if it
    imports siblings, as /var/task is in Lambda)."""
    spec = importlib.util.spec_from_file_location(unique_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def swapped_environment(values: Mapping[str, str], unset: tuple[str, ...] = ()) -> Iterator[None]:
    """`values` in os.environ (and `unset` removed) while the block runs; everything restored after."""
    saved = {name: os.environ.get(name) for name in (*values, *unset)}
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def event_time(moment: datetime) -> str:
    """EventBridge's `time`: UTC, whole seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def eventbridge_event(
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    moment: datetime,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    resources: list[str] | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One event as an EventBridge rule's target receives it (every field the envelope has)."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": event_time(moment),
        "region": region,
        "resources": resources or [],
        "detail": detail,
    }
