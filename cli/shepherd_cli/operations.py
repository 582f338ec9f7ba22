"""What each CLI command does, apart from parsing options and printing.

Reads go through the shared package's adapters (the same code the functions use) and boto3 for
SageMaker and CloudWatch describes; changes are commands sent to the Shepherd bus (source
``shepherd.cli``), which the stack's functions carry out. Everything returns plain data (JSON-ready
dicts and pydantic records); expected failures raise `CliError`.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import ValidationError

from shepherd.contracts import ModelPromotionRequested, ModelRollbackRequested, ModelVersionApprovalRequested
from shepherd.registry.model import AuditEntry, ModelSummary, ModelVersion, VersionStatus
from shepherd.rollouts import naming
from shepherd.rollouts.ports import EndpointAuditEntry, StoredRollout
from shepherd.rollouts.strategy import InvalidStrategy, parse_strategy
from shepherd_cli.errors import CliError
from shepherd_cli.target import Target

CLI_SOURCE = "shepherd.cli"
PAGE_SIZE = 100
_VARIANT_VERSION = re.compile(r"-v(\d+)$")


# --- reads ---------------------------------------------------------------------------------------


def list_models(target: Target) -> list[ModelSummary]:
    registry, models, cursor = target.registry(), [], None
    while True:
        page = registry.list_models(PAGE_SIZE, cursor)
        models.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return sorted(models, key=lambda model: model.model_name)


def list_versions(target: Target, model_name: str) -> list[ModelVersion]:
    """Newest first. A model with no version does not exist."""
    registry, versions, cursor = target.registry(), [], None
    while True:
        page = registry.list_versions(model_name, PAGE_SIZE, cursor)
        versions.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    if not versions:
        raise CliError(f"no model {model_name} in {target.describe()}")
    return versions


def get_version(target: Target, model_name: str, version: int) -> ModelVersion:
    found = target.registry().get_version(model_name, version)
    if found is None:
        list_versions(target, model_name)  # says "no model" when there is none
        raise CliError(f"{model_name} has no version {version}")
    return found


def list_endpoints(target: Target) -> list[str]:
    """The endpoints Shepherd manages: live ones and those with a rollout in flight."""
    return target.rollouts().managed_endpoints()


def endpoint_status(target: Target, endpoint_name: str) -> dict[str, Any]:
    """Live and candidate versions, variant weights, the rollout's phase and step, its alarms."""
    store = target.rollouts()
    live = store.live(endpoint_name)
    stored = store.latest_rollout(endpoint_name)
    described = _describe_endpoint(target, endpoint_name)
    if live is None and stored is None and described is None:
        raise CliError(f"no endpoint {endpoint_name} in {target.describe()}")
    active = stored is not None and not stored.rollout.phase.is_terminal
    versions = _variant_versions(live.model_dump(mode="json") if live else None, stored)
    endpoint = None
    if described is not None:
        endpoint = {
            "status": described["EndpointStatus"],
            "config_name": described.get("EndpointConfigName"),
            "failure_reason": described.get("FailureReason"),
            "variants": [
                {
                    "variant_name": variant["VariantName"],
                    "version": versions.get(variant["VariantName"], _version_from_variant(variant["VariantName"])),
                    "current_weight": variant.get("CurrentWeight"),
                    "desired_weight": variant.get("DesiredWeight"),
                    "instance_count": variant.get("CurrentInstanceCount"),
                }
                for variant in described.get("ProductionVariants", [])
            ],
        }
    return {
        "endpoint_name": endpoint_name,
        "endpoint": endpoint,
        "live": live.model_dump(mode="json") if live else None,
        "rollout": _rollout_summary(stored) if stored else None,
        "alarms": _alarm_states(target, stored.rollout.gating_alarms) if stored is not None and active else [],
    }


def _describe_endpoint(target: Target, endpoint_name: str) -> dict[str, Any] | None:
    try:
        return dict(target.client("sagemaker").describe_endpoint(EndpointName=endpoint_name))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return None  # SageMaker's answer for an endpoint that does not exist
        raise


def _variant_versions(live: dict[str, Any] | None, stored: StoredRollout | None) -> dict[str, int]:
    versions: dict[str, int] = {}
    if live is not None:
        versions[live["variant"]["variant_name"]] = int(live["version"])
    if stored is not None:
        rollout = stored.rollout
        versions[rollout.candidate.variant_name] = rollout.version
        if rollout.live is not None and rollout.previous_version is not None:
            versions[rollout.live.variant_name] = rollout.previous_version
    return versions


def _version_from_variant(variant_name: str) -> int | None:
    match = _VARIANT_VERSION.search(variant_name)
    return int(match.group(1)) if match else None


def _rollout_summary(stored: StoredRollout) -> dict[str, Any]:
    rollout = stored.rollout
    step = rollout.plan[rollout.step_index] if rollout.step_index >= 0 else None
    return {
        "rollout_id": rollout.rollout_id,
        "model_name": rollout.model_name,
        "version": rollout.version,
        "previous_version": rollout.previous_version,
        "phase": rollout.phase.value,
        "step": rollout.step_index + 1,
        "steps": len(rollout.plan),
        "target_percent": step.percent if step else 0,
        "current_percent": rollout.current_percent,
        "bake_seconds": step.bake_seconds if step else None,
        "plan": [step.model_dump(mode="json") for step in rollout.plan],
        "strategy": rollout.strategy.model_dump(mode="json"),
        "post_deploy_watch_seconds": rollout.post_deploy_watch_seconds,
        "started_at": rollout.started_at.isoformat(),
        "updated_at": rollout.updated_at.isoformat(),
        "step_started_at": rollout.step_started_at.isoformat() if rollout.step_started_at else None,
        "watch_started_at": rollout.watch_started_at.isoformat() if rollout.watch_started_at else None,
        "ended_at": rollout.ended_at.isoformat() if rollout.ended_at else None,
        "failure_reason": rollout.failure_reason,
        "requested_by": stored.request.requested_by,
        "reason": stored.request.reason,
    }


def _alarm_states(target: Target, names: tuple[str, ...]) -> list[dict[str, Any]]:
    if not names:
        return []
    found: dict[str, dict[str, Any]] = {}
    cloudwatch = target.client("cloudwatch")
    for start in range(0, len(names), 100):
        response = cloudwatch.describe_alarms(
            AlarmNames=list(names[start : start + 100]), AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        for alarm in [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]:
            found[alarm["AlarmName"]] = alarm
    return [
        {
            "alarm_name": name,
            "state": found[name]["StateValue"] if name in found else "DELETED",
            "reason": found[name].get("StateReason") if name in found else None,
        }
        for name in names
    ]


def history(
    target: Target, name: str, kind: Literal["auto", "model", "endpoint"] = "auto"
) -> dict[str, list[dict[str, Any]]]:
    """The audit trail of a model, of an endpoint, or of both when a name is both."""
    model: list[AuditEntry] = target.registry().model_audit_trail(name) if kind in ("auto", "model") else []
    endpoint: list[EndpointAuditEntry] = (
        target.rollouts().endpoint_audit_trail(name) if kind in ("auto", "endpoint") else []
    )
    if not model and not endpoint:
        what = {"auto": "model or endpoint", "model": "model", "endpoint": "endpoint"}[kind]
        raise CliError(f"no {what} {name} in {target.describe()} (no audit trail)")
    return {
        "model": [entry.model_dump(mode="json") for entry in sorted(model, key=lambda entry: entry.at)],
        "endpoint": [entry.model_dump(mode="json") for entry in sorted(endpoint, key=lambda entry: entry.at)],
    }


# --- commands ------------------------------------------------------------------------------------


def send_command(target: Target, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """Put one command on the Shepherd bus; returns what was sent, with its event id."""
    entry: dict[str, Any] = {
        "Source": CLI_SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": target.bus,
    }
    now = target.simulated_now()
    if now is not None:
        entry["Time"] = now  # local mode: the simulated clock, as the pump's events carry it
    response = target.client("events").put_events(Entries=[entry])
    result = response["Entries"][0]
    if response.get("FailedEntryCount") or "EventId" not in result:
        raise CliError(f"the bus refused the command: {result.get('ErrorCode')}: {result.get('ErrorMessage')}")
    sent: dict[str, Any] = {"event_id": result["EventId"], "detail_type": detail_type, "detail": detail}
    if now is not None:
        sent["time"] = now.isoformat()
    return sent


def request_approval(
    target: Target, model_name: str, version: int, decision: Literal["approved", "rejected"], reason: str, by: str
) -> dict[str, Any]:
    current = get_version(target, model_name, version)
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


def wait_for_decision(target: Target, model_name: str, version: int, timeout_seconds: float) -> ModelVersion:
    """Poll until the version leaves REGISTERED, or fail after `timeout_seconds` (wall time)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        current = get_version(target, model_name, version)
        if current.status is not VersionStatus.REGISTERED:
            return current
        if time.monotonic() >= deadline:
            raise CliError(f"{model_name} version {version} is still REGISTERED after {timeout_seconds:g} s")
        time.sleep(0.25)


def request_promotion(
    target: Target,
    *,
    model_name: str,
    version: int | Literal["latest-approved"],
    endpoint_name: str,
    strategy: dict[str, Any],
    alarms: tuple[str, ...],
    instance_type: str,
    instance_count: int,
    by: str,
    reason: str,
) -> dict[str, Any]:
    try:
        parse_strategy(strategy)
    except InvalidStrategy as invalid:
        raise CliError(f"invalid strategy: {invalid.reason}") from None
    if version == "latest-approved":
        if not any(v.status is VersionStatus.APPROVED for v in list_versions(target, model_name)):
            raise CliError(f"{model_name} has no APPROVED version")
    else:
        get_version(target, model_name, version)
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
    )
    sent = send_command(target, command.DETAIL_TYPE, command.model_dump(mode="json"))
    if "time" in sent:  # the rollout id is known when the CLI set the event's time
        sent["rollout_id"] = naming.rollout_id(sent["event_id"], datetime.fromisoformat(sent["time"]))
    return sent


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
        get_version(target, model_name, to_version)
    command = _validated(
        ModelRollbackRequested, endpoint_name=endpoint_name, reason=reason, requested_by=by, to_version=to_version
    )
    return send_command(target, command.DETAIL_TYPE, command.model_dump(mode="json", exclude_none=True))


def _validated(model: Any, **fields: Any) -> Any:
    try:
        return model(**fields)
    except ValidationError as invalid:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in invalid.errors()
        )
        raise CliError(f"invalid {model.DETAIL_TYPE}: {problems}") from None
