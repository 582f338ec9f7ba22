"""What the registry domain needs from the outside world. Adapters implement these; tests use fakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from msgspec import Struct

from shepherd.contracts import Announcement
from shepherd.registry.model import (
    ApprovedArtifact,
    ArtifactFacts,
    ArtifactRef,
    AuditEntry,
    ModelSummary,
    ModelVersion,
    Rejection,
    VersionStatus,
)

T = TypeVar("T")
Clock = Callable[[], datetime]


class Page(Struct, Generic[T], frozen=True):
    """One page of a listing, and the cursor of the next one (None: the last page)."""

    items: list[T]
    next_cursor: str | None  # opaque; pass it back to get the next page


class StoredManifest(Struct, frozen=True):
    """A manifest's bytes as S3 returned them, with the object version they came from."""

    body: bytes  # at most max_bytes + 1 of them: enough to tell that a manifest is too large
    version_id: str  # S3's "null" in an unversioned bucket


class ArtifactStore(Protocol):
    def head(self, artifact: ArtifactRef) -> ArtifactFacts:
        """Facts about that exact object version; raises ArtifactMissing if it is gone."""
        ...

    def read_manifest(self, bucket: str, key: str, max_bytes: int, as_of: datetime) -> StoredManifest | None:
        """The manifest that was current at `as_of` (to the second), or None if there was none then."""
        ...

    def first_bytes(self, artifact: ArtifactRef, count: int) -> bytes:
        """The object's first `count` bytes (one ranged GET, never the whole object); raises
        ArtifactMissing if it is gone."""
        ...


class ArtifactVault(Protocol):
    def secure(self, version: ModelVersion) -> ApprovedArtifact:
        """Copy the version's exact registered S3 object version to its approved location (which only
        Shepherd may write), checked against what was registered, without reading it in the function.
        Raises ArtifactNotApprovable (gone, changed since registration, too large to copy)."""
        ...


class Registry(Protocol):
    def latest_version(self, model_name: str, fresh: bool) -> int:
        """The model's latest version number, 0 for a new model. With fresh=False it may be a guess
        (what this container last wrote), which `add_version` then checks."""
        ...

    def add_version(self, version: ModelVersion, audit: AuditEntry, expected_latest: int) -> None:
        """Write the version, its artifact claim and audit entry, and move the model's counter from
        `expected_latest` to `version.version`, all or nothing.

        Raises VersionNumberTaken if the counter is not `expected_latest`, and ArtifactAlreadyRegistered
        (with the registered version) if the artifact version is already claimed.
        """
        ...

    def find_registration(self, artifact: ArtifactRef) -> ModelVersion | None: ...

    def record_rejection(self, rejection: Rejection) -> None: ...

    def get_version(self, model_name: str, version: int) -> ModelVersion | None: ...

    def transition(
        self,
        model_name: str,
        version: int,
        expected: VersionStatus,
        audit: AuditEntry,
        changes: Mapping[str, Any],
    ) -> None:
        """Set status to audit.to_status (plus `changes`) if it is `expected`; else raise ConflictError."""
        ...

    def record_approved_artifact(self, model_name: str, version: int, approved: ApprovedArtifact) -> ModelVersion:
        """Record the version's approved copy unless one is already recorded; the version as stored."""
        ...

    def list_models(self, limit: int, cursor: str | None) -> Page[ModelSummary]: ...

    def list_versions(self, model_name: str, limit: int, cursor: str | None) -> Page[ModelVersion]: ...

    def get_rejection(self, bucket: str, key: str) -> Rejection | None: ...

    def model_audit_trail(self, model_name: str) -> list[AuditEntry]: ...


class EventPublisher(Protocol):
    def publish(self, *announcements: Announcement) -> None: ...
