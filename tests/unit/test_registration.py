"""Registration rules, on in-memory fakes: what becomes a version, what is rejected, what is ignored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shepherd.contracts import ModelArtifactIgnored, ModelArtifactRejected, ModelVersionRegistered
from shepherd.registry.model import ArtifactRef, VersionStatus
from shepherd.registry.registration import ArtifactUploaded, RegistrationService
from tests.fakes import FakeClock, InMemoryArtifactStore, InMemoryRegistry, RecordingPublisher

BUCKET = "acme-model-artifacts"


@pytest.fixture
def world() -> tuple[RegistrationService, InMemoryArtifactStore, InMemoryRegistry, RecordingPublisher]:
    store, registry, events = InMemoryArtifactStore(), InMemoryRegistry(), RecordingPublisher()
    return RegistrationService(store, registry, events, FakeClock(), BUCKET), store, registry, events


def upload(key: str, version_id: str = "v1", event_id: str = "evt-1") -> ArtifactUploaded:
    return ArtifactUploaded(
        artifact=ArtifactRef(bucket=BUCKET, key=key, s3_version_id=version_id),
        uploaded_at=datetime(2026, 11, 20, 9, 14, 3, tzinfo=UTC),
        uploaded_by="123456789012",
        event_id=event_id,
    )


def test_an_upload_becomes_version_1_with_manifest_metadata_and_lineage(world):
    service, store, registry, events = world
    given = upload("models/churn/2026-11-20/model.tar.gz")
    store.put(given.artifact, size=4821, metadata={"team": "growth"})
    store.manifests[(BUCKET, "models/churn/2026-11-20/manifest.json")] = json.dumps(
        {
            "framework": "xgboost",
            "metrics": {"auc": 0.91},
            "training_data": {"uri": "s3://data/churn", "version": "7"},
            "source": {"repository": "git@example.com:ml/churn", "commit": "abc123"},
            "tags": {"owner": "growth"},
        }
    ).encode()

    outcome = service.handle_upload(given)

    assert outcome.result == "registered"
    version = registry.get_version("churn", 1)
    assert version is not None
    assert version.status is VersionStatus.REGISTERED
    assert (version.size, version.metadata, version.metrics) == (4821, {"team": "growth"}, {"auc": 0.91})
    assert version.lineage.training_data is not None and version.lineage.training_data.version == "7"
    assert version.uploaded_by == "123456789012"
    [announcement] = events.of_type(ModelVersionRegistered)
    assert (announcement.model_name, announcement.version, announcement.metrics) == ("churn", 1, {"auc": 0.91})
    assert announcement.artifact_uri == f"s3://{BUCKET}/models/churn/2026-11-20/model.tar.gz"
    assert [entry.to_status for entry in registry.model_audit_trail("churn")] == [VersionStatus.REGISTERED]


def test_versions_are_numbered_per_model(world):
    service, store, registry, _ = world
    for index, key in enumerate(["models/a/1/model.tar.gz", "models/b/1/model.tar.gz", "models/a/2/model.tar.gz"]):
        given = upload(key, version_id=f"v{index}")
        store.put(given.artifact)
        service.handle_upload(given)
    assert sorted(registry.versions) == [("a", 1), ("a", 2), ("b", 1)]


def test_a_duplicate_delivery_registers_nothing_new_and_reannounces(world):
    service, store, registry, events = world
    given = upload("models/churn/model.tar.gz")
    store.put(given.artifact)

    results = [service.handle_upload(given).result for _ in range(3)]

    assert results == ["registered", "duplicate", "duplicate"]
    assert list(registry.versions) == [("churn", 1)]
    assert {a.version for a in events.of_type(ModelVersionRegistered)} == {1}


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("manifests/churn/model.tar.gz", "is outside models/"),
        ("models/churn/v1/model.zip", "the file name is 'model.zip', not 'model.tar.gz'"),
        ("models/churn/v1/other-model.tar.gz", "the file name is 'other-model.tar.gz'"),
        ("model.tar.gz", "is at the bucket root"),
        ("README", "is at the bucket root"),
    ],
)
def test_keys_that_are_not_artifacts_are_ignored_and_recorded_with_their_reason(world, key, says):
    service, store, registry, events = world
    given = upload(key)
    store.put(given.artifact)

    assert service.handle_upload(given).result == "ignored"

    assert not registry.versions and store.calls == []  # judged by its key: no AWS call
    [rejection] = registry.rejections.values()
    assert rejection.code == "IGNORED" and says in rejection.reason and rejection.artifact.key == key
    [announced] = events.of_type(ModelArtifactIgnored)
    assert (announced.key, announced.bucket, announced.s3_version_id) == (key, BUCKET, "v1")
    assert announced.reason == rejection.reason and announced.at == rejection.rejected_at


@pytest.mark.parametrize("key", ["models/churn/v1/manifest.json", "models/churn/v1/"])
def test_files_expected_beside_artifacts_are_ignored_without_a_record(world, key):
    service, store, registry, events = world
    given = upload(key)
    store.put(given.artifact)
    assert service.handle_upload(given).result == "ignored"
    assert not registry.versions and not registry.rejections and not events.published


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty (0 bytes)"),
        (b"not a model at all", "is not gzip-compressed: it starts with 6e 6f, not 1f 8b"),
        (b"PK\x03\x04zip", "it starts with 50 4b"),
    ],
)
def test_an_artifact_that_is_empty_or_not_gzip_is_rejected_after_reading_two_bytes(world, content, says):
    service, store, registry, events = world
    given = upload("models/churn/v1/model.tar.gz")
    store.put(given.artifact, content=content)

    assert service.handle_upload(given).result == "rejected"

    assert not registry.versions
    [rejection] = registry.rejections.values()
    assert rejection.code == "INVALID_ARTIFACT" and says in rejection.reason
    [announced] = events.of_type(ModelArtifactRejected)
    assert announced.code == "INVALID_ARTIFACT" and announced.model_name == "churn"
    # An empty object is told by HeadObject; otherwise one ranged GET of 2 bytes, never the artifact.
    reads = [call for call in store.calls if call.startswith("first bytes")]
    assert len(reads) == (0 if content == b"" else 1)


def test_a_redelivery_that_finds_its_artifact_deleted_between_its_two_reads_is_the_registered_version(world):
    service, store, registry, events = world
    given = upload("models/churn/v1/model.tar.gz")
    store.put(given.artifact)
    assert service.handle_upload(given).result == "registered"
    published = len(events.published)
    # The object is deleted after the redelivery's HeadObject and before its 2-byte GET.
    head = store.head

    def head_then_delete(artifact):
        facts = head(artifact)
        store.objects.pop((artifact.bucket, artifact.key, artifact.s3_version_id))
        return facts

    store.head = head_then_delete

    outcome = service.handle_upload(given)

    assert outcome.result == "duplicate" and outcome.version is not None and outcome.version.version == 1
    assert not registry.rejections
    assert len(events.published) == published + 1  # announced again: delivery is at least once


@pytest.mark.parametrize(
    ("key", "code", "says"),
    [
        ("models/Bad_Name/v1/model.tar.gz", "INVALID_MODEL_NAME", "must match"),
        ("models/-churn/model.tar.gz", "INVALID_MODEL_NAME", "must match"),
        ("models/" + "a" * 64 + "/model.tar.gz", "INVALID_MODEL_NAME", "must match"),
        # The pattern alone lets hyphens run on: SageMaker's rule is the pattern and 63 characters.
        ("models/" + "a-" * 40 + "a/model.tar.gz", "INVALID_MODEL_NAME", "at most 63 characters"),
        ("models/churn/../other/model.tar.gz", "INVALID_KEY", "'..'"),
        ("models/churn/./model.tar.gz", "INVALID_KEY", "'.'"),
        ("models/churn//model.tar.gz", "INVALID_KEY", "empty path segment"),
        ("models//model.tar.gz", "INVALID_KEY", "empty path segment"),
        ("models/model.tar.gz", "INVALID_KEY", "no model name"),
    ],
)
def test_invalid_keys_are_rejected_with_a_reason_and_no_version(world, key, code, says):
    service, store, registry, events = world
    given = upload(key)
    store.put(given.artifact)

    outcome = service.handle_upload(given)

    assert outcome.result == "rejected"
    rejection = registry.get_rejection(BUCKET, key)
    assert rejection is not None and rejection.code == code and says in rejection.reason
    assert not registry.versions
    [announcement] = events.of_type(ModelArtifactRejected)
    assert (announcement.bucket, announcement.key, announcement.reason) == (BUCKET, key, rejection.reason)
    assert store.calls == []  # judged on the key alone, before any S3 call


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        (b"{not json", "Invalid JSON"),
        (b'{"metrics": {"auc": "high"}}', "metrics.auc"),
        (b'{"framework": "xgboost", "colour": "blue"}', "colour: Extra inputs are not permitted"),
        (b'{"parent_version": 0}', "parent_version"),
        (b'{"parent_version": 5}', "parent_version 5 does not exist before version 1"),
        (b"[]", "Input should be an object"),
        (b"", "Invalid JSON"),
    ],
)
def test_a_bad_manifest_rejects_the_upload(world, manifest, says):
    service, store, registry, events = world
    given = upload("models/churn/v1/model.tar.gz")
    store.put(given.artifact)
    store.manifests[(BUCKET, "models/churn/v1/manifest.json")] = manifest

    assert service.handle_upload(given).result == "rejected"

    rejection = registry.get_rejection(BUCKET, given.artifact.key)
    assert rejection is not None and rejection.code == "INVALID_MANIFEST" and says in rejection.reason
    assert rejection.model_name == "churn"
    assert not registry.versions
    assert len(events.of_type(ModelArtifactRejected)) == 1


def test_a_parent_version_that_exists_is_kept_as_lineage(world):
    service, store, registry, _ = world
    for number in (1, 2):
        given = upload(f"models/churn/v{number}/model.tar.gz", version_id=f"s3v{number}")
        store.put(given.artifact)
        if number == 2:
            store.manifests[(BUCKET, "models/churn/v2/manifest.json")] = b'{"parent_version": 1}'
        service.handle_upload(given)
    second = registry.get_version("churn", 2)
    assert second is not None and second.lineage.parent_version == 1


def test_an_artifact_deleted_before_the_event_arrives_is_rejected(world):
    service, _, registry, events = world
    given = upload("models/churn/v1/model.tar.gz")  # never put in the store

    assert service.handle_upload(given).result == "rejected"

    rejection = registry.get_rejection(BUCKET, given.artifact.key)
    assert rejection is not None and rejection.code == "ARTIFACT_MISSING"
    assert events.of_type(ModelArtifactRejected)


def test_a_redelivery_after_the_artifact_was_deleted_stays_registered(world):
    service, store, registry, _ = world
    given = upload("models/churn/v1/model.tar.gz")
    store.put(given.artifact)
    service.handle_upload(given)
    store.objects.clear()

    assert service.handle_upload(given).result == "duplicate"
    assert registry.get_rejection(BUCKET, given.artifact.key) is None


def test_an_upload_to_another_bucket_is_ignored_before_any_call(world):
    service, store, registry, events = world
    given = upload("models/churn/2026-11-20/model.tar.gz")
    elsewhere = ArtifactUploaded(
        artifact=given.artifact.model_copy(update={"bucket": "someone-elses-bucket"}),
        uploaded_at=given.uploaded_at,
        uploaded_by=given.uploaded_by,
        event_id=given.event_id,
    )
    store.put(elsewhere.artifact)

    assert service.handle_upload(elsewhere).result == "ignored"
    assert store.calls == []
    assert registry.versions == {} and events.published == []
