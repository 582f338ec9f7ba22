"""The CLI's one expected-error type: a message for a person, and a non-zero exit."""

from __future__ import annotations


class CliError(Exception):
    """An expected failure (unknown model, stack not found, no credentials...): no traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
