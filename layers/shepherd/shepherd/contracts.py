"""Event contracts: the commands Shepherd accepts and the announcements it makes, on the Shepherd bus.

Every announcement has source `shepherd`, a detail-type given by its class, and a snake_case detail
that carries the identifiers it is about. These models are the contract: the README's examples are
checked against them by the tests.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shepherd.registry.model import Checksum, ModelName, VersionNumber

SOURCE = "shepherd"
Text = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    DETAIL_TYPE: ClassVar[str]


# --- Commands (inbound) ---------------------------------------------------------------------------


class ModelVersionApprovalRequested(Contract):
    DETAIL_TYPE: ClassVar[str] = "Model Version Approval Requested"

    model_name: ModelName
    version: VersionNumber
    decision: Literal["approved", "rejected"]
    requested_by: Text
    reason: Text


# --- Announcements (outbound) ---------------------------------------------------------------------


class Announcement(Contract):
    """Something Shepherd announces, with source `shepherd`."""


class ModelVersionRegistered(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Model Version Registered"

    model_name: str
    version: int
    artifact_uri: str
    bucket: str
    key: str
    s3_version_id: str
    checksum: Checksum | None
    metrics: dict[str, float]
    requested_by: str | None = Field(description="the uploader, as S3 reported it")


class ModelArtifactRejected(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Model Artifact Rejected"

    bucket: str
    key: str
    s3_version_id: str
    reason: str
    code: str
    model_name: str | None = None


class ModelVersionApproved(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Model Version Approved"

    model_name: str
    version: int
    requested_by: str
    reason: str


class ModelVersionRejected(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Model Version Rejected"

    model_name: str
    version: int
    requested_by: str
    reason: str


class ModelVersionApprovalRefused(Announcement):
    """An approval command that could not be carried out: unknown version, or already decided."""

    DETAIL_TYPE: ClassVar[str] = "Model Version Approval Refused"

    model_name: str
    version: int
    decision: str
    requested_by: str
    reason: str
    current_status: str | None = None


ANNOUNCEMENTS: tuple[type[Announcement], ...] = (
    ModelVersionRegistered,
    ModelArtifactRejected,
    ModelVersionApproved,
    ModelVersionRejected,
    ModelVersionApprovalRefused,
)
COMMANDS: tuple[type[Contract], ...] = (ModelVersionApprovalRequested,)
