"""What the dashboard says when it cannot read its Shepherd: what is wrong, and what to run.

A page the dashboard cannot fill is not a server error: local mode was stopped, the credentials
expired, the network dropped. The page says which, with the command that fixes it; the JSON the
pages poll says the same, so an open page tells the reader instead of freezing.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from shepherd_cli.target import Target

# Error codes that mean "your credentials", whatever the service.
_CREDENTIALS = {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def unreachable(target: Target, error: BotoCoreError | ClientError) -> dict[str, Any]:
    """``{"title", "problem", "commands"}`` for ``error`` raised while reading ``target``."""
    where = target.describe()
    if isinstance(error, (EndpointConnectionError, ReadTimeoutError)) or (
        isinstance(error, BotoCoreError) and target.kind == "local"
    ):
        if target.kind == "local":
            return _problem(
                "Local mode is not running",
                f"The {where} does not answer ({type(error).__name__}): `shepherd local up` was stopped, "
                "or restarted on another port.",
                ["shepherd local up", "shepherd ui --local   # after a restart on another port"],
            )
        return _problem(
            "AWS cannot be reached",
            f"Reading {where} failed: {error}. Check the network or proxy, then reload.",
            ["aws sts get-caller-identity"],
        )
    if isinstance(error, NoCredentialsError):
        return _problem("No AWS credentials", f"Reading {where} needs credentials.", ["aws configure", "aws sso login"])
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code in _CREDENTIALS:
            return _problem(
                "AWS credentials expired or invalid",
                f"{where}: {code}: {message}",
                ["aws sso login", "aws sts get-caller-identity"],
            )
        if code in _DENIED:
            return _problem(
                "Access denied",
                f"{where}: {code}: {message}. The dashboard reads with your own credentials: they need the "
                "read permissions `shepherd status` needs.",
                ["aws sts get-caller-identity"],
            )
        return _problem(f"AWS answered {code}", f"{where}: {message}", ["aws sts get-caller-identity"])
    return _problem("Shepherd cannot be read", f"{where}: {error}", ["shepherd status"])


def _problem(title: str, problem: str, commands: list[str]) -> dict[str, Any]:
    return {"title": title, "problem": problem, "commands": commands}
