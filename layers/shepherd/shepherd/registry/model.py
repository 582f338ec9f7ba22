"""Registry records: what a model version is, why an upload was rejected, what changed when.

Pure pydantic models: no AWS, no environment. The DynamoDB adapter maps them to items.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# SageMaker's own name rule, so a model name can be used in SageMaker resource names unchanged.
MODEL_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
ModelName = Annotated[str, StringConstraints(pattern=MODEL_NAME_PATTERN)]
VersionNumber = Annotated[int, Field(ge=1)]


class VersionStatus(StrEnum):
    REGISTERED = "REGISTERED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    DEPLOYING = "DEPLOYING"
    LIVE = "LIVE"  # serves the endpoint's traffic
    # Replaced at 100% by a rollout's candidate, kept at weight 0 through its watch window (a rollback
    # is one weight change away): LIVE again on a rollback or failure, RETIRED at the window's end.
    STANDBY = "STANDBY"
    RETIRED = "RETIRED"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"


class Record(BaseModel):
    # Built on first use: a function reads or writes a few of these records, not all of them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Checksum(Record):
    """The checksum S3 stores for the object (never computed by downloading it)."""

    algorithm: str  # SHA256, CRC64NVME, CRC32, CRC32C or SHA1: whichever S3 holds
    value: str  # base64, exactly as S3 returns it
    type: str | None = None  # FULL_OBJECT or COMPOSITE (multipart)


class ArtifactRef(Record):
    """One exact S3 object version: the identity an upload is deduplicated on."""

    bucket: str
    key: str
    s3_version_id: str  # S3's "null" for an object in an unversioned bucket

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class ArtifactFacts(Record):
    """What S3 says about the artifact, read with one HeadObject."""

    etag: str
    size: int
    checksum: Checksum | None
    user_metadata: dict[str, str]
    version_id: str | None = None  # absent (or "null") in an unversioned bucket
    last_modified: datetime  # when the artifact was written: the manifest is read as of then


class ApprovedArtifact(Record):
    """The copy of a version's artifact that SageMaker serves: `approved/<model>/<version>/model.tar.gz`,
    which only Shepherd's roles may write (the bucket policy). Copied from the exact registered S3
    version, and checked against it, before the version's first promotion."""

    bucket: str
    key: str
    s3_version_id: str  # the copy's own version; S3's "null" in an unversioned bucket
    checksum: Checksum  # computed by S3 over the copy's bytes
    copied_at: datetime

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class TrainingData(Record):
    uri: str
    version: str | None = None


class SourceRef(Record):
    repository: str
    commit: str


class Lineage(Record):
    parent_version: VersionNumber | None = None
    training_data: TrainingData | None = None
    source: SourceRef | None = None


class ModelVersion(Record):
    model_name: ModelName
    version: VersionNumber
    artifact: ArtifactRef
    etag: str
    size: int
    checksum: Checksum | None
    metadata: dict[str, str]  # the object's S3 user metadata
    manifest_version_id: str | None = None  # the S3 version of the manifest.json read, if there was one
    # Set when the event's key had URL escapes: "decoded" if the decoded key named the object, else
    # "as-delivered" (the key exists with its escapes in it).
    key_decoding: Literal["decoded", "as-delivered"] | None = None
    description: str | None = None
    framework: str | None = None
    framework_version: str | None = None
    inference_image: str | None = None
    metrics: dict[str, float]
    tags: dict[str, str]
    lineage: Lineage
    status: VersionStatus
    created_at: datetime
    uploaded_at: datetime
    uploaded_by: str | None
    registered_by_event: str
    decided_by: str | None = None  # who approved or rejected it
    decision_reason: str | None = None
    decided_by_event: str | None = None  # makes a redelivered approval command a no-op
    rolled_back_by: str | None = None  # the alarm's name, or who asked
    rollback_reason: str | None = None
    # What every SageMaker model of this version is created from; None until approved (or, without
    # required approval, until first promoted), and for versions approved before copies existed.
    approved_artifact: ApprovedArtifact | None = None


class Rejection(Record):
    """Why an upload did not become a version. Stored per (bucket, key, S3 version id)."""

    artifact: ArtifactRef
    code: str
    reason: str
    model_name: str | None  # as it appeared in the key, even when invalid
    rejected_at: datetime
    event_id: str


class AuditEntry(Record):
    """One state change, appended in the same transaction as the change itself."""

    model_name: str
    version: int
    action: str
    from_status: VersionStatus | None
    to_status: VersionStatus
    actor: str | None
    at: datetime
    event_id: str
    reason: str | None = None
    endpoint_name: str | None = None
    rollout_id: str | None = None


class ModelSummary(Record):
    model_name: str
    latest_version: int
    created_at: datetime
    updated_at: datetime
