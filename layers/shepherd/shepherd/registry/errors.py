"""Domain errors. Adapters translate AWS failures into these, once; services decide what they mean."""

from __future__ import annotations


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


class ConflictError(ShepherdError):
    """A conditional write lost: the item is not in the state the write expected."""


class VersionNotFound(ShepherdError):
    pass


class TransientError(ShepherdError):
    """Throttling or a 5xx that survived the SDK's retries: raise so Lambda retries the event."""
