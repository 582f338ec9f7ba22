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
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import ValidationError

from shepherd.contracts import (
    ModelPromotionRequested,
    ModelRollbackRequested,
    ModelRolloutResumeRequested,
    ModelVersionApprovalRequested,
    validation_problems,
)
from shepherd.registry.model import AuditEntry, ModelSummary, ModelVersion, VersionStatus
from shepherd.rollouts import naming
from shepherd.rollouts.ports import REFUSED_PROMOTION, EndpointAuditEntry, StoredRollout
from shepherd.rollouts.record import Phase
from shepherd.rollouts.strategy import InvalidStrategy, parse_strategy
from shepherd.rollouts.variant_roles import variant_role
from shepherd_cli.errors import CliError
from shepherd_cli.serving import serving_versions, standby_versions
from shepherd_cli.subscription import Subscription
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
    # A refused promotion is part of the answer: `promote --no-wait` then `status` says why nothing started.
    refusal = last_refusal(target, endpoint_name, stored.rollout.started_at if stored else None)
    if live is None and stored is None and described is None and refusal is None:
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
                    "role": variant_role(variant["VariantName"], stored.rollout if stored else None),
                }
                for variant in described.get("ProductionVariants", [])
            ],
        }
    now = target.simulated_now() or datetime.now(UTC)
    variants = endpoint["variants"] if endpoint else []
    return {
        "endpoint_name": endpoint_name,
        "endpoint": endpoint,
        # What takes the traffic now (the weights); `live` is the recorded baseline, which names the
        # previous version until a watch window ends.
        "model_name": stored.rollout.model_name if stored else live.model_name if live else None,
        "serving": serving_versions(variants),
        "standby": standby_versions(variants),
        "live": live.model_dump(mode="json") if live else None,
        "rollout": {**_rollout_summary(stored), **_timing(stored, now)} if stored else None,
        "alarms": _alarm_states(target, stored.rollout.gating_alarms) if stored is not None and active else [],
        "refused": refusal,
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
            if rollout.fresh_baseline is not None:  # the live version again, for the judge
                versions[rollout.fresh_baseline.variant_name] = rollout.previous_version
    return versions


def _timing(stored: StoredRollout, now: datetime) -> dict[str, Any]:
    """When the current bake ends and the next step is due, and the watch window's end."""
    rollout = stored.rollout
    timing: dict[str, Any] = {"now": now.isoformat()}
    step = rollout.plan[rollout.step_index] if rollout.step_index >= 0 else None
    if rollout.phase is Phase.SHIFTING and step is not None and rollout.step_started_at and step.bake_seconds:
        ends = rollout.step_started_at + timedelta(seconds=step.bake_seconds)
        timing["bake_ends_at"] = ends.isoformat()
        timing["bake_left_seconds"] = max(0, round((ends - now).total_seconds()))
        if rollout.step_index + 1 < len(rollout.plan):
            timing["next_step_percent"] = rollout.plan[rollout.step_index + 1].percent
            timing["next_step_at"] = ends.isoformat()
    if rollout.watch_started_at is not None:
        until = rollout.watch_started_at + timedelta(seconds=rollout.post_deploy_watch_seconds)
        timing["watch_until"] = until.isoformat()
        timing["watch_left_seconds"] = max(0, round((until - now).total_seconds()))
    return timing


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
        # The canary judge's latest verdict per judged step (the charts are `shepherd analysis`'s).
        "analysis": [entry.model_dump(mode="json", exclude={"series"}) for entry in rollout.analysis],
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


def list_rollouts(target: Target, endpoint_name: str) -> list[dict[str, Any]]:
    """The endpoint's rollouts, newest first (one Query)."""
    found = target.rollouts().rollouts_of(endpoint_name)
    if not found and target.rollouts().live(endpoint_name) is None:
        raise CliError(f"no rollout on {endpoint_name} in {target.describe()}")
    return [_rollout_summary(stored) for stored in found]


def get_rollout(target: Target, rollout_id: str, endpoint_name: str | None = None) -> dict[str, Any]:
    """One rollout: plan, timeline, outcome and incident. Without the endpoint, the endpoints Shepherd
    knows (gsi1: active rollouts, then deployed endpoints) are each asked for it: Queries and Gets only."""
    if not naming.ROLLOUT_ID_PATTERN.fullmatch(rollout_id):
        raise CliError(f"{rollout_id!r} is not a rollout id (like 20261120T100000Z-3fa9c1d2e4)")
    store = target.rollouts()
    if endpoint_name is not None:
        candidates = [endpoint_name]
    else:
        active = [stored.rollout.endpoint_name for stored in store.active_rollouts()]
        candidates = [*active, *store.endpoint_names()]
    for name in dict.fromkeys(candidates):
        stored = store.get_rollout(name, rollout_id)
        if stored is not None:
            timeline = [e for e in store.endpoint_audit_trail(name) if e.rollout_id == rollout_id]
            incidents = [i for i in store.incidents(name) if i.rollout_id == rollout_id]
            return {
                **_rollout_summary(stored),
                "endpoint_name": name,
                "timeline": [entry.model_dump(mode="json") for entry in sorted(timeline, key=lambda e: e.at)],
                "incident": incidents[0].model_dump(mode="json", exclude={"timeline"}) if incidents else None,
            }
    where = f"on {endpoint_name}" if endpoint_name else "on any endpoint (pass --endpoint if it never went live)"
    raise CliError(f"no rollout {rollout_id} {where} in {target.describe()}")


def list_rejections(target: Target, model_name: str | None, limit: int) -> list[dict[str, Any]]:
    """Rejected and ignored uploads, and refused promotions, with their reasons, newest first (two
    Queries on gsi1). Uploads are `kind` "upload" (their `code` says rejected or ignored); refusals
    "promotion", with the endpoint, the version asked for and who asked."""
    uploads = [
        {"kind": "upload", **rejection.model_dump(mode="json")}
        for rejection in target.registry().list_rejections(model_name, limit)
    ]
    refused = [
        _refusal(entry)
        for entry in target.rollouts().refusals(limit if model_name is None else PAGE_SIZE * 10)
        if model_name in (None, entry.model_name)
    ]
    found = sorted([*uploads, *refused], key=lambda item: datetime.fromisoformat(item["rejected_at"]), reverse=True)
    return found[:limit]


def _refusal(entry: EndpointAuditEntry) -> dict[str, Any]:
    return {
        "kind": "promotion",
        "code": "PROMOTION_REJECTED",
        "reason": entry.detail,
        "model_name": entry.model_name,
        "version": entry.version,
        "endpoint_name": entry.endpoint_name,
        "rollout_id": entry.rollout_id,
        "requested_by": entry.actor,
        "rejected_at": entry.at.isoformat(),
        "event_id": entry.event_id,
    }


def last_refusal(target: Target, endpoint_name: str, after: datetime | None) -> dict[str, Any] | None:
    """The endpoint's newest refused promotion, if it came after `after` (the latest rollout's start)."""
    refused = [
        entry for entry in target.rollouts().endpoint_audit_trail(endpoint_name) if entry.action == REFUSED_PROMOTION
    ]
    if not refused:
        return None
    newest = max(refused, key=lambda entry: entry.at)
    return _refusal(newest) if after is None or newest.at >= after else None


# --- commands ------------------------------------------------------------------------------------


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
        allow_rolled_back=allow_rolled_back,
        replace_model=replace_model,
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
        get_version(target, model_name, to_version)
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


def rollout_analysis(target: Target, rollout_id: str, endpoint_name: str | None = None) -> dict[str, Any]:
    """The canary judge's evidence per step of one rollout, with the per-minute series it compared."""
    found = get_rollout(target, rollout_id, endpoint_name)
    stored = target.rollouts().get_rollout(found["endpoint_name"], rollout_id)
    assert stored is not None
    return {
        "rollout_id": rollout_id,
        "endpoint_name": found["endpoint_name"],
        "model_name": found["model_name"],
        "version": found["version"],
        "previous_version": found["previous_version"],
        "phase": found["phase"],
        "steps": [entry.model_dump(mode="json") for entry in stored.rollout.analysis],
    }


def replay_analysis(
    target: Target, rollout_id: str, endpoint_name: str | None = None, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Judge a past rollout's steps again from CloudWatch, under ``config`` (default: the rollout's own)."""
    from shepherd.adapters.cloudwatch import CloudWatchVariantMetrics
    from shepherd.analysis.config import JudgeConfig
    from shepherd_cli.replay import replay

    found = get_rollout(target, rollout_id, endpoint_name)
    stored = target.rollouts().get_rollout(found["endpoint_name"], rollout_id)
    assert stored is not None
    judge = stored.rollout.strategy.analysis.judge
    if config is not None:
        try:
            judge = JudgeConfig.model_validate(config)
        except ValidationError as invalid:
            raise CliError(f"--config: {validation_problems(invalid)}") from None
    trail = target.rollouts().endpoint_audit_trail(found["endpoint_name"])
    return replay(stored.rollout, trail, judge, CloudWatchVariantMetrics(target.client("cloudwatch")))


def _validated(model: Any, **fields: Any) -> Any:
    try:
        return model(**fields)
    except ValidationError as invalid:
        raise CliError(f"invalid {model.DETAIL_TYPE}: {validation_problems(invalid)}") from None


# --- answers -------------------------------------------------------------------------------------

POLL_SECONDS = 1.0


def is_answer(sent: dict[str, Any], announcement: dict[str, Any]) -> bool:
    """Whether `announcement` is Shepherd's answer to the command `sent`."""
    detail, detail_type = announcement.get("detail") or {}, announcement.get("detail-type")
    if detail.get("command_id") == sent["event_id"]:
        return True  # approvals, refusals, rollbacks of a rollout in progress
    if sent["detail_type"] in (ModelPromotionRequested.DETAIL_TYPE, ModelRollbackRequested.DETAIL_TYPE):
        # A promotion, or a rollback that redeploys an earlier version: the rollout the command names.
        return detail_type in ("Rollout Started", "Promotion Rejected") and (
            detail.get("rollout_id") == requested_rollout_id(sent)
        )
    return False


def wait_for_answer(target: Target, subscription: Subscription, sent: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Shepherd's answer to `sent` (an announcement), heard on `subscription` or read from the records
    the functions write; raises `CliError` (exit 3) when none came within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for announcement in subscription.receive(min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
            if is_answer(sent, announcement):
                return announcement
        recorded = _recorded_answer(target, sent)
        if recorded is not None:
            return recorded
        if time.monotonic() >= deadline:
            raise CliError(
                f"no answer to {sent['detail_type']} (event {sent['event_id']}) within {timeout:g} s; it may still "
                "be carried out: check with `shepherd status` or `shepherd history`",
                exit_code=3,
            )


def _recorded_answer(target: Target, sent: dict[str, Any]) -> dict[str, Any] | None:
    """What the records say the command did (when the announcement was missed), or None."""
    detail = sent["detail"]
    if sent["detail_type"] == ModelVersionApprovalRequested.DETAIL_TYPE:
        version = target.registry().get_version(detail["model_name"], detail["version"])
        if version is None or version.decided_by_event != sent["event_id"]:
            return None
        decided = "Model Version Approved" if detail["decision"] == "approved" else "Model Version Rejected"
        return {"detail-type": decided, "detail": {**detail, "command_id": sent["event_id"]}, "recorded": True}
    if sent["detail_type"] == ModelPromotionRequested.DETAIL_TYPE:
        stored = target.rollouts().get_rollout(detail["endpoint_name"], requested_rollout_id(sent))
        if stored is None:
            return None
        summary = _rollout_summary(stored)
        return {"detail-type": "Rollout Started", "detail": {**summary, "endpoint_name": detail["endpoint_name"]}}
    if sent["detail_type"] == ModelRolloutResumeRequested.DETAIL_TYPE:
        trail = target.rollouts().endpoint_audit_trail(detail["endpoint_name"])
        resumed = [e for e in trail if e.action == "resumed" and e.event_id == sent["event_id"]]
        if not resumed:
            return None  # a refusal is not recorded: only its announcement says it
        entry = resumed[0]
        answer: dict[str, Any] = {
            "rollout_id": entry.rollout_id,
            "endpoint_name": entry.endpoint_name,
            "model_name": entry.model_name,
        }
        answer |= {"version": entry.version, "requested_by": entry.actor, "command_id": sent["event_id"]}
        return {"detail-type": "Rollout Resumed", "detail": answer, "recorded": True}
    return None
