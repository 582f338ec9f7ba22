"""Domain errors. Adapters translate AWS failures into these, once; services decide what they mean."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shepherd.registry.model import ModelVersion


class ShepherdError(Exception):
    """Base of every error Shepherd raises on purpose."""


class ArtifactRejected(ShepherdError):
    """An upload that will not become a version: the reason is stored and announced."""

    def __init__(self, code: str, reason: str, model_name: str | None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.model_name = model_name


class ArtifactMissing(ShepherdError):
    """The artifact (or that version of it) no longer exists in S3."""


class ArtifactNotApprovable(ShepherdError):
    """The registered artifact cannot be copied as it was registered (gone, changed, too large)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConflictError(ShepherdError):
    """A conditional write lost: the item is not in the state the write expected."""


class VersionNumberTaken(ConflictError):
    """The model's counter moved since it was read: another registration took the number.

    `latest` is the counter the winner wrote when the registry knows it; None when the write lost to a
    concurrent transaction or was throttled, with the counter unknown (retry with the same guess).
    """

    def __init__(self, model_name: str, latest: int | None) -> None:
        super().__init__(f"{model_name}: version number taken (latest now {latest})")
        self.latest = latest


class ArtifactAlreadyRegistered(ConflictError):
    """The artifact version is already a version (an earlier or concurrent delivery): that one."""

    def __init__(self, version: ModelVersion) -> None:
        super().__init__(f"{version.artifact.uri} is already {version.model_name} v{version.version}")
        self.version = version


class VersionNotFound(ShepherdError):
    pass


class TransientError(ShepherdError):
    """Throttling or a 5xx that survived the SDK's retries: raise so Lambda retries the event."""
