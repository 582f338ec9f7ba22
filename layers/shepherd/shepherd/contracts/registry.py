"""The registry's contracts: the approval command, and what registration and approval announce."""

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from shepherd.contracts import Announcement, Contract, Text
from shepherd.registry.model import Checksum, ModelName, VersionNumber

# --- Commands (inbound) ---------------------------------------------------------------------------


class ModelVersionApprovalRequested(Contract):
    DETAIL_TYPE: ClassVar[str] = "Model Version Approval Requested"

    model_name: ModelName
    version: VersionNumber
    decision: Literal["approved", "rejected"]
    requested_by: Text
    reason: Text


# --- Announcements (outbound) ---------------------------------------------------------------------


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


class ModelArtifactIgnored(Announcement):
    """An upload to the artifact bucket whose key is no artifact key (`model.zip`, a key outside
    `models/<model_name>/`): nothing is registered. A manifest beside an artifact is not announced."""

    DETAIL_TYPE: ClassVar[str] = "Model Artifact Ignored"

    bucket: str
    key: str
    s3_version_id: str
    reason: str
    at: datetime


class ModelVersionApproved(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Model Version Approved"

    model_name: str
    version: int
    requested_by: str
    reason: str
    command_id: str | None = Field(default=None, description="the event id of the command this answers")
    inference_image: str | None = Field(
        default=None, description="the manifest's image; none: the stack's DefaultInferenceImage at promotion"
    )
    image_digest: str | None = Field(default=None, description="sha256:<hex> when the image is pinned by digest")
    approved_artifact_uri: str | None = Field(
        default=None, description="the copy SageMaker serves, under approved/, which only Shepherd may write"
    )
    approved_s3_version_id: str | None = None
    approved_checksum: Checksum | None = Field(default=None, description="S3's checksum of the approved copy")


class ModelVersionRejected(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Model Version Rejected"

    model_name: str
    version: int
    requested_by: str
    reason: str
    command_id: str | None = Field(default=None, description="the event id of the command this answers")


class ModelVersionApprovalRefused(Announcement):
    """An approval command that could not be carried out: unknown version, or already decided."""

    DETAIL_TYPE: ClassVar[str] = "Model Version Approval Refused"

    model_name: str
    version: int
    decision: str
    requested_by: str
    reason: str
    current_status: str | None = None
    command_id: str | None = Field(default=None, description="the event id of the command this answers")
