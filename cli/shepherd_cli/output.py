"""Printing: rich tables for a person, plain JSON for scripts (``--json``)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from shepherd.registry.images import digest_of
from shepherd.registry.model import ModelSummary, ModelVersion
from shepherd_cli.analysis_view import current_step_lines
from shepherd_cli.announcements import after_what
from shepherd_cli.cost_view import cost_text
from shepherd_cli.safe_text import SafeConsole, clean

STATUS_STYLES = {
    "REGISTERED": "cyan",
    "APPROVED": "blue",
    "REJECTED": "red",
    "DEPLOYING": "yellow",
    "LIVE": "bold green",
    "STANDBY": "green",
    "RETIRED": "dim",
    "ROLLED_BACK": "magenta",
    "FAILED": "red",
    "ALARM": "bold red",
    "OK": "green",
    "INSUFFICIENT_DATA": "yellow",
    "COMPLETED": "green",
}


def console(stderr: bool = False) -> Console:
    """Rich's console; wide when not a terminal (CI logs, pipes) so lines are not wrapped at 80."""
    stream = sys.stderr if stderr else sys.stdout
    # markup and emoji off: names, reasons and keys are printed as given (a reason quoting the pattern
    # `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$` would otherwise lose its brackets as Rich markup); control
    # characters escaped (safe_text.py).
    return SafeConsole(
        highlight=False, markup=False, emoji=False, stderr=stderr, width=None if stream.isatty() else 160
    )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def styled(value: Any) -> Text:
    text = clean(value)
    return Text(text, style=STATUS_STYLES.get(text, ""))


def when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def render_models(models: list[ModelSummary]) -> None:
    out = console()
    if not models:
        out.print("No models yet: upload models/<model_name>/.../model.tar.gz to the artifact bucket.")
        return
    table = Table("MODEL", "LATEST VERSION", "CREATED", "UPDATED", box=None, pad_edge=False)
    for model in models:
        table.add_row(
            clean(model.model_name), str(model.latest_version), when(model.created_at), when(model.updated_at)
        )
    out.print(table)


def render_versions(versions: list[ModelVersion]) -> None:
    table = Table(
        "VERSION", "STATUS", "CREATED", "SIZE", "METRICS", "DECIDED BY", "ARTIFACT", "IMAGE", box=None, pad_edge=False
    )
    for version in versions:
        metrics = clean(", ".join(f"{name} {value:g}" for name, value in sorted(version.metrics.items())))
        table.add_row(
            str(version.version),
            styled(version.status.value),
            when(version.created_at),
            _size(version.size),
            metrics,
            clean(version.decided_by),
            clean(version.artifact.key),
            clean(_image(version.inference_image)),
        )
    console().print(table)


def _image(image: str | None) -> str:
    """The repository and its digest, shortened: the registry is long and the digest is what identifies."""
    if image is None:
        return "default"
    repository = image.split("/", 1)[-1].split("@", 1)[0]
    digest = digest_of(image)
    return f"{repository}@{digest[:19]}" if digest else repository


def render_version(version: ModelVersion) -> None:
    out = console()
    out.print(
        Text.assemble((clean(f"{version.model_name} v{version.version}  "), "bold"), styled(version.status.value))
    )
    rows: list[tuple[str, Any]] = [
        ("artifact", version.artifact.uri),
        ("s3 version id", version.artifact.s3_version_id),
        ("size", f"{_size(version.size)} ({version.size} bytes)"),
        ("checksum", f"{version.checksum.algorithm} {version.checksum.value}" if version.checksum else "none"),
        ("created", when(version.created_at)),
        ("uploaded by", version.uploaded_by),
        ("description", version.description),
        ("framework", " ".join(v for v in (version.framework, version.framework_version) if v) or None),
        ("inference image", version.inference_image or "the stack's DefaultInferenceImage"),
        ("image digest", digest_of(version.inference_image) if version.inference_image else None),
        (
            "approved copy",
            f"{version.approved_artifact.uri} (S3 version {version.approved_artifact.s3_version_id}, "
            f"{version.approved_artifact.checksum.algorithm} {version.approved_artifact.checksum.value})"
            if version.approved_artifact
            else None,
        ),
        ("metrics", ", ".join(f"{k} {v:g}" for k, v in sorted(version.metrics.items())) or None),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(version.tags.items())) or None),
        ("metadata", ", ".join(f"{k}={v}" for k, v in sorted(version.metadata.items())) or None),
        ("parent version", version.lineage.parent_version),
        ("training data", version.lineage.training_data.uri if version.lineage.training_data else None),
        (
            "source",
            f"{version.lineage.source.repository}@{version.lineage.source.commit}" if version.lineage.source else None,
        ),
        ("decided by", f"{version.decided_by}: {version.decision_reason}" if version.decided_by else None),
        ("rolled back by", f"{version.rolled_back_by}: {version.rollback_reason}" if version.rolled_back_by else None),
    ]
    table = Table(box=None, show_header=False, pad_edge=False)
    for name, value in rows:
        if value is not None:
            table.add_row(Text(name, style="dim"), clean(value))
    out.print(table)


def render_sent(sent: dict[str, Any], summary: str) -> None:
    out = console()
    out.print(clean(f"{summary}: sent {sent['detail_type']} (event {sent['event_id']})."))
    if "rollout_id" in sent:
        out.print(clean(f"Rollout id {sent['rollout_id']}."))


def _percent(weight: float | None, total: float) -> str:
    if weight is None:
        return ""
    return f"{100 * weight / total:.0f}%" if total else f"{weight:g}"


def render_status(status: dict[str, Any]) -> None:
    console().print(status_view(status))


def _duration(seconds: int) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _rollout_lines(rollout: dict[str, Any]) -> list[Text]:
    line = Text("Rollout:   ")
    line.append(clean(f"{rollout['model_name']} v{rollout['version']}  "))
    line.append(rollout["phase"], style=STATUS_STYLES.get(rollout["phase"], "yellow"))
    if rollout["phase"] in ("PREPARING", "STARTING", "SHIFTING"):
        line.append(
            f"  step {max(rollout['step'], 0)}/{rollout['steps']}: "
            f"{rollout['current_percent']}% now, {rollout['target_percent']}% asked"
        )
    line.append(clean(f"  id {rollout['rollout_id']}"), style="dim")
    lines = [line, Text(clean(f"           requested by {rollout['requested_by']}: {rollout['reason']}"), style="dim")]
    if "bake_ends_at" in rollout:
        bake = Text(f"           bake {_duration(rollout['bake_seconds'])} started {when(rollout['step_started_at'])}")
        bake.append(f", {_duration(rollout['bake_left_seconds'])} left", style="bold")
        if "next_step_at" in rollout:
            bake.append(f"; next step {rollout['next_step_percent']}% at {when(rollout['next_step_at'])}")
        lines.append(bake)
    if "watch_until" in rollout and rollout["phase"] in ("WATCHING", "RETIRING"):
        lines.append(
            Text(
                f"           watch window: previous version on standby until {when(rollout['watch_until'])} "
                f"({_duration(rollout['watch_left_seconds'])} left)"
            )
        )
    if rollout["failure_reason"]:
        lines.append(Text(clean(f"           {rollout['failure_reason']}"), style="magenta"))
    if rollout["phase"] == "SHIFTING":
        lines += current_step_lines(rollout)
    return lines


def _serving_lines(status: dict[str, Any]) -> list[Text]:
    """What takes the traffic now, from the weights SageMaker reports (not the recorded baseline)."""
    if status["endpoint"] is None:
        return [Text("Serving:   nothing (no endpoint)")]
    shares = [
        f"v{entry['version']} {entry['percent']:.0f}%" + (" (candidate)" if entry["roles"] == ["candidate"] else "")
        for entry in status["serving"]
    ]
    model = clean(f"{status['model_name']} ") if status.get("model_name") else ""
    lines = [Text(f"Serving:   {model}{', '.join(shares)}" if shares else "Serving:   nothing (no variant has weight)")]
    if status["standby"]:
        standby = ", ".join(f"v{version}" for version in status["standby"])
        lines.append(Text(f"Standby:   {standby} at 0% (a rollback puts the traffic back on it)", style="dim"))
    return lines


def status_view(status: dict[str, Any], announcements: list[str] | None = None) -> Group:
    """The endpoint, its rollout, variants and gating alarms (and the last announcements, when given)."""
    parts: list[Any] = []
    endpoint = status["endpoint"]
    header = Text.assemble(("Endpoint ", "bold"), (clean(status["endpoint_name"]), "bold"))
    if endpoint is not None:
        header.append("  ")
        header.append(clean(endpoint["status"]), style="green" if endpoint["status"] == "InService" else "yellow")
        header.append(clean(f"  config {endpoint['config_name']}"), style="dim")
    else:
        header.append("  (no SageMaker endpoint)", style="yellow")
    parts.append(header)
    if endpoint and endpoint.get("failure_reason"):
        parts.append(Text(clean(f"Failure reason: {endpoint['failure_reason']}"), style="red"))
    parts.extend(_serving_lines(status))
    rollout = status["rollout"]
    if rollout is not None:
        parts.extend(_rollout_lines(rollout))
    if endpoint and endpoint["variants"]:
        total = sum(variant["current_weight"] or 0 for variant in endpoint["variants"])
        table = Table(
            "VARIANT", "VERSION", "ROLE", "TRAFFIC", "WEIGHT", "DESIRED WEIGHT", "INSTANCES", box=None, pad_edge=False
        )
        for variant in endpoint["variants"]:
            table.add_row(
                clean(variant["variant_name"]),
                f"v{variant['version']}" if variant["version"] else "",
                clean(variant.get("role", "")),
                _percent(variant["current_weight"], total),
                f"{variant['current_weight']:g}" if variant["current_weight"] is not None else "",
                f"{variant['desired_weight']:g}" if variant["desired_weight"] is not None else "",
                str(variant["instance_count"] or ""),
            )
        parts.append(table)
    if status["alarms"]:
        table = Table("GATING ALARM", "STATE", "REASON", box=None, pad_edge=False)
        table.columns[-1].overflow = "fold"
        for alarm in status["alarms"]:
            table.add_row(clean(alarm["alarm_name"]), styled(alarm["state"]), clean(alarm["reason"]))
        parts.append(table)
    refused = status.get("refused")
    if refused:
        asked = f"{refused['model_name']} v{refused['version']}" if refused["version"] else refused["model_name"]
        parts.append(
            Text(
                clean(
                    f"Refused:   promotion of {asked} at {when(refused['rejected_at'])} "
                    f"(by {refused['requested_by']}): {refused['reason']}"
                ),
                style="red",
            )
        )
    if announcements:
        parts.append(Text("Last announcements:", style="bold"))
        parts.extend(Text(f"  {clean(line)}") for line in announcements[-5:])
    return Group(*parts)


def render_history(name: str, trail: dict[str, list[dict[str, Any]]]) -> None:
    out = console()
    if trail["model"]:
        out.print(Text(clean(f"Model {name}"), style="bold"))
        table = Table("AT", "VERSION", "ACTION", "FROM", "TO", "BY", "REASON", box=None, pad_edge=False)
        table.columns[-1].overflow = "fold"
        for entry in trail["model"]:
            table.add_row(
                when(entry["at"]),
                f"v{entry['version']}",
                clean(entry["action"]),
                styled(entry["from_status"]),
                styled(entry["to_status"]),
                clean(entry["actor"]),
                clean((entry["reason"] or "") + (f" [{entry['endpoint_name']}]" if entry.get("endpoint_name") else "")),
            )
        out.print(table)
    if trail["endpoint"]:
        out.print(Text(clean(f"Endpoint {name}"), style="bold"))
        table = Table("AT", "VERSION", "ACTION", "DETAIL", "BY", "ROLLOUT", box=None, pad_edge=False)
        table.columns[3].overflow = "fold"
        for entry in trail["endpoint"]:
            table.add_row(
                when(entry["at"]),
                clean(f"{entry['model_name']} v{entry['version']}" if entry["version"] else entry["model_name"]),
                clean(entry["action"]),
                clean(entry["detail"]),
                clean(entry["actor"]),
                clean(entry["rollout_id"]),
            )
        out.print(table)


def render_rollouts(endpoint_name: str, rollouts: list[dict[str, Any]]) -> None:
    table = Table("ROLLOUT", "VERSION", "REPLACING", "STRATEGY", "PHASE", "STARTED", "ENDED", "OUTCOME", box=None)
    table.columns[-1].overflow = "fold"
    for rollout in rollouts:
        table.add_row(
            clean(rollout["rollout_id"]),
            clean(f"{rollout['model_name']} v{rollout['version']}"),
            f"v{rollout['previous_version']}" if rollout["previous_version"] else "",
            clean(rollout["strategy"].get("type", "")),
            styled(rollout["phase"]),
            when(rollout["started_at"]),
            when(rollout["ended_at"]),
            clean(rollout["failure_reason"]),
        )
    console().print(Text(clean(f"Rollouts on {endpoint_name}, newest first"), style="bold"))
    console().print(table)


def capacity_text(capacity: dict[str, Any]) -> str:
    """The candidate's size and how it was chosen, and the limits the new live variant takes over."""
    count = capacity["candidate_instances"]
    text = f"candidate {capacity['instance_type']} x {count}"
    if capacity["sized_to_share"]:
        fleet = capacity["live_instances_at_start"]
        of = f" of {fleet} live" if fleet else ""
        text += f" (sized to its share{of}, headroom {capacity['headroom']:g})"
    else:
        text += " (fixed: the promotion's count, the live variant's, or a first deployment's)"
    limits = [
        f"{name} {capacity[key]}" for name, key in (("min", "min_capacity"), ("max", "max_capacity")) if capacity[key]
    ]
    if limits:
        text += f"; once live: {', '.join(limits)}"
    return text


def render_rollout(rollout: dict[str, Any]) -> None:
    out = console()
    out.print(
        Text.assemble(
            ("Rollout ", "bold"), (clean(rollout["rollout_id"]), "bold"), clean(f" on {rollout['endpoint_name']}")
        )
    )
    previous = f" replacing v{rollout['previous_version']}" if rollout["previous_version"] else " (first deployment)"
    out.print(clean(f"Version:   {rollout['model_name']} v{rollout['version']}{previous}"))
    out.print(Text.assemble("Outcome:   ", styled(rollout["phase"]), f"  {clean(rollout['failure_reason'])}"))
    plan = " -> ".join(
        f"{step['percent']}%" + (f" (bake {step['bake_seconds']}s)" if step.get("bake_seconds") else "")
        for step in rollout["plan"]
    )
    out.print(f"Plan:      {plan}, watch {rollout['post_deploy_watch_seconds']}s")
    out.print(clean(f"Requested: by {rollout['requested_by']} at {when(rollout['started_at'])}: {rollout['reason']}"))
    if rollout.get("capacity"):
        out.print(clean(f"Capacity:  {capacity_text(rollout['capacity'])}"))
    if rollout.get("cost"):
        out.print(clean(f"Cost:      {cost_text(rollout['cost'])}"))
    table = Table("AT", "ACTION", "DETAIL", "BY", box=None, pad_edge=False)
    table.columns[2].overflow = "fold"
    for entry in rollout["timeline"]:
        table.add_row(when(entry["at"]), clean(entry["action"]), clean(entry["detail"]), clean(entry["actor"]))
    out.print(Text("Timeline", style="bold"))
    out.print(table)
    incident = rollout["incident"]
    if incident:
        out.print(Text("Incident", style="bold red"))
        flip = incident["seconds_to_flip"]
        after = after_what(incident["trigger"], is_command=incident["alarm_name"] is None)
        out.print(
            clean(
                f"  trigger {incident['trigger']}: {incident['state_reason']}; "
                f"traffic back on v{incident['restored_version']}"
                f" at {when(incident['flipped_at'])}" + (f" ({flip:.1f}s after {after})" if flip is not None else "")
            )
        )
        out.print(
            clean(
                f"  weights before: {_weights(incident['weights_before'])}; "
                f"after: {_weights(incident['weights_after'])}"
            )
        )


def _weights(weights: dict[str, float]) -> str:
    """{"churn-v4": 0.9, "churn-v5": 0.1} -> "churn-v4 90%, churn-v5 10%"."""
    total = sum(weights.values())
    return ", ".join(f"{name} {_percent(weight, total)}" for name, weight in weights.items()) or "none"


def render_rejections(rejections: list[dict[str, Any]]) -> None:
    table = Table("AT", "MODEL", "WHAT", "CODE", "REASON", box=None, pad_edge=False)
    table.columns[-1].overflow = "fold"
    for rejection in rejections:
        if rejection.get("kind") == "promotion":
            version = f" v{rejection['version']}" if rejection["version"] else ""
            what = f"promotion{version} to {rejection['endpoint_name']} by {rejection['requested_by']}"
        else:
            what = rejection["artifact"]["key"]
        table.add_row(
            when(rejection["rejected_at"]),
            clean(rejection["model_name"]),
            clean(what),
            clean(rejection["code"]),
            clean(rejection["reason"]),
        )
    console().print(table)
