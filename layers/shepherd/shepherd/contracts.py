"""Event contracts: the commands Shepherd accepts and the announcements it makes, on the Shepherd bus.

Every announcement has source `shepherd`, a detail-type given by its class, and a snake_case detail
that carries the identifiers it is about. These models are the contract: the README's examples are
checked against them by the tests.
"""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shepherd.analysis.verdict import MetricEvidence, Outcome
from shepherd.registry.model import Checksum, ModelName, VersionNumber

SOURCE = "shepherd"
Text = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


def validation_problems(invalid: ValidationError) -> str:
    """Each failing field and what is wrong with it, on one line (`detail.version: ...; ...`): how a
    command that breaks its contract is described, by the functions and by the CLI alike."""
    return "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in invalid.errors())


class Contract(BaseModel):
    # Each function sends a few of these: a model's validator is built on its first use, not at every
    # cold start for all of them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
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
    command_id: str | None = Field(default=None, description="the event id of the command this answers")


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


ANNOUNCEMENTS: tuple[type[Announcement], ...] = (
    ModelVersionRegistered,
    ModelArtifactRejected,
    ModelVersionApproved,
    ModelVersionRejected,
    ModelVersionApprovalRefused,
)
COMMANDS: tuple[type[Contract], ...] = (ModelVersionApprovalRequested,)


# --- Rollouts ---------------------------------------------------------------------------------------

EndpointName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
AlarmName = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class ModelPromotionRequested(Contract):
    DETAIL_TYPE: ClassVar[str] = "Model Promotion Requested"

    model_name: ModelName
    version: VersionNumber | Literal["latest-approved"]
    endpoint_name: EndpointName
    # Kept raw: the service validates it, so an invalid strategy is announced with a precise reason.
    strategy: dict[str, Any]
    alarms: list[AlarmName] = Field(default_factory=list, max_length=50)
    # Absent: as the live variant (the defaults, ml.m5.large and 1, only on a first deployment).
    instance_type: Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] | None = None
    initial_instance_count: int | None = Field(default=None, ge=1, le=100)
    requested_by: Text
    reason: Text


class TrafficStepDetail(Contract):
    percent: int
    bake_seconds: int


class RolloutAnnouncement(Announcement):
    rollout_id: str
    endpoint_name: str
    model_name: str
    version: int
    previous_version: int | None = None  # absent on a first deployment


class RolloutStarted(RolloutAnnouncement):
    DETAIL_TYPE: ClassVar[str] = "Rollout Started"

    strategy: dict[str, Any]
    plan: list[TrafficStepDetail]
    post_deploy_watch_seconds: int
    alarms: list[str]
    requested_by: str
    reason: str


class RolloutTrafficShifted(RolloutAnnouncement):
    DETAIL_TYPE: ClassVar[str] = "Rollout Traffic Shifted"

    from_percent: int
    to_percent: int


class RolloutCompleted(RolloutAnnouncement):
    """The candidate serves 100%. The previous variant stays at weight 0 until `watch_until`."""

    DETAIL_TYPE: ClassVar[str] = "Rollout Completed"

    watch_until: datetime | None = None


class RolloutFailed(RolloutAnnouncement):
    DETAIL_TYPE: ClassVar[str] = "Rollout Failed"

    reason: str


class PromotionRejected(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Promotion Rejected"

    rollout_id: str
    endpoint_name: str
    model_name: str
    version: int | None = None  # absent when "latest-approved" found none
    previous_version: int | None = None
    reason: str
    requested_by: str
    active_rollout_id: str | None = None  # the rollout holding the endpoint, when it is busy


class ModelVersionRetired(Announcement):
    """The previous version's variant was removed from the endpoint at the end of the watch window."""

    DETAIL_TYPE: ClassVar[str] = "Model Version Retired"

    model_name: str
    version: int
    endpoint_name: str
    rollout_id: str


ANNOUNCEMENTS += (
    RolloutStarted,
    RolloutTrafficShifted,
    RolloutCompleted,
    RolloutFailed,
    PromotionRejected,
    ModelVersionRetired,
)
COMMANDS += (ModelPromotionRequested,)


# --- Rollback ---------------------------------------------------------------------------------------


class ModelRollbackRequested(Contract):
    DETAIL_TYPE: ClassVar[str] = "Model Rollback Requested"

    endpoint_name: EndpointName
    reason: Text
    requested_by: Text
    to_version: VersionNumber | None = None  # default: the version live before the current one


class RolloutRolledBack(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Rollout Rolled Back"

    rollout_id: str
    endpoint_name: str
    model_name: str
    version: int  # the version rolled back
    restored_version: int
    trigger: str  # the alarm's name, or who asked
    reason: str
    seconds_to_flip: float | None = None  # from the alarm's state change to the traffic flip
    command_id: str | None = Field(default=None, description="the event id of the command this answers")


class RollbackSkipped(Announcement):
    """An alarm or request that did not roll anything back, and why (e.g. after the watch window)."""

    DETAIL_TYPE: ClassVar[str] = "Rollback Skipped"

    endpoint_name: str
    trigger: str
    reason: str
    rollout_id: str | None = None
    model_name: str | None = None
    version: int | None = None
    command_id: str | None = Field(
        default=None, description="the event id of the Model Rollback Requested this answers"
    )


ANNOUNCEMENTS += (RolloutRolledBack, RollbackSkipped)


class CommandRefused(Announcement):
    """A command whose detail breaks its contract: nothing was done. It answers the command by its
    event id, so a sender waiting for an answer gets one (a damaged envelope, with no id to answer,
    fails the invocation instead and ends in the function's dead-letter queue)."""

    DETAIL_TYPE: ClassVar[str] = "Command Refused"

    command_id: str
    command: str  # the command's detail-type
    source: str  # the event's source: who sent it
    reason: Text  # each failing field with what is wrong with it, on one line


ANNOUNCEMENTS += (CommandRefused,)
COMMANDS += (ModelRollbackRequested,)


# --- Canary analysis --------------------------------------------------------------------------------


class ModelRolloutResumeRequested(Contract):
    """Resume a rollout the judge held (``on_inconclusive: hold``): it advances to the next step.

    To roll back instead, send ``Model Rollback Requested``.
    """

    DETAIL_TYPE: ClassVar[str] = "Model Rollout Resume Requested"

    endpoint_name: EndpointName
    rollout_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]  # the held one: never another
    requested_by: Text
    reason: Text


class CanaryAnalysisCompleted(RolloutAnnouncement):
    """The judge's final verdict on one traffic step, with the evidence per metric.

    Sent once per judged step: at the end of the bake (or of its extension), or at once on a
    critical FAIL. ``decision`` is what the rollout does with it; ``extended_seconds`` how long the
    bake was extended while the verdict was INCONCLUSIVE.
    """

    DETAIL_TYPE: ClassVar[str] = "Canary Analysis Completed"

    step: int = Field(ge=0)  # index in the plan of Rollout Started
    percent: int = Field(ge=1, le=100)
    outcome: Outcome
    decision: Literal["advance", "rollback", "hold"]
    critical_failure: bool
    minutes: int = Field(ge=0)
    extended_seconds: int = Field(default=0, ge=0)
    metrics: list[MetricEvidence]


class RolloutResumed(RolloutAnnouncement):
    """A rollout the judge held was resumed by an operator: it advances to its next step."""

    DETAIL_TYPE: ClassVar[str] = "Rollout Resumed"

    percent: int = Field(ge=1, le=100)
    requested_by: str
    reason: str
    command_id: str = Field(description="the event id of the Model Rollout Resume Requested this answers")


class RolloutResumeRefused(Announcement):
    """A resume that did not apply (no such rollout, or it is not held), and why."""

    DETAIL_TYPE: ClassVar[str] = "Rollout Resume Refused"

    endpoint_name: str
    rollout_id: str
    reason: str
    command_id: str = Field(description="the event id of the Model Rollout Resume Requested this answers")


ANNOUNCEMENTS += (CanaryAnalysisCompleted, RolloutResumed, RolloutResumeRefused)
COMMANDS += (ModelRolloutResumeRequested,)
