"""Shepherd's announcements in words: one line for a person about each one."""

from __future__ import annotations

import json
from typing import Any

from shepherd_cli.safe_text import clean

# Announcements that answer a command by refusing it (exit 1 for the CLI).
REFUSALS = frozenset(
    {
        "Model Version Approval Refused",
        "Promotion Rejected",
        "Rollback Skipped",
        "Rollout Resume Refused",
        "Command Refused",
    }
)


def after_what(trigger: Any, *, is_command: bool) -> str:
    """What a rollback's flip is timed from, in words: the alarm, the canary judge's verdict or the request."""
    if trigger == "analysis":  # RollbackCause's ANALYSIS_TRIGGER (not imported: the CLI's cold start)
        return "the canary judge's verdict"
    return f"{trigger}'s request" if is_command else "the alarm"


def _plan(plan: list[dict[str, Any]]) -> str:
    return " -> ".join(
        f"{step['percent']}%" + (f" (bake {step['bake_seconds']}s)" if step.get("bake_seconds") else "")
        for step in plan
    )


def describe_announcement(detail_type: str, detail: dict[str, Any]) -> str:
    """One line for a person about one announcement: its names and reasons are not trusted (safe_text.py)."""
    return clean(_describe(detail_type, detail))


def _describe(detail_type: str, detail: dict[str, Any]) -> str:  # noqa: C901 - a branch per contract
    model = f"{detail.get('model_name')} v{detail.get('version')}"
    endpoint = detail.get("endpoint_name")
    if detail_type == "Model Version Registered":
        metrics = ", ".join(f"{name} {value:g}" for name, value in detail.get("metrics", {}).items())
        return f"{model} from {detail.get('key')}" + (f" ({metrics})" if metrics else "")
    if detail_type in ("Model Artifact Rejected", "Model Artifact Ignored"):
        return f"{detail.get('key')}: {detail.get('reason')}"
    if detail_type in ("Model Version Approved", "Model Version Rejected"):
        return f"{model} by {detail.get('requested_by')}: {detail.get('reason')}"
    if detail_type in ("Model Version Approval Refused", "Promotion Rejected", "Rollout Failed"):
        return f"{model}: {detail.get('reason')}"
    if detail_type == "Rollout Started":
        previous = detail.get("previous_version")
        replacing = f"replacing v{previous}" if previous else "first deployment"
        watch = detail.get("post_deploy_watch_seconds")
        return f"{model} -> {endpoint} ({replacing}): {_plan(detail.get('plan', []))}" + (
            f", watch {watch}s" if previous and watch else ""
        )
    if detail_type == "Rollout Traffic Shifted":
        return f"{model} on {endpoint}: {detail.get('from_percent')}% -> {detail.get('to_percent')}%"
    if detail_type == "Rollout Completed":
        until = detail.get("watch_until")
        return f"{model} serves 100% of {endpoint}" + (f"; previous variant kept until {until}" if until else "")
    if detail_type == "Model Version Retired":
        return f"{model} removed from {endpoint}"
    if detail_type == "Rollout Rolled Back":
        flip = detail.get("seconds_to_flip")
        after = after_what(detail.get("trigger"), is_command=bool(detail.get("command_id")))
        return (
            f"{endpoint}: v{detail.get('version')} rolled back to v{detail.get('restored_version')} "
            f"(trigger {detail.get('trigger')}"
            # Handlers run on real time while alarms carry simulated time in local mode: a negative flip
            # time says nothing, so it is left out.
            + (f", traffic flipped {flip:.1f}s after {after}" if isinstance(flip, int | float) and flip >= 0 else "")
            + f"): {detail.get('reason')}"
        )
    if detail_type == "Command Refused":
        sender = f"{detail.get('command')} from {detail.get('source')} (event {detail.get('command_id')})"
        return f"{sender}: {detail.get('reason')}"
    if detail_type == "Canary Analysis Completed":
        failing = [m["metric"] for m in detail.get("metrics", []) if m.get("outcome") == "FAIL"]
        return (
            f"{model} at {detail.get('percent')}% on {endpoint}: {detail.get('outcome')} -> {detail.get('decision')}"
            + (" (advisory: not acted on)" if detail.get("advisory") else "")
            + (f" (failing: {', '.join(failing)})" if failing else "")
        )
    if detail_type == "Rollout Held":
        return (
            f"{model} held at {detail.get('percent')}% on {endpoint} since {detail.get('held_since')} "
            f"(announcement {detail.get('announcement')}): {detail.get('reason')}; "
            f"{detail.get('on_timeout')} at {detail.get('deadline')}"
            + (f"; {detail.get('waiting')}" if detail.get("waiting") else "")
        )
    if detail_type == "Gating Alarms Missing":
        return f"{model} on {endpoint}: {detail.get('reason')}"
    if detail_type == "Rollout Resumed":
        return f"{model} on {endpoint} resumed at {detail.get('percent')}% by {detail.get('requested_by')}"
    if detail_type == "Rollout Resume Refused":
        return f"{endpoint} rollout {detail.get('rollout_id')}: {detail.get('reason')}"
    if detail_type == "Rollback Skipped":
        return f"{endpoint} (trigger {detail.get('trigger')}): {detail.get('reason')}"
    return json.dumps(detail, sort_keys=True)
