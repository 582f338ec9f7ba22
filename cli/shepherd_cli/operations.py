"""What the CLI reads: the registry's models and versions, the rollouts, the audit trails and refusals,
and the canary judge's evidence.

Reads go through the shared package's adapters (the same code the functions use). Everything returns
plain data (JSON-ready dicts and pydantic records); expected failures raise `CliError`. An endpoint's
live status is `endpoint_view`; the commands the CLI sends are `bus_commands`, and waiting for their
answers `command_answers`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from shepherd.contracts import (
    validation_problems,
)
from shepherd.registry.model import AuditEntry, ModelSummary, ModelVersion
from shepherd.rollouts import naming
from shepherd.rollouts.ports import REFUSED_PROMOTION, EndpointAuditEntry, StoredRollout
from shepherd.rollouts.record import Rollout
from shepherd_cli.cost_view import rollout_cost
from shepherd_cli.errors import CliError
from shepherd_cli.target import Target

PAGE_SIZE = 100


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


def rollout_summary(stored: StoredRollout) -> dict[str, Any]:
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
        "capacity": _capacity(rollout),
    }


def _capacity(rollout: Rollout) -> dict[str, Any]:
    """How the candidate is sized and what limits the new live variant takes over (issue 23)."""
    sizing, limits = rollout.sizing, rollout.scaling_limits
    return {
        "instance_type": rollout.candidate.instance_type,
        "candidate_instances": rollout.candidate.initial_instance_count,  # as last asked for
        "sized_to_share": sizing is not None,
        "headroom": sizing.headroom if sizing else None,
        "live_instances_at_start": sizing.live_count_at_start if sizing else None,
        "min_capacity": limits.min_capacity if limits else None,
        "max_capacity": limits.max_capacity if limits else None,
    }


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
    return [rollout_summary(stored) for stored in found]


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
                **rollout_summary(stored),
                "endpoint_name": name,
                "timeline": [entry.model_dump(mode="json") for entry in sorted(timeline, key=lambda e: e.at)],
                "incident": incidents[0].model_dump(mode="json", exclude={"timeline"}) if incidents else None,
                "cost": rollout_cost(target, stored.rollout),
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
