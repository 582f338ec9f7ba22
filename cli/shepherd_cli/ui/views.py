"""What each dashboard page shows, read through the CLI's operations (so it works against local mode
and a deployed stack alike). Plain JSON-ready dicts: the templates render them and the pages' scripts
poll the same dicts as JSON. Read-only: nothing here sends a command or writes a record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from shepherd.rollouts.ports import EndpointAuditEntry, Incident, StoredRollout
from shepherd.rollouts.rollback_cause import ANALYSIS_TRIGGER
from shepherd_cli import endpoint_metrics, operations
from shepherd_cli.analysis_view import evidence_text, waiting_sentence
from shepherd_cli.cost_view import rollout_cost
from shepherd_cli.endpoint_view import endpoint_status
from shepherd_cli.errors import CliError
from shepherd_cli.serving import serving_versions
from shepherd_cli.target import Target
from shepherd_cli.ui.catalog import serving_now, version_row
from shepherd_cli.ui.instance_counts import CountSampler, instance_counts
from shepherd_cli.ui.instances import configured_instances
from shepherd_cli.ui.paging import paginate

# Audit actions (the controller's names for its transitions) worth a marker on the timeline.
_MARKERS = {"started": "started", "progress": "step reached", "completed": "completed", "failed": "failed"}
MODEL_OVERVIEW_VERSIONS = 10  # the models page shows each model's newest; its own page has them all
HISTORY_PAGE_SIZE = 50


def models_page(target: Target) -> dict[str, Any]:
    """Every model with its versions (newest first), and the metric names their manifests share."""
    models = []
    for summary in operations.list_models(target):
        versions = operations.list_versions(target, summary.model_name)
        serving = serving_now(target, summary.model_name)
        models.append(
            {
                "model_name": summary.model_name,
                "latest_version": summary.latest_version,
                "version_count": len(versions),
                "versions": [
                    version_row(version, serving.get(version.version, []))
                    for version in versions[:MODEL_OVERVIEW_VERSIONS]
                ],
                "metric_names": sorted({name for version in versions for name in version.metrics}),
            }
        )
    return {"models": models}


def endpoints_page(target: Target) -> dict[str, Any]:
    names = operations.list_endpoints(target)
    return {"endpoints": [_endpoint_row(target, name) for name in names]}


def _endpoint_row(target: Target, name: str) -> dict[str, Any]:
    """The endpoint, the version serving it now (the variant taking the traffic, as SageMaker says),
    its last rollout and its latest incident."""
    status = endpoint_status(target, name)
    latest = status["rollout"]
    incidents = target.rollouts().incidents(name)
    return {
        "endpoint_name": name,
        "serving": serving_of(status),
        "sagemaker_status": status["endpoint"]["status"] if status["endpoint"] else None,
        "phase": latest["phase"] if latest else None,
        "model_name": latest["model_name"] if latest else None,
        "version": latest["version"] if latest else None,
        "rollout_id": latest["rollout_id"] if latest else None,
        "incidents": len(incidents),
        "latest_incident": incident_row(max(incidents, key=lambda i: i.flipped_at)) if incidents else None,
    }


def serving_of(status: dict[str, Any]) -> dict[str, Any] | None:
    """The version taking most of the endpoint's traffic now, with its share, from the described
    variants' weights (`shepherd_cli.serving`, as `shepherd status` says it)."""
    serving = serving_versions(status["endpoint"]["variants"] if status["endpoint"] else [])
    if not serving:
        return None
    live = status.get("live") or {}
    model_name = live.get("model_name") or (status["rollout"] or {}).get("model_name")
    return {"model_name": model_name, "version": serving[0]["version"], "percent": round(serving[0]["percent"], 1)}


def endpoint_page(target: Target, endpoint_name: str, sampler: CountSampler | None = None) -> dict[str, Any]:
    """The endpoint as described now: who serves, its current (or last) rollout with the judge's
    verdict per metric, the timeline, its incidents (newest first), and per-variant charts
    (``sampler``: the instance counts this dashboard saw before, see `instance_counts`)."""
    status = endpoint_status(target, endpoint_name)
    store = target.rollouts()
    stored = store.latest_rollout(endpoint_name)
    trail = store.endpoint_audit_trail(endpoint_name)
    incidents = sorted(store.incidents(endpoint_name), key=lambda incident: incident.flipped_at, reverse=True)
    current = next((i for i in incidents if stored and i.rollout_id == stored.rollout.rollout_id), None)
    now = target.simulated_now() or datetime.now(UTC)
    rollouts = sorted(store.rollouts_of(endpoint_name), key=lambda s: s.rollout.started_at, reverse=True)
    return {
        **status,
        "now": now.isoformat(),
        "serving": serving_of(status),
        "verdict": current_verdict(stored) if stored else None,
        "timeline": rollout_timeline(stored, trail, current, now=now) if stored else None,
        "incidents": [incident_row(incident) for incident in incidents],
        "charts": _charts(target, endpoint_name, status, rollouts, now, sampler),
        "rollouts": [
            {
                "rollout_id": other.rollout.rollout_id,
                "version": other.rollout.version,
                "previous_version": other.rollout.previous_version,
                "phase": other.rollout.phase.value,
                "started_at": other.rollout.started_at.isoformat(),
            }
            for other in rollouts
        ],
    }


def current_verdict(stored: StoredRollout) -> dict[str, Any] | None:
    """The canary judge's verdict on the step the rollout is at (or, once it ended, on the last step
    judged), per metric in words and units, as on the rollout page."""
    steps = analysis_of(stored)
    if not steps:
        return None
    at_step = [step for step in steps if step["step"] == stored.rollout.step_index + 1]
    return {
        **(at_step or steps)[-1],
        "rollout_id": stored.rollout.rollout_id,
        "final": stored.rollout.phase.is_terminal,
    }


def _charts(
    target: Target,
    endpoint_name: str,
    status: dict[str, Any],
    rollouts: list[StoredRollout],
    now: datetime,
    sampler: CountSampler | None = None,
) -> dict[str, Any]:
    """The last hour per variant (requests, error rate, latency) and the instances over time. Metrics
    CloudWatch will not give (no permission, say) leave their charts empty with the reason."""
    described = status["endpoint"]["variants"] if status["endpoint"] else []
    names = [variant["variant_name"] for variant in described]
    for stored in rollouts[:1]:
        rollout = stored.rollout
        for spec in (rollout.live, rollout.candidate, rollout.fresh_baseline):
            if spec is not None and spec.variant_name not in names:
                names.append(spec.variant_name)
    charts: dict[str, Any] = {"instances": configured_instances(rollouts, described, now)}
    try:
        charts["metrics"] = endpoint_metrics.variant_minutes(target.client("cloudwatch"), endpoint_name, names, now)
    except ClientError as error:
        charts["metrics"] = {"minutes": [], "variants": [], "unavailable": str(error)}
    if sampler is not None:
        sampler.record(endpoint_name, now, described)
    sampled = sampler.seen(endpoint_name) if sampler is not None else None
    try:
        cloudwatch = target.client("cloudwatch")
        charts["capacity"] = instance_counts(cloudwatch, endpoint_name, names, described, now, sampled)
    except ClientError as error:
        charts["capacity"] = {
            **instance_counts(None, endpoint_name, [], described, now, sampled),
            "unavailable": str(error),
        }
    return charts


def incident_row(incident: Incident) -> dict[str, Any]:
    """One rollback as the endpoint page lists it: what triggered it (an alarm, the canary judge or an
    operator), when traffic went back, and to which version."""
    row = incident.model_dump(mode="json", exclude={"timeline", "analysis"})
    if incident.alarm_name is not None:
        row["cause"], row["since"] = "alarm", "after the alarm"
    elif incident.analysis is not None or incident.trigger == ANALYSIS_TRIGGER:
        row["cause"], row["since"] = "canary judge", "after the judge's verdict"
    else:
        row["cause"], row["since"] = "operator", "after the request"
    row["verdict"] = incident.analysis.outcome if incident.analysis is not None else None
    return row


def rollout_timeline(
    stored: StoredRollout, trail: list[EndpointAuditEntry], incident: Incident | None, now: datetime | None = None
) -> dict[str, Any]:
    """The candidate's traffic percent over time, as a step line, with markers.

    Points come from the audit trail's fields: the start (0%), every weight request (``to_percent``,
    the rollback's flip included) and the rollback's end. While the rollout is active a last point at
    "now" carries the current percent, so the line reaches the present. Markers: each step reached,
    completion, failure, the alarm that fired and the flip. Entries written before the percent fields
    existed still show as markers, with the action's own words.
    """
    rollout = stored.rollout
    entries = sorted((e for e in trail if e.rollout_id == rollout.rollout_id), key=lambda e: e.at)
    points: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    percent = 0
    for entry in entries:
        at = entry.at.isoformat()
        if entry.to_percent is not None:
            percent = entry.to_percent
            points.append(_point(entry.at, percent))
            kind = "flip" if entry.action == "traffic flipped back" else "step"
            markers.append({"at": at, "kind": kind, "label": f"traffic {entry.from_percent}% -> {percent}%"})
        elif entry.action == "started":
            points.append(_point(entry.at, 0))
            markers.append({"at": at, "kind": "started", "label": "started"})
        elif entry.action == "rolled back":
            if percent:  # a trail from before the flip's percent was recorded: the end says it
                percent = 0
                points.append(_point(entry.at, 0))
            markers.append({"at": at, "kind": "rollback", "label": f"rolled back: {entry.detail}"})
        elif entry.action in _MARKERS:
            markers.append({"at": at, "kind": entry.action, "label": _MARKERS[entry.action]})
        elif entry.action.startswith("traffic"):
            markers.append({"at": at, "kind": "step", "label": entry.action})  # written before the fields
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
        "incident": incident_row(incident) if incident else None,
        "analysis": analysis_of(stored),
        "cost": rollout_cost(target, rollout),  # shown by templates/_cost.html
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
            # What the controller charts (rollouts/judging.py): a tail metric's per-minute percentile.
            charted_id = metric.charted_series if metric is not None else evidence.metric
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


def history_page(target: Target, name: str | None, page: int = 1) -> dict[str, Any]:
    """The audit trail of one model or endpoint, or of every model and endpoint when no name is given,
    newest first, a page at a time."""
    if name:
        trail = operations.history(target, name)
        rows = _merged(trail["model"], trail["endpoint"])
    else:
        model_entries: list[dict[str, Any]] = []
        endpoint_entries: list[dict[str, Any]] = []
        for summary in operations.list_models(target):
            model_entries += operations.history(target, summary.model_name, "model")["model"]
        for endpoint in operations.list_endpoints(target):
            try:
                endpoint_entries += operations.history(target, endpoint, "endpoint")["endpoint"]
            except CliError:
                continue  # an endpoint with no audit trail yet
        rows = _merged(model_entries, endpoint_entries)
    return {"name": name, **paginate(rows, page, HISTORY_PAGE_SIZE, "entries")}


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
            "version": entry["version"],
            "endpoint_name": entry.get("endpoint_name"),
            "rollout_id": entry.get("rollout_id"),
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
            "version": entry["version"],
            "endpoint_name": entry["endpoint_name"],
            "rollout_id": entry.get("rollout_id"),
        }
        for entry in endpoint
    ]
    return sorted(rows, key=lambda row: row["at"], reverse=True)
