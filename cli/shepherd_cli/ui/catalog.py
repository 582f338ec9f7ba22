"""The model page and the version page: what a version is (artifact, checksum, manifest, image), who
approved it, where and when it took traffic, and its rollouts.

Everything comes from records and their fields: the version record, the model's audit trail (each
status change names its endpoint and rollout) and the endpoints' audit trails (each weight request
says the candidate's percent), never from the words of an audit entry.
"""

from __future__ import annotations

from typing import Any

from shepherd.registry.images import digest_of
from shepherd.registry.model import AuditEntry, ModelVersion, VersionStatus
from shepherd_cli import operations
from shepherd_cli.target import Target
from shepherd_cli.ui.paging import paginate
from shepherd_cli.ui.served import ServedPeriod, served_periods

VERSIONS_PAGE_SIZE = 20
_DECISIONS = (VersionStatus.APPROVED, VersionStatus.REJECTED)


def model_page(target: Target, model_name: str, page: int = 1) -> dict[str, Any]:
    """A model's versions, newest first, a page at a time, each with the endpoints it serves now, and
    the manifest metrics to chart across all of them."""
    versions = operations.list_versions(target, model_name)
    serving = serving_now(target, model_name)
    rows = [version_row(version, serving.get(version.version, [])) for version in versions]
    return {
        "model_name": model_name,
        **paginate(rows, page, VERSIONS_PAGE_SIZE, "versions"),
        "metric_names": sorted({name for version in versions for name in version.metrics}),
        # every version's metrics for the chart, small: a number per metric per version
        "chart": [
            {"version": version.version, "metrics": version.metrics, "serving": bool(serving.get(version.version))}
            for version in versions
        ],
    }


def version_page(target: Target, model_name: str, version_number: int) -> dict[str, Any]:
    version = operations.get_version(target, model_name, version_number)
    trail = sorted(
        (entry for entry in target.registry().model_audit_trail(model_name) if entry.version == version_number),
        key=lambda entry: (entry.at, entry.from_status is not None),  # registered first within a second
    )
    endpoints = list(dict.fromkeys(entry.endpoint_name for entry in trail if entry.endpoint_name))
    served = [period for endpoint in endpoints for period in _served(target, endpoint)]
    rollouts = _rollouts(target, model_name, version_number, endpoints)
    return {
        **_identity(version),
        "approvals": [_audit_row(entry) for entry in trail if entry.to_status in _DECISIONS],
        "served": [
            _period_row(period)
            for period in served
            if period.model_name == model_name and period.version == version_number
        ],
        "status_history": [_audit_row(entry) for entry in trail],
        "rollouts": rollouts,
    }


def version_row(version: ModelVersion, serving_on: list[str]) -> dict[str, Any]:
    """A version as the models page and the model page list it; ``serving_on``: the endpoints whose
    traffic it takes now (what "live" means to whoever reads the page)."""
    lineage = version.lineage
    return {
        "version": version.version,
        "status": version.status.value,
        "live": bool(serving_on),
        "serving_on": serving_on,
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


def _identity(version: ModelVersion) -> dict[str, Any]:
    """What the version is: the exact S3 object, its checksum, and what its manifest said."""
    lineage = version.lineage
    return {
        "model_name": version.model_name,
        "version": version.version,
        "status": version.status.value,
        "artifact": {
            "uri": version.artifact.uri,
            "s3_version_id": version.artifact.s3_version_id,
            "etag": version.etag,
            "size": version.size,
        },
        "checksum": version.checksum.model_dump(mode="json") if version.checksum else None,
        "manifest": {
            "description": version.description,
            "framework": version.framework,
            "framework_version": version.framework_version,
            "metrics": version.metrics,
            "tags": version.tags,
            "manifest_version_id": version.manifest_version_id,
            "parent_version": lineage.parent_version,
            "training_data": lineage.training_data.model_dump(mode="json") if lineage.training_data else None,
            "source": lineage.source.model_dump(mode="json") if lineage.source else None,
        },
        "inference_image": version.inference_image,
        "image_digest": digest_of(version.inference_image) if version.inference_image else None,
        "approved_artifact": version.approved_artifact.model_dump(mode="json") | {"uri": version.approved_artifact.uri}
        if version.approved_artifact
        else None,
        "metadata": version.metadata,
        "uploaded_at": version.uploaded_at.isoformat(),
        "uploaded_by": version.uploaded_by,
        "decided_by": version.decided_by,
        "decision_reason": version.decision_reason,
        "rolled_back_by": version.rolled_back_by,
        "rollback_reason": version.rollback_reason,
    }


def _served(target: Target, endpoint_name: str) -> list[ServedPeriod]:
    store = target.rollouts()
    replaced = {
        stored.rollout.rollout_id: (stored.rollout.previous_model_name or stored.rollout.model_name, previous)
        for stored in store.rollouts_of(endpoint_name)
        if (previous := stored.rollout.previous_version) is not None
    }
    return served_periods(store.endpoint_audit_trail(endpoint_name), replaced)


def serving_now(target: Target, model_name: str) -> dict[int, list[str]]:
    """version -> the endpoints whose traffic it takes now (their last served period is still open)."""
    serving: dict[int, list[str]] = {}
    for endpoint in operations.list_endpoints(target):
        periods = _served(target, endpoint)
        if periods and periods[-1].until is None and periods[-1].model_name == model_name:
            serving.setdefault(periods[-1].version, []).append(endpoint)
    return serving


def _rollouts(target: Target, model_name: str, version: int, endpoints: list[str]) -> list[dict[str, Any]]:
    """The rollouts of this version (newest first) on every endpoint its audit trail names."""
    store, rows = target.rollouts(), []
    for endpoint in endpoints:
        for stored in store.rollouts_of(endpoint):
            rollout = stored.rollout
            if rollout.model_name == model_name and rollout.version == version:
                rows.append(
                    {
                        "endpoint_name": endpoint,
                        "rollout_id": rollout.rollout_id,
                        "phase": rollout.phase.value,
                        "previous_version": rollout.previous_version,
                        "started_at": rollout.started_at.isoformat(),
                        "ended_at": rollout.ended_at.isoformat() if rollout.ended_at else None,
                        "requested_by": stored.request.requested_by,
                        "failure_reason": rollout.failure_reason,
                    }
                )
    return sorted(rows, key=lambda row: row["started_at"], reverse=True)


def _audit_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "from_status": entry.from_status.value if entry.from_status else None,
        "to_status": entry.to_status.value,
        "actor": entry.actor,
        "reason": entry.reason,
        "endpoint_name": entry.endpoint_name,
        "rollout_id": entry.rollout_id,
    }


def _period_row(period: ServedPeriod) -> dict[str, Any]:
    return {
        "endpoint_name": period.endpoint_name,
        "rollout_id": period.rollout_id,
        "since": period.since.isoformat(),
        "until": period.until.isoformat() if period.until else None,
    }
