"""An endpoint's status as `shepherd status` shows it: live and candidate versions, variant weights
(SageMaker's describe), the rollout's phase, step and timing, its gating alarms (CloudWatch's), and
the last refused promotion."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shepherd.rollouts.ports import StoredRollout
from shepherd.rollouts.record import Phase
from shepherd.rollouts.variant_roles import variant_role
from shepherd_cli.errors import CliError
from shepherd_cli.operations import last_refusal, rollout_summary
from shepherd_cli.serving import serving_versions, standby_versions
from shepherd_cli.target import Target

_VARIANT_VERSION = re.compile(r"-v(\d+)$")


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
                    "desired_instance_count": variant.get("DesiredInstanceCount"),
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
        "rollout": {**rollout_summary(stored), **_timing(stored, now)} if stored else None,
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
