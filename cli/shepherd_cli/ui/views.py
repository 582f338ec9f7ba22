"""What each dashboard page shows, read through the CLI's operations (so it works against local mode
and a deployed stack alike). Plain JSON-ready dicts: the templates render them and the pages' scripts
poll the same dicts as JSON. Read-only: nothing here sends a command or writes a record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from shepherd.registry.model import ModelVersion, VersionStatus
from shepherd.rollouts.ports import EndpointAuditEntry, Incident, StoredRollout
from shepherd_cli import operations
from shepherd_cli.analysis_view import evidence_text, waiting_sentence
from shepherd_cli.errors import CliError
from shepherd_cli.target import Target

# The controller writes one audit entry per weight request, "traffic 10% -> 50%" (service.py).
_TRAFFIC = re.compile(r"^traffic (\d+)% -> (\d+)%$")
# Audit actions that end a rollout or mark a moment worth a marker on the timeline.
_MARKERS = {"started": "started", "progress": "step reached", "completed": "completed", "failed": "failed"}


def models_page(target: Target) -> dict[str, Any]:
    """Every model with its versions (newest first), and the metric names their manifests share."""
    models = []
    for summary in operations.list_models(target):
        versions = operations.list_versions(target, summary.model_name)
        models.append(
            {
                "model_name": summary.model_name,
                "latest_version": summary.latest_version,
                "versions": [_version_row(version) for version in versions],
                "metric_names": sorted({name for version in versions for name in version.metrics}),
            }
        )
    return {"models": models}


def _version_row(version: ModelVersion) -> dict[str, Any]:
    lineage = version.lineage
    return {
        "version": version.version,
        "status": version.status.value,
        "live": version.status is VersionStatus.LIVE,
        "decided_by": version.decided_by,
        "decision_reason": version.decision_reason,
        "metrics": version.metrics,
        "framework": version.framework,
        "created_at": version.created_at.isoformat(),
        "uploaded_by": version.uploaded_by,
        "parent_version": lineage.parent_version,
        "training_data": lineage.training_data.uri if lineage.training_data else None,
        "source": f"{lineage.source.repository}@{lineage.source.commit[:12]}" if lineage.source else None,
    }


def endpoints_page(target: Target) -> dict[str, Any]:
    names = operations.list_endpoints(target)
    return {"endpoints": [_endpoint_row(target, name) for name in names]}


def _endpoint_row(target: Target, name: str) -> dict[str, Any]:
    latest = target.rollouts().latest_rollout(name)
    return {
        "endpoint_name": name,
        "phase": latest.rollout.phase.value if latest else None,
        "model_name": latest.rollout.model_name if latest else None,
        "version": latest.rollout.version if latest else None,
        "rollout_id": latest.rollout.rollout_id if latest else None,
    }


def endpoint_page(target: Target, endpoint_name: str) -> dict[str, Any]:
    """The endpoint as described now, its current (or last) rollout, the timeline and the incident."""
    status = operations.endpoint_status(target, endpoint_name)
    store = target.rollouts()
    stored = store.latest_rollout(endpoint_name)
    trail = store.endpoint_audit_trail(endpoint_name)
    incidents = store.incidents(endpoint_name)
    incident = incidents[-1] if incidents else None
    now = target.simulated_now() or datetime.now(UTC)
    return {
        **status,
        "now": now.isoformat(),
        "timeline": rollout_timeline(stored, trail, incident, now=now) if stored else None,
        "incident": _incident(incident)
        if incident and stored and incident.rollout_id == stored.rollout.rollout_id
        else None,
        "rollouts": [
            {
                "rollout_id": other.rollout.rollout_id,
                "version": other.rollout.version,
                "phase": other.rollout.phase.value,
                "started_at": other.rollout.started_at.isoformat(),
            }
            for other in sorted(store.rollouts_of(endpoint_name), key=lambda s: s.rollout.started_at, reverse=True)
        ],
    }


def rollout_timeline(
    stored: StoredRollout, trail: list[EndpointAuditEntry], incident: Incident | None, now: datetime | None = None
) -> dict[str, Any]:
    """The candidate's traffic percent over time, as a step line, with markers.

    Points come from the audit trail: the start (0%), every weight request ("traffic a% -> b%") and the
    rollback's flip. While the rollout is active a last point at "now" carries the current percent, so
    the line reaches the present. Markers: each step reached, completion, failure, the alarm that
    fired and the flip.
    """
    rollout = stored.rollout
    entries = sorted((e for e in trail if e.rollout_id == rollout.rollout_id), key=lambda e: e.at)
    points: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    percent = 0
    for entry in entries:
        traffic = _TRAFFIC.match(entry.action)
        if traffic:
            percent = int(traffic.group(2))
            points.append(_point(entry.at, percent))
            markers.append({"at": entry.at.isoformat(), "kind": "step", "label": f"{traffic.group(1)}% -> {percent}%"})
        elif entry.action == "started":
            points.append(_point(entry.at, 0))
            markers.append({"at": entry.at.isoformat(), "kind": "started", "label": "started"})
        elif entry.action == "rolled back":
            percent = 0
            points.append(_point(entry.at, 0))
            markers.append({"at": entry.at.isoformat(), "kind": "rollback", "label": f"rolled back: {entry.detail}"})
        elif entry.action in _MARKERS:
            markers.append({"at": entry.at.isoformat(), "kind": entry.action, "label": _MARKERS[entry.action]})
    if incident is not None and incident.rollout_id == rollout.rollout_id and incident.alarm_changed_at is not None:
        label = f"alarm {incident.alarm_name} -> ALARM" if incident.alarm_name else f"{incident.trigger}"
        markers.append({"at": incident.alarm_changed_at.isoformat(), "kind": "alarm", "label": label})
    end = rollout.ended_at or (now if now is not None else rollout.updated_at)
    if points and end is not None and end > datetime.fromisoformat(points[-1]["at"]):
        points.append(_point(end, percent if rollout.ended_at is None else points[-1]["percent"]))
    return {
        "rollout_id": rollout.rollout_id,
        "points": points,
        "markers": sorted(markers, key=lambda marker: marker["at"]),
    }


def _point(at: datetime, percent: int) -> dict[str, Any]:
    return {"at": at.isoformat(), "t": at.timestamp(), "percent": percent}


def _incident(incident: Incident) -> dict[str, Any]:
    return incident.model_dump(mode="json", exclude={"timeline"})


def rollout_report(target: Target, endpoint_name: str, rollout_id: str) -> dict[str, Any]:
    """One rollout: its plan and outcome, its timeline, and the canary analysis evidence per step."""
    store = target.rollouts()
    stored = store.get_rollout(endpoint_name, rollout_id)
    if stored is None:
        raise CliError(f"no rollout {rollout_id} on endpoint {endpoint_name}")
    incidents = [incident for incident in store.incidents(endpoint_name) if incident.rollout_id == rollout_id]
    incident = incidents[-1] if incidents else None
    rollout = stored.rollout
    return {
        "endpoint_name": endpoint_name,
        "rollout_id": rollout_id,
        "model_name": rollout.model_name,
        "version": rollout.version,
        "previous_version": rollout.previous_version,
        "phase": rollout.phase.value,
        "plan": [step.model_dump(mode="json") for step in rollout.plan],
        "failure_reason": rollout.failure_reason,
        "requested_by": stored.request.requested_by,
        "timeline": rollout_timeline(stored, store.endpoint_audit_trail(endpoint_name), incident),
        "incident": _incident(incident) if incident else None,
        "analysis": analysis_of(stored),
    }


def analysis_of(stored: StoredRollout) -> list[dict[str, Any]]:
    """The canary analysis the controller stored on the rollout, one entry per judged step, in the shape
    dashboard.js draws: per metric its verdict, its evidence in words (``shown``, as `shepherd status`
    says it), and baseline vs candidate per minute (a latency's in ms)."""
    judged = {metric.name: metric for metric in stored.rollout.strategy.analysis.judge.judged_metrics()}
    steps = []
    for entry in stored.rollout.analysis:
        metrics = []
        for evidence in entry.verdict.metrics:
            row = evidence.model_dump(mode="json")
            row |= {"name": evidence.metric, "verdict": evidence.outcome}
            row["shown"] = evidence_text(row, entry.thresholds)
            metric = judged.get(evidence.metric)
            # What the controller charts (rollouts/canary.py): a tail metric's per-minute percentile.
            charted_id = (metric.threshold_series or metric.series) if metric is not None else evidence.metric
            charted = entry.series.get(charted_id)
            if charted is not None:
                latency = charted_id.startswith("model_latency")
                scale = 1000.0 if latency else 1.0  # ModelLatency is in microseconds
                row["series"] = {
                    "baseline": [None if value is None else value / scale for value in charted.baseline],
                    "candidate": [None if value is None else value / scale for value in charted.candidate],
                    "label": f"{charted_id} (ms)" if latency else charted_id,
                }
            metrics.append(row)
        steps.append(
            {
                "step": entry.step + 1,
                "percent": entry.percent,
                "verdict": entry.verdict.outcome,
                "decision": entry.decision,
                "minutes": entry.verdict.minutes,
                "extended_seconds": entry.extended_seconds,
                "resumed_by": entry.resumed_by,
                "waiting": waiting_sentence(entry.verdict.model_dump(mode="json")),
                "thresholds_ms": {name: round(value / 1000, 3) for name, value in sorted(entry.thresholds.items())},
                "metrics": metrics,
            }
        )
    return steps


def history_page(target: Target, name: str | None) -> dict[str, Any]:
    """The audit trail of one model or endpoint, or of every model and endpoint when no name is given."""
    if name:
        trail = operations.history(target, name)
        return {"name": name, "entries": _merged(trail["model"], trail["endpoint"])}
    model_entries: list[dict[str, Any]] = []
    endpoint_entries: list[dict[str, Any]] = []
    for summary in operations.list_models(target):
        model_entries += operations.history(target, summary.model_name, "model")["model"]
    for endpoint in operations.list_endpoints(target):
        try:
            endpoint_entries += operations.history(target, endpoint, "endpoint")["endpoint"]
        except CliError:
            continue  # an endpoint with no audit trail yet
    return {"name": None, "entries": _merged(model_entries, endpoint_entries)}


def _merged(model: list[dict[str, Any]], endpoint: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [
        {
            "at": entry["at"],
            "kind": "model",
            "subject": f"{entry['model_name']} v{entry['version']}",
            "action": entry["action"],
            "change": f"{entry['from_status'] or '-'} -> {entry['to_status']}",
            "actor": entry["actor"],
            "detail": entry.get("reason") or "",
            "model_name": entry["model_name"],
            "endpoint_name": entry.get("endpoint_name"),
        }
        for entry in model
    ] + [
        {
            "at": entry["at"],
            "kind": "endpoint",
            "subject": f"{entry['endpoint_name']} ({entry['model_name']} v{entry['version']})",
            "action": entry["action"],
            "change": "",
            "actor": entry["actor"],
            "detail": entry["detail"],
            "model_name": entry["model_name"],
            "endpoint_name": entry["endpoint_name"],
        }
        for entry in endpoint
    ]
    return sorted(rows, key=lambda row: row["at"], reverse=True)
