"""Shepherd's answer to a command the CLI sent: heard on the temporary subscription, or read from the
records the functions write when the announcement was missed."""

from __future__ import annotations

import time
from typing import Any

from shepherd.contracts import (
    ModelPromotionRequested,
    ModelRollbackRequested,
    ModelRolloutResumeRequested,
    ModelVersionApprovalRequested,
)
from shepherd_cli.bus_commands import requested_rollout_id
from shepherd_cli.errors import CliError
from shepherd_cli.operations import rollout_summary
from shepherd_cli.subscription import Subscription
from shepherd_cli.target import Target

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
        summary = rollout_summary(stored)
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
