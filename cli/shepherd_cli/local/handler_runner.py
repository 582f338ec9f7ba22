"""Running a function's handler in-process, as Lambda would: its module imported once under a
unique name (each is `app`), its environment in os.environ and its folders on sys.path only
while it runs, and a `shepherd.bootstrap` container of its own reading the simulated clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from shepherd import bootstrap
from shepherd_cli.local.lambda_runtime import (
    LambdaContext,
    load_handler,
    swapped_environment,
)
from shepherd_cli.local.simulated_time import SimulatedClock
from shepherd_cli.local.stack_description import Function, Stack

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Unset while a handler runs, so nothing in the process's own environment redirects its clients.
UNSET_WHILE_RUNNING = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE")


class HandlerRunner:
    """Calls the stack's handlers for the pump (`Pump` owns what flows; this, how a handler runs)."""

    def __init__(self, stack: Stack, endpoint_url: str, overrides: dict[str, str], clock: SimulatedClock) -> None:
        self._stack = stack
        self._endpoint_url = endpoint_url
        self._overrides = overrides
        self._clock = clock
        self._modules: dict[str, ModuleType] = {}

    def call(self, function: Function, event: dict[str, Any]) -> Any:
        if function.code_dir is None:
            raise RuntimeError(f"{function.name} has no local code to run")
        module_path, _, handler_name = function.handler.rpartition(".")
        context = LambdaContext(function.name, function.arn, function.memory_mb, function.timeout_seconds)
        with self._environment(function), self._sys_path(function):
            module = self._module(function, module_path)
            return getattr(module, handler_name)(event, context)

    def warm_up(self) -> None:
        """Import every function's handler now (Lambda's cold start), so the first event, e.g. an
        alarm that must roll back within seconds, does not wait for the imports."""
        for function in self._stack.functions.values():
            if function.code_dir is not None:
                with self._environment(function), self._sys_path(function):
                    self._module(function, function.handler.rpartition(".")[0])

    def _module(self, function: Function, module_path: str) -> ModuleType:
        """The handler's module, imported once per function under a unique name (each is `app`)."""
        module = self._modules.get(function.logical_id)
        if module is None:
            assert function.code_dir is not None
            path = function.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
            unique_name = f"shepherd_local_{function.logical_id}_{module_path.replace('.', '_')}"
            module = load_handler(path, unique_name)
            self._modules[function.logical_id] = module
        return module

    def environment(self, function: Function) -> dict[str, str]:
        """What os.environ holds while the function runs: its own variables, then Lambda's and ours."""
        return {
            **function.environment,
            "AWS_ENDPOINT_URL": self._endpoint_url,
            "AWS_REGION": self._stack.region,
            "AWS_DEFAULT_REGION": self._stack.region,
            **DUMMY_CREDENTIALS,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            **self._overrides,
        }

    @contextmanager
    def _environment(self, function: Function) -> Iterator[None]:
        """The handler's environment in os.environ, and a `shepherd.bootstrap` container of its own (its
        settings, clients and services built afresh): nothing leaks between functions or to the rest
        of the process."""
        # The services check event times against their own clock: here that is the simulated one,
        # which makes those times (and runs ahead of wall time at --speed 60).
        fresh = bootstrap.Container(clock=lambda: self._clock.now)
        with swapped_environment(self.environment(function), unset=UNSET_WHILE_RUNNING), bootstrap.wired(fresh):
            yield

    @contextmanager
    def _sys_path(self, function: Function) -> Iterator[None]:
        """The code folder and the layers' folders first on sys.path, as /var/task and /opt are."""
        added = [str(folder) for folder in (function.code_dir, *function.layer_dirs) if folder is not None]
        sys.path[:0] = added
        try:
            yield
        finally:
            for folder in added:
                sys.path.remove(folder)
