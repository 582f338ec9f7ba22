"""The rollouts' contracts: promotion and resume commands, and what a rollout and its canary analysis
announce."""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from shepherd.analysis.verdict import MetricEvidence, Outcome
from shepherd.contracts import Announcement, Contract, EndpointName, Text
from shepherd.contracts.cost import RolloutCost
from shepherd.contracts.free_text import SafeText
from shepherd.registry.model import ModelName, VersionNumber

AlarmName = Annotated[SafeText, StringConstraints(min_length=1, max_length=255)]


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
    # Absent: 1.2 (capacity.sizing.DEFAULT_HEADROOM). In an update without initial_instance_count the
    # candidate has ceil(live count x share x headroom) instances at each step below 100%.
    headroom: float | None = Field(default=None, ge=1, le=4)
    # The new live variant's Application Auto Scaling limits once it takes over (absent: the old
    # variant's). Only for an update whose live variant is registered.
    min_capacity: int | None = Field(default=None, ge=1)
    max_capacity: int | None = Field(default=None, ge=1)
    requested_by: Text
    reason: Text
    # A ROLLED_BACK version is deployable again only when asked for explicitly (a false alarm, say);
    # the audit records it.
    allow_rolled_back: bool = False
    # An endpoint is bound to the model it serves: putting another model there must be asked for.
    replace_model: bool = False


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
    cost: RolloutCost | None = None  # the ledger so far (final only for a first deployment): contracts/cost.py


class RolloutFailed(RolloutAnnouncement):
    DETAIL_TYPE: ClassVar[str] = "Rollout Failed"

    reason: str
    cost: RolloutCost | None = None  # the closed ledger (contracts/cost.py)


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
    cost: RolloutCost | None = None  # the completed rollout's closed ledger (contracts/cost.py)


# --- Canary analysis --------------------------------------------------------------------------------


class ModelRolloutResumeRequested(Contract):
    """Resume a rollout the judge held (``on_inconclusive: hold``) or a manual gate holds (a
    ``blue_green`` rollout, a step with ``gate: "manual"``): it advances to the next step.

    To roll back instead, send ``Model Rollback Requested``.
    """

    DETAIL_TYPE: ClassVar[str] = "Model Rollout Resume Requested"

    endpoint_name: EndpointName
    rollout_id: Annotated[SafeText, StringConstraints(min_length=1, max_length=128)]  # the held one: never another
    requested_by: Text
    reason: Text


class CanaryAnalysisCompleted(RolloutAnnouncement):
    """The judge's verdict on one traffic step, with the evidence per metric.

    Sent once per decision of a judged step: at the end of the bake (or of its extension), or at once
    on a critical FAIL; a held step is announced again when the judge (or the hold's deadline) decides
    it. ``decision`` is what the rollout does with it; ``extended_seconds`` how long the bake was
    extended while the verdict was INCONCLUSIVE. ``advisory``: the judge runs in advisory mode, and
    ``decision`` is only what it would have done (the rollout goes on by its bakes and alarms).
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
    # INCONCLUSIVE: how long a decision would take at the current traffic, in words.
    waiting: str | None = None
    advisory: bool = False


class RolloutHeld(RolloutAnnouncement):
    """A held rollout: announced when the hold starts, then every ``hold_reminder_seconds``.

    ``gate`` says what holds it. ``canary_analysis``: the judge holds the step it is at, judged again
    at every look meanwhile: a FAIL rolls it back, a PASS advances it (unless ``held_step_advances``
    is false). ``manual``: the next step (``step``, its traffic not yet requested) waits for an
    operator; ``percent`` is the candidate's share meanwhile (0 before the first step) and there is no
    verdict. Either way, at ``deadline`` it does ``on_timeout`` (a manual gate's rollback ends the
    rollout FAILED), and an operator may resume it (``Model Rollout Resume Requested``) or roll it
    back before.
    """

    DETAIL_TYPE: ClassVar[str] = "Rollout Held"

    step: int = Field(ge=0)
    percent: int = Field(ge=0, le=100)
    held_since: datetime
    deadline: datetime
    on_timeout: Literal["rollback", "advance"]
    outcome: Outcome | None = None  # the latest verdict (none for a manual gate)
    reason: str
    waiting: str | None = None  # the judge's estimate of what more traffic it needs, when it has one
    announcement: int = Field(ge=1, description="1 when the hold starts, then one more per reminder")
    gate: Literal["canary_analysis", "manual"] = "canary_analysis"


class GatingAlarmsMissing(RolloutAnnouncement):
    """Alarms the rollout is gated by do not exist (deleted, or never created): it holds, fail closed,
    from when this is sent until they exist again and none is in ALARM (or it is rolled back)."""

    DETAIL_TYPE: ClassVar[str] = "Gating Alarms Missing"

    percent: int = Field(ge=0, le=100)  # the candidate's share it is at or moving to, held before the next
    missing_alarms: list[str]
    reason: str


class RolloutResumed(RolloutAnnouncement):
    """A rollout the judge or a manual gate held was resumed by an operator: it advances to its next
    step (``percent``: the candidate's share when resumed, 0 at a gate before the first step)."""

    DETAIL_TYPE: ClassVar[str] = "Rollout Resumed"

    percent: int = Field(ge=0, le=100)
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
