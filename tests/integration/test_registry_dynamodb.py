"""The DynamoDB registry on moto: atomic gapless numbering, exactly-once claims, reads without scans."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from shepherd.adapters.dynamodb import DynamoRegistry, cancellation_reasons
from shepherd.kernel.errors import ConflictError
from shepherd.registry.errors import ArtifactAlreadyRegistered, VersionNumberTaken
from shepherd.registry.model import ArtifactRef, AuditEntry, Lineage, ModelVersion, VersionStatus
from shepherd.registry.registration import ArtifactUploaded, RegistrationService
from tests.fakes import FakeClock, InMemoryArtifactStore, InMemoryRegistry, RecordingPublisher

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def new_version(model_name: str, artifact: ArtifactRef, number: int, event_id: str = "evt") -> ModelVersion:
    return ModelVersion(
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


def registered_audit(model_name: str, number: int, event_id: str = "evt") -> AuditEntry:
    return AuditEntry(
        model_name=model_name,
        version=number,
        action="registered",
        from_status=None,
        to_status=VersionStatus.REGISTERED,
        actor=None,
        at=AT,
        event_id=f"{event_id}-{number}",
    )


def artifact(n: int, model: str = "churn") -> ArtifactRef:
    return ArtifactRef(bucket="b", key=f"models/{model}/{n}/model.tar.gz", s3_version_id=f"v{n}")


@pytest.fixture(params=["dynamodb", "in-memory"])
def registry(request, world):
    """Every test here runs against the adapter and the fake: the fake obeys the same contract."""
    if request.param == "in-memory":
        return InMemoryRegistry()
    return DynamoRegistry(boto3.client("dynamodb"), world.table, sleep=lambda _: None)


@pytest.fixture
def store() -> InMemoryArtifactStore:
    return InMemoryArtifactStore()


def register(registry, n: int, model: str = "churn", store: InMemoryArtifactStore | None = None):
    """An upload of artifact n through the registration service, on the registry under test."""
    store = store or InMemoryArtifactStore()
    ref = artifact(n, model)
    store.put(ref)
    service = RegistrationService(store, registry, RecordingPublisher(), FakeClock(), "b")
    outcome = service.handle_upload(ArtifactUploaded(ref, AT, None, f"evt-{n}"))
    assert outcome.version is not None, outcome
    return outcome.version, outcome.result == "registered"


def test_versions_are_gapless_per_model(registry):
    assert [register(registry, n)[0].version for n in range(1, 4)] == [1, 2, 3]
    assert register(registry, 9, model="other")[0].version == 1


def test_the_same_artifact_twice_is_one_version(registry):
    first, created = register(registry, 1)
    again, created_again = register(registry, 1)  # a new container: its guess is stale
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


# --- the write path: the domain decides the version, the registry writes it or says why not -----------------


def test_a_taken_version_number_is_refused_with_the_winners_number(registry):
    register(registry, 1)
    register(registry, 2)
    loser = artifact(3)

    with pytest.raises(VersionNumberTaken) as taken:
        registry.add_version(new_version("churn", loser, 2), registered_audit("churn", 2), expected_latest=1)

    assert taken.value.latest == 2
    assert registry.find_registration(loser) is None
    assert [v.version for v in registry.list_versions("churn", 10, None).items] == [2, 1]


def test_an_artifact_already_claimed_is_refused_with_its_version(registry):
    first, _ = register(registry, 1)

    with pytest.raises(ArtifactAlreadyRegistered) as already:
        registry.add_version(new_version("churn", artifact(1), 2), registered_audit("churn", 2), expected_latest=1)

    assert already.value.version == first
    assert registry.latest_version("churn", fresh=True) == 1


def test_a_claim_and_a_counter_lost_together_is_read_as_the_claim(registry):
    # Both conditions fail (the artifact is registered and the counter moved): the claim decides, by name.
    first, _ = register(registry, 1)
    register(registry, 2)

    with pytest.raises(ArtifactAlreadyRegistered) as already:
        registry.add_version(new_version("churn", artifact(1), 2), registered_audit("churn", 2), expected_latest=0)

    assert already.value.version == first


def test_cancellation_reasons_are_read_by_item_name():
    cancelled = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [
                {"Code": "None"},
                {"Code": "ConditionalCheckFailed", "Item": {"latest_version": {"N": "7"}}},
            ],
        },
        "TransactWriteItems",
    )

    reasons = cancellation_reasons(cancelled, ("claim", "counter"))

    assert not reasons["claim"].lost and reasons["claim"].item is None
    assert reasons["counter"].lost and reasons["counter"].item == {"latest_version": 7}
    with pytest.raises(ClientError):  # a response that does not match the items sent is not guessed at
        cancellation_reasons(cancelled, ("claim", "counter", "audit"))
