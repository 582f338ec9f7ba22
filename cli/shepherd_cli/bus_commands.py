"""The commands the CLI sends to the Shepherd bus (source ``shepherd.cli``), which the stack's functions
carry out: approval, promotion, rollback and resume, each validated against its contract first."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from shepherd.contracts import (
    ModelPromotionRequested,
    ModelRollbackRequested,
    ModelRolloutResumeRequested,
    ModelVersionApprovalRequested,
    validation_problems,
)
from shepherd.registry.model import VersionStatus
from shepherd.rollouts import naming
from shepherd.rollouts.strategy import InvalidStrategy, parse_strategy
from shepherd_cli import operations
from shepherd_cli.errors import CliError
from shepherd_cli.target import Target

CLI_SOURCE = "shepherd.cli"


def send_command(target: Target, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """Put one command on the Shepherd bus; returns what was sent, with its event id."""
    entry: dict[str, Any] = {
        "Source": CLI_SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": target.bus,
    }
    # The CLI sets the time (local mode's simulated clock, else now, to the second as EventBridge
    # keeps it): with the event id it names the rollout a promotion starts, which is how the answer is
    # recognised (`is_answer`).
    now = target.simulated_now() or datetime.now(UTC)
    now = now.replace(microsecond=0)
    entry["Time"] = now
    response = target.client("events").put_events(Entries=[entry])
    result = response["Entries"][0]
    if response.get("FailedEntryCount") or "EventId" not in result:
        raise CliError(f"the bus refused the command: {result.get('ErrorCode')}: {result.get('ErrorMessage')}")
    return {"event_id": result["EventId"], "detail_type": detail_type, "detail": detail, "time": now.isoformat()}


def request_approval(
    target: Target, model_name: str, version: int, decision: Literal["approved", "rejected"], reason: str, by: str
) -> dict[str, Any]:
    current = operations.get_version(target, model_name, version)
    if current.status is not VersionStatus.REGISTERED:
        raise CliError(
            f"{model_name} version {version} is {current.status.value}; only a REGISTERED version can be {decision}"
        )
    command = _validated(
        ModelVersionApprovalRequested,
        model_name=model_name,
        version=version,
        decision=decision,
        requested_by=by,
        reason=reason,
    )
    return send_command(target, command.DETAIL_TYPE, command.model_dump(mode="json"))


def request_promotion(
    target: Target,
    *,
    model_name: str,
    version: int | Literal["latest-approved"],
    endpoint_name: str,
    strategy: dict[str, Any],
    alarms: tuple[str, ...],
    instance_type: str | None,
    instance_count: int | None,
    by: str,
    reason: str,
    allow_rolled_back: bool = False,
    replace_model: bool = False,
    headroom: float | None = None,
    min_capacity: int | None = None,
    max_capacity: int | None = None,
) -> dict[str, Any]:
    try:
        parse_strategy(strategy)
    except InvalidStrategy as invalid:
        raise CliError(f"invalid strategy: {invalid.reason}") from None
    if version == "latest-approved":
        if not any(v.status is VersionStatus.APPROVED for v in operations.list_versions(target, model_name)):
            raise CliError(f"{model_name} has no APPROVED version")
    else:
        operations.get_version(target, model_name, version)
    command = _validated(
        ModelPromotionRequested,
        model_name=model_name,
        version=version,
        endpoint_name=endpoint_name,
        strategy=strategy,
        alarms=list(alarms),
        instance_type=instance_type,
        initial_instance_count=instance_count,
        requested_by=by,
        reason=reason,
        allow_rolled_back=allow_rolled_back,
        replace_model=replace_model,
        headroom=headroom,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
    )
    # Unset capacity stays out of the command: the rollout then keeps the live variant's (and an
    # unset allow_rolled_back or replace_model, the defaults, too).
    detail = command.model_dump(mode="json", exclude_none=True)
    for flag, given in (("allow_rolled_back", allow_rolled_back), ("replace_model", replace_model)):
        if not given:
            del detail[flag]
    sent = send_command(target, command.DETAIL_TYPE, detail)
    sent["rollout_id"] = requested_rollout_id(sent)
    return sent


def requested_rollout_id(sent: dict[str, Any]) -> str:
    """The id of the rollout a sent promotion (or a rollback that redeploys) starts, if it starts one."""
    return naming.rollout_id(sent["event_id"], datetime.fromisoformat(sent["time"]))


def request_rollback(
    target: Target, endpoint_name: str, to_version: int | None, reason: str, by: str
) -> dict[str, Any]:
    store = target.rollouts()
    live = store.live(endpoint_name)
    latest = store.latest_rollout(endpoint_name)
    if live is None and latest is None:
        raise CliError(f"endpoint {endpoint_name} is not managed by {target.describe()}")
    if to_version is not None:
        model_name = live.model_name if live else latest.rollout.model_name if latest else ""
        operations.get_version(target, model_name, to_version)
    command = _validated(
        ModelRollbackRequested, endpoint_name=endpoint_name, reason=reason, requested_by=by, to_version=to_version
    )
    return send_command(target, command.DETAIL_TYPE, command.model_dump(mode="json", exclude_none=True))


def request_resume(target: Target, endpoint_name: str, rollout_id: str | None, reason: str, by: str) -> dict[str, Any]:
    """Send ``Model Rollout Resume Requested`` for the endpoint's held rollout (default: its active one)."""
    if rollout_id is None:
        latest = target.rollouts().latest_rollout(endpoint_name)
        if latest is None or latest.rollout.phase.is_terminal:
            raise CliError(f"no active rollout on {endpoint_name} in {target.describe()}")
        rollout_id = latest.rollout.rollout_id
    command = _validated(
        ModelRolloutResumeRequested, endpoint_name=endpoint_name, rollout_id=rollout_id, reason=reason, requested_by=by
    )
    return send_command(target, command.DETAIL_TYPE, command.model_dump(mode="json", exclude_none=True))


def _validated(model: Any, **fields: Any) -> Any:
    try:
        return model(**fields)
    except ValidationError as invalid:
        raise CliError(f"invalid {model.DETAIL_TYPE}: {validation_problems(invalid)}") from None
