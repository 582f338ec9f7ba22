"""The CLI's one expected-error type: a message for a person, and a non-zero exit."""

from __future__ import annotations


class CliError(Exception):
    """An expected failure (unknown model, stack not found, no credentials...): no traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Terminated(BaseException):
    """SIGTERM (a cancelled CI job, `kill`): raised in the main thread, so that every `with` block
    unwinds as for Ctrl-C and the CLI's temporary subscription is deleted. A BaseException, as
    KeyboardInterrupt is: no `except Exception` may swallow it."""

    EXIT_CODE = 143  # 128 + SIGTERM, as a shell reports a process the signal ended


def raise_terminated(_signum: int, _frame: object) -> None:
    raise Terminated
