"""Which Shepherd the CLI talks to: a deployed stack, or a running `shepherd local up`.

Both are found the same way: the CloudFormation stack's Outputs name the bucket, table and bus
(``ArtifactBucketName``, ``RegistryTableName``, ``EventBusName``). A deployed stack is read with the
caller's own credentials and region; local mode with the emulator's endpoint and dummy credentials.

Selection, first match wins: ``--stack NAME``; ``--local``; ``$SHEPHERD_ENDPOINT_URL``;
``$SHEPHERD_STACK``; a ``.shepherd/local.json`` in the current directory or the nearest one above
it, up to the repository root or the home directory (a running `local up`, local/state.py);
``$AWS_ENDPOINT_URL`` (local mode's endpoint, as `shepherd local env` exports it).
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from shepherd.adapters.dynamodb import DynamoRegistry
from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore
from shepherd_cli.errors import CliError
from shepherd_cli.local.state import LocalState, find_state, pid_alive, read_state

REQUIRED_OUTPUTS = ("ArtifactBucketName", "RegistryTableName", "EventBusName")
LOCAL_STACK_NAME = "shepherd-local"
LOCAL_REGION = "eu-west-1"
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Outputs local mode adds to resolve intrinsic functions (see local/stack.py); not the stack's own.
LOCAL_RESOLVED_PREFIX = "ShepherdLocalResolved"
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)


@dataclass
class Target:
    """One Shepherd: its outputs and boto3 clients to reach it."""

    kind: str  # "stack" or "local"
    stack_name: str
    region: str
    outputs: dict[str, str]
    session: boto3.session.Session
    endpoint_url: str | None = None
    local_state: LocalState | None = None
    clock: Callable[[], datetime] | None = None  # the simulated clock, when this process runs it
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG)
        return self._clients[service]

    @property
    def bucket(self) -> str:
        return self.outputs["ArtifactBucketName"]

    @property
    def table(self) -> str:
        return self.outputs["RegistryTableName"]

    @property
    def bus(self) -> str:
        return self.outputs["EventBusName"]

    def registry(self) -> DynamoRegistry:
        return DynamoRegistry(self.client("dynamodb"), self.table)

    def rollouts(self) -> DynamoRolloutStore:
        return DynamoRolloutStore(self.client("dynamodb"), self.table)

    def simulated_now(self) -> datetime | None:
        """Local mode's simulated time (commands carry it), else None (AWS stamps them)."""
        if self.clock is not None:
            return self.clock()
        if self.local_state is None or self.local_state.clock is None:
            return None
        return self.local_state.clock.now(time.time())

    def caller(self) -> str:
        """Who is asking: the STS caller identity of a deployed stack, else the local user."""
        if self.kind == "stack":
            try:
                return str(self.client("sts").get_caller_identity()["Arn"])
            except (ClientError, BotoCoreError):
                pass
        return local_user()

    def describe(self) -> str:
        if self.kind == "local":
            return f"local Shepherd at {self.endpoint_url}"
        return f"stack {self.stack_name} ({self.region})"


def local_user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def resolve(stack: str | None, local: bool, region: str | None, directory: Path | None = None) -> Target:
    """The target the options and environment select (see the module docstring)."""
    if stack and local:
        raise CliError("--stack and --local are exclusive: pick one Shepherd")
    if stack:
        return deployed(stack, region)
    endpoint_url = os.environ.get("SHEPHERD_ENDPOINT_URL")
    path = find_state(directory)
    if local or endpoint_url:
        return local_target(endpoint_url, path)
    if os.environ.get("SHEPHERD_STACK"):
        return deployed(os.environ["SHEPHERD_STACK"], region)
    if path.exists():
        return local_target(None, path)
    if os.environ.get("AWS_ENDPOINT_URL"):  # the AWS CLI pointed at local mode (`shepherd local env`)
        return local_target(os.environ["AWS_ENDPOINT_URL"], path)
    raise CliError(
        "which Shepherd? Pass --stack NAME (or set SHEPHERD_STACK) for a deployed stack, or start "
        "`shepherd local up` and pass --local (or set SHEPHERD_ENDPOINT_URL)"
    )


def deployed(stack_name: str, region: str | None) -> Target:
    try:
        session = boto3.session.Session(region_name=region)
    except BotoCoreError as error:  # e.g. a profile that does not exist
        raise CliError(f"AWS configuration: {error}") from None
    if not session.region_name:
        raise CliError("no AWS region: pass --region or set AWS_REGION")
    target = Target("stack", stack_name, session.region_name, {}, session)
    target.outputs = _stack_outputs(target, f"stack {stack_name} ({session.region_name})")
    return target


def local_target(endpoint_url: str | None, path: Path) -> Target:
    state = read_state(path)
    if endpoint_url is None:
        if state is None:
            raise CliError(f"no local Shepherd: {path} not found; start one with `shepherd local up`")
        if not pid_alive(state.pid):
            raise CliError(
                f"the local Shepherd in {path} (pid {state.pid}) is not running; start one with `shepherd local up`"
            )
        endpoint_url = state.endpoint_url
    elif state is not None and state.endpoint_url.rstrip("/") != endpoint_url.rstrip("/"):
        state = None  # the state file describes another emulator
    region = state.region if state else LOCAL_REGION
    session = boto3.session.Session(region_name=region, **LOCAL_CREDENTIALS)
    stack_name = state.stack_name if state else LOCAL_STACK_NAME
    target = Target("local", stack_name, region, {}, session, endpoint_url=endpoint_url, local_state=state)
    target.outputs = _stack_outputs(target, f"the local Shepherd at {endpoint_url}")
    return target


def _stack_outputs(target: Target, what: str) -> dict[str, str]:
    try:
        stacks = target.client("cloudformation").describe_stacks(StackName=target.stack_name)["Stacks"]
    except NoCredentialsError:
        raise CliError("no AWS credentials: configure them (aws configure, AWS_PROFILE) or use --local") from None
    except EndpointConnectionError:
        hint = "; is `shepherd local up` running?" if target.kind == "local" else ""
        raise CliError(f"cannot reach {what}{hint}") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ValidationError":
            raise CliError(f"{what}: stack {target.stack_name} not found ({message})") from None
        raise CliError(f"cannot read {what}: {code}: {message}") from None
    except BotoCoreError as error:
        raise CliError(f"cannot read {what}: {error}") from None
    outputs = {
        output["OutputKey"]: output["OutputValue"]
        for output in stacks[0].get("Outputs", [])
        if not output["OutputKey"].startswith(LOCAL_RESOLVED_PREFIX)
    }
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    if missing:
        raise CliError(f"{what} has no output {', '.join(missing)}: is it a Shepherd stack?")
    return outputs
