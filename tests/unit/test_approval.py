"""Approval decisions, on in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shepherd.contracts import ModelVersionApprovalRefused, ModelVersionApproved, ModelVersionRejected
from shepherd.registry.approval import ApprovalDecision, ApprovalService
from shepherd.registry.model import ArtifactRef, VersionStatus
from shepherd.registry.registration import ArtifactUploaded, RegistrationService
from tests.fakes import FakeClock, InMemoryArtifactStore, InMemoryRegistry, InMemoryVault, RecordingPublisher


@pytest.fixture
def world() -> tuple[ApprovalService, InMemoryRegistry, RecordingPublisher]:
    store, registry, events, clock = InMemoryArtifactStore(), InMemoryRegistry(), RecordingPublisher(), FakeClock()
    artifact = ArtifactRef(bucket="b", key="models/churn/model.tar.gz", s3_version_id="v1")
    store.put(artifact)
    RegistrationService(store, registry, events, clock, "b").handle_upload(
        ArtifactUploaded(artifact, datetime(2026, 11, 20, tzinfo=UTC), "uploader", "upload-1")
    )
    events.published.clear()
    return ApprovalService(registry, events, clock, InMemoryVault()), registry, events


def decision(kind: str = "approved", event_id: str = "cmd-1", version: int = 1) -> ApprovalDecision:
    return ApprovalDecision("churn", version, kind, "alice@example.com", "offline eval passed", event_id)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "status", "announcement"),
    [
        ("approved", VersionStatus.APPROVED, ModelVersionApproved),
        ("rejected", VersionStatus.REJECTED, ModelVersionRejected),
    ],
)
def test_a_decision_moves_a_registered_version_and_is_audited(world, kind, status, announcement):
    service, registry, events = world

    assert service.decide(decision(kind)).result == kind

    version = registry.get_version("churn", 1)
    assert version is not None and version.status is status and version.decided_by == "alice@example.com"
    [published] = events.of_type(announcement)
    assert (published.model_name, published.version, published.requested_by) == ("churn", 1, "alice@example.com")
    trail = registry.model_audit_trail("churn")
    assert [(e.from_status, e.to_status, e.actor, e.event_id) for e in trail][-1] == (
        VersionStatus.REGISTERED,
        status,
        "alice@example.com",
        "cmd-1",
    )


def test_an_unknown_version_is_refused_with_a_reason(world):
    service, _, events = world
    outcome = service.decide(decision(version=9))
    assert outcome.result == "refused"
    [refusal] = events.of_type(ModelVersionApprovalRefused)
    assert refusal.reason == "churn has no version 9" and refusal.version == 9


def test_redeciding_a_decided_version_is_refused_and_changes_nothing(world):
    service, registry, events = world
    service.decide(decision("approved", event_id="cmd-1"))

    outcome = service.decide(decision("rejected", event_id="cmd-2"))

    assert outcome.result == "refused"
    assert "is APPROVED" in (outcome.reason or "")
    version = registry.get_version("churn", 1)
    assert version is not None and version.status is VersionStatus.APPROVED
    assert events.of_type(ModelVersionApprovalRefused)[0].current_status == "APPROVED"
    assert len(registry.model_audit_trail("churn")) == 2  # registered, approved


def test_the_same_command_delivered_twice_is_one_decision(world):
    service, registry, events = world
    assert [service.decide(decision()).result for _ in range(2)] == ["approved", "duplicate"]
    assert len(registry.model_audit_trail("churn")) == 2
    assert not events.of_type(ModelVersionApprovalRefused)


def approval_by(requested_by: str, kind: str = "approved", event_id: str = "cmd-1") -> ApprovalDecision:
    return ApprovalDecision("churn", 1, kind, requested_by, "looks good to me", event_id)  # type: ignore[arg-type]


def test_an_approval_naming_the_uploader_is_decided_like_any_other(world):
    # requested_by is what the sender wrote: the service does not pretend it identifies anyone
    # (the bus and bucket policies keep approvers from uploading; README, "Who may do what").
    service, registry, events = world

    assert service.decide(approval_by("uploader")).result == "approved"
    version = registry.get_version("churn", 1)
    assert version is not None and version.status is VersionStatus.APPROVED and version.decided_by == "uploader"
    assert not events.of_type(ModelVersionApprovalRefused)
