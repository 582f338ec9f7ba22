"""The DynamoDB registry on moto: atomic gapless numbering, exactly-once claims, reads without scans."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from shepherd.adapters.dynamodb import DynamoRegistry
from shepherd.registry.errors import ConflictError
from shepherd.registry.model import ArtifactRef, AuditEntry, Lineage, ModelVersion, VersionStatus
from tests.fakes import InMemoryRegistry

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def builder(model_name: str, artifact: ArtifactRef, event_id: str = "evt"):
    def build(number: int) -> tuple[ModelVersion, AuditEntry]:
        version = ModelVersion(
            model_name=model_name,
            version=number,
            artifact=artifact,
            etag="e",
            size=1,
            checksum=None,
            metadata={},
            metrics={"auc": 0.5},
            tags={},
            lineage=Lineage(),
            status=VersionStatus.REGISTERED,
            created_at=AT,
            uploaded_at=AT,
            uploaded_by=None,
            registered_by_event=event_id,
        )
        audit = AuditEntry(
            model_name=model_name,
            version=number,
            action="registered",
            from_status=None,
            to_status=VersionStatus.REGISTERED,
            actor=None,
            at=AT,
            event_id=f"{event_id}-{number}",
        )
        return version, audit

    return build


def artifact(n: int, model: str = "churn") -> ArtifactRef:
    return ArtifactRef(bucket="b", key=f"models/{model}/{n}/model.tar.gz", s3_version_id=f"v{n}")


@pytest.fixture(params=["dynamodb", "in-memory"])
def registry(request, world):
    """Every test here runs against the adapter and the fake: the fake obeys the same contract."""
    if request.param == "in-memory":
        return InMemoryRegistry()
    return DynamoRegistry(boto3.client("dynamodb"), world.table, sleep=lambda _: None)


def register(registry, n: int, model: str = "churn") -> tuple[ModelVersion, bool]:
    ref = artifact(n, model)
    return registry.register_version(model, ref, builder(model, ref, f"evt-{n}"))


def test_versions_are_gapless_per_model(registry):
    assert [register(registry, n)[0].version for n in range(1, 4)] == [1, 2, 3]
    assert register(registry, 9, model="other")[0].version == 1


def test_the_same_artifact_twice_is_one_version(registry):
    first, created = register(registry, 1)
    again, created_again = register(registry, 1)
    assert (created, created_again) == (True, False)
    assert again == first
    assert registry.find_registration(artifact(1)) == first


def test_twenty_parallel_uploads_get_versions_1_to_20(registry):
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda n: register(registry, n), range(1, 21)))
    assert sorted(version.version for version, _ in results) == list(range(1, 21))
    assert len({version.artifact for version, _ in results}) == 20


def test_the_same_artifact_delivered_concurrently_is_one_version(registry):
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: register(registry, 1), range(8)))
    assert {version.version for version, _ in results} == {1}
    assert sum(created for _, created in results) == 1


def test_a_transition_is_conditional_on_the_current_status(registry):
    register(registry, 1)
    audit = AuditEntry(
        model_name="churn",
        version=1,
        action="approved",
        from_status=VersionStatus.REGISTERED,
        to_status=VersionStatus.APPROVED,
        actor="alice",
        at=AT + timedelta(seconds=1),
        event_id="cmd",
    )
    registry.transition("churn", 1, VersionStatus.REGISTERED, audit, {"decided_by": "alice"})
    with pytest.raises(ConflictError):
        registry.transition("churn", 1, VersionStatus.REGISTERED, audit, {"decided_by": "bob"})
    version = registry.get_version("churn", 1)
    assert version.status is VersionStatus.APPROVED and version.decided_by == "alice"
    assert [entry.to_status for entry in registry.model_audit_trail("churn")] == [
        VersionStatus.REGISTERED,
        VersionStatus.APPROVED,
    ]


def test_versions_are_listed_newest_first_in_pages(registry):
    for n in range(1, 6):
        register(registry, n)
    first = registry.list_versions("churn", limit=2, cursor=None)
    second = registry.list_versions("churn", limit=2, cursor=first.next_cursor)
    third = registry.list_versions("churn", limit=2, cursor=second.next_cursor)
    assert [[v.version for v in page.items] for page in (first, second, third)] == [[5, 4], [3, 2], [1]]
    assert third.next_cursor is None or registry.list_versions("churn", 2, third.next_cursor).items == []


def test_models_are_listed_with_their_latest_version(registry):
    register(registry, 1, model="churn")
    register(registry, 2, model="churn")
    register(registry, 3, model="fraud")
    page = registry.list_models(limit=10, cursor=None)
    assert [(m.model_name, m.latest_version) for m in page.items] == [("churn", 2), ("fraud", 1)]
