"""What the rollout services need from the outside world, and the records they keep.

State changes are described as `Change`s and committed together (one DynamoDB transaction): a
rollout's record, the endpoint lock, version statuses and audit entries never disagree.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from msgspec import Struct
from pydantic import AwareDatetime, Field

from shepherd.analysis.verdict import Verdict
from shepherd.contracts import Announcement
from shepherd.kernel.frozen import Frozen
from shepherd.registry.model import AuditEntry, VersionStatus
from shepherd.rollouts.actions import EndpointConfigSpec
from shepherd.rollouts.observed import ObservedEndpoint
from shepherd.rollouts.record import LiveDeployment, Rollout
from shepherd.rollouts.strategy import Analysis


class EndpointAuditEntry(Frozen):
    """One rollout transition on an endpoint, readable with the endpoint's audit trail."""

    endpoint_name: str
    rollout_id: str | None
    action: str
    model_name: str
    version: int | None  # None only for a refused promotion of "latest-approved" that found none
    detail: str
    actor: str | None
    at: AwareDatetime
    event_id: str
    # The rollout record's revision the entry goes with: one pass may write the same action twice at
    # one instant (two steps' "progress"), and the entry's key must tell them apart.
    revision: int | None = None
    # A weight request's candidate share before and after (percent), as fields so readers (the
    # dashboard's timeline) never parse the action's words. Left out of the item when unset: entries
    # written before these fields existed, and every other action, are stored exactly as before.
    from_percent: int | None = Field(default=None, exclude_if=lambda percent: percent is None)
    to_percent: int | None = Field(default=None, exclude_if=lambda percent: percent is None)
    # The plan step (0-based) the transition saw reached, its bake beginning then: how a reader finds a
    # step's span (`shepherd analysis replay`) without the note's words. Left out when unset, as above.
    reached_step: int | None = Field(default=None, exclude_if=lambda step: step is None)


class Incident(Frozen):
    """What a post-mortem needs about one rollback, kept beside the endpoint's audit trail."""

    endpoint_name: str
    rollout_id: str
    model_name: str
    version: int
    restored_version: int
    trigger: str
    alarm_name: str | None
    state_reason: str
    state_reason_data: str | None
    alarm_changed_at: AwareDatetime | None
    flipped_at: AwareDatetime
    seconds_to_flip: float | None
    weights_before: dict[str, float]  # the step the rollout had asked for when the alarm came
    weights_after: dict[str, float]
    timeline: list[EndpointAuditEntry]  # the rollout's transitions up to the flip
    analysis: Verdict | None = None  # the canary judge's evidence, when it triggered the rollback


class RolloutRequest(Frozen):
    """Who asked for a rollout and why: kept beside the controller's record."""

    requested_by: str
    reason: str
    event_id: str


# --- changes committed atomically ----------------------------------------------------------------


class StartRollout(Struct, frozen=True):
    """Take the endpoint lock (only if free) and store the new, active rollout."""

    rollout: Rollout
    request: RolloutRequest


class SaveRollout(Struct, frozen=True):
    """Store the controller's next record, only if the stored one still has `expected_revision`."""

    rollout: Rollout
    request: RolloutRequest
    expected_revision: int


class ReleaseLock(Struct, frozen=True):
    """Free the endpoint lock this rollout holds."""

    endpoint_name: str
    rollout_id: str


class MoveVersion(Struct, frozen=True):
    """A version status change, conditional on its current status being one of `expected`."""

    expected: tuple[VersionStatus, ...]
    audit: AuditEntry
    changes: tuple[tuple[str, str], ...] = ()


class SetLive(Struct, frozen=True):
    """The endpoint's baseline: what it serves when no rollout is active. ``only_if_config``: written
    only if the baseline is still the one read, on that config (None: unconditionally)."""

    endpoint_name: str
    live: LiveDeployment
    only_if_config: str | None = None


class ForgetLive(Struct, frozen=True):
    """The endpoint no longer exists (deleted outside Shepherd): drop its baseline, only if it is still
    the one read (`config_name`)."""

    endpoint_name: str
    config_name: str


class BaselineIs(Struct, frozen=True):
    """A condition only: the endpoint's baseline is still the one a promotion read (its config name;
    None: no baseline). Without it, a rollout completing between the read and the commit is missed."""

    endpoint_name: str
    config_name: str | None


class RegisterAlarms(Struct, frozen=True):
    """Remember which rollout a per-rollout alarm belongs to (the rollback function looks it up)."""

    endpoint_name: str
    rollout_id: str
    alarm_names: tuple[str, ...]


class ForgetAlarms(Struct, frozen=True):
    """The per-rollout alarms are deleted: forget their registrations."""

    alarm_names: tuple[str, ...]


class AuditEndpoint(Struct, frozen=True):
    """Add an entry to the endpoint's audit trail."""

    entry: EndpointAuditEntry


class RecordIncident(Struct, frozen=True):
    """Keep a rollback's incident beside the endpoint's audit trail."""

    incident: Incident


REFUSED_PROMOTION = "promotion rejected"  # the audit action of a refused promotion (`RecordRefusal`)


class RecordRefusal(Struct, frozen=True):
    """A refused command, kept in the endpoint's audit trail and listed with the rejections: it is found
    after its announcement is gone (`shepherd rejections`, `status`, `history`). Written again as is
    by a redelivery of the same command."""

    entry: EndpointAuditEntry


class AnswerCommand(Struct, frozen=True):
    """The one answer to an operator's command (by its event id), written only if it has none yet.

    Every delivery of the command reads it first and repeats it: a duplicate, or Lambda's retry after
    a failed PutEvents, never gets another answer because the rollout moved on meanwhile. Two
    deliveries that decide at once race for it; the loser repeats the winner's answer.
    """

    endpoint_name: str
    command: str  # "resume", "promotion", "rollback": the same event id may be two commands' (a redeploy)
    command_id: str
    answer: Announcement


class Announce(Struct, frozen=True):
    """Announcements a change owes, stored in the same transaction (an outbox) until published.

    A crash or a failed PutEvents after the commit leaves them pending; the next invocation that
    touches the endpoint publishes them. `key` is unique per commit (rollout id and new revision).
    """

    endpoint_name: str
    key: str
    announcements: tuple[Announcement, ...]


Change = (
    StartRollout
    | SaveRollout
    | ReleaseLock
    | MoveVersion
    | SetLive
    | ForgetLive
    | BaselineIs
    | RegisterAlarms
    | ForgetAlarms
    | AuditEndpoint
    | RecordRefusal
    | RecordIncident
    | AnswerCommand
    | Announce
)


class EndpointBusy(Exception):
    def __init__(self, active_rollout_id: str) -> None:
        super().__init__(f"endpoint has an active rollout {active_rollout_id}")
        self.active_rollout_id = active_rollout_id


class ChangeRejected(Exception):
    """A conditional change lost: `change` names which, `current` is what the store holds instead."""

    def __init__(self, change: Change, current: dict[str, object] | None) -> None:
        super().__init__(f"{type(change).__name__} no longer applies")
        self.change = change
        self.current = current


class AlarmRegistration(Struct, frozen=True):
    """The rollout a per-rollout alarm belongs to."""

    alarm_name: str
    endpoint_name: str
    rollout_id: str


class StoredRollout(Struct, frozen=True):
    """A rollout record as stored, with the request that started it."""

    rollout: Rollout
    request: RolloutRequest


class RolloutStore(Protocol):
    def commit(self, changes: Sequence[Change]) -> None:
        """All or nothing. Raises EndpointBusy for a held lock, ChangeRejected for any other lost condition."""
        ...

    def active_rollouts(self) -> list[StoredRollout]: ...

    def get_rollout(self, endpoint_name: str, rollout_id: str) -> StoredRollout | None: ...

    def latest_rollout(self, endpoint_name: str) -> StoredRollout | None: ...

    def live(self, endpoint_name: str) -> LiveDeployment | None: ...

    def endpoints_serving(self, model_resource_name: str) -> list[str]:
        """Endpoints whose baseline or active rollout uses this SageMaker model."""
        ...

    def alarm_registration(self, alarm_name: str) -> AlarmRegistration | None: ...

    def lock_holder(self, endpoint_name: str) -> str | None:
        """The id of the rollout holding the endpoint's lock, if any."""
        ...

    def rollouts_of(self, endpoint_name: str, newest: int | None = None) -> list[StoredRollout]:
        """Every rollout of the endpoint (or only the `newest` few: one read), newest first."""
        ...

    def incidents(self, endpoint_name: str) -> list[Incident]: ...

    def pending_announcements(self, endpoint_name: str) -> list[Announce]: ...

    def command_answer(self, endpoint_name: str, command: str, command_id: str) -> Announcement | None:
        """The answer recorded for a command (`AnswerCommand`), if it was answered."""
        ...

    def endpoints_owed_announcements(self) -> list[str]:
        """Endpoints with announcements still in the outbox (of any rollout, finished ones too)."""
        ...

    def rollouts_to_clean_up(self) -> list[StoredRollout]:
        """Finished rollouts whose alarms, configs and models may still exist."""
        ...

    def cleaned_up(self, endpoint_name: str, rollout_id: str) -> None:
        """The rollout's clean-up is done: it leaves `rollouts_to_clean_up`."""
        ...

    def forget(self, announce: Announce) -> None:
        """The announcements were published: drop them from the outbox."""
        ...

    def endpoint_audit_trail(self, endpoint_name: str) -> list[EndpointAuditEntry]: ...

    def refusals(self, limit: int) -> list[EndpointAuditEntry]:
        """Refused commands (`RecordRefusal`) of every endpoint, newest first."""
        ...


class EndpointControl(Protocol):
    def describe(self, endpoint_name: str) -> ObservedEndpoint | None: ...

    def ensure_model(self, name: str, image: str, artifact_uri: str) -> None: ...

    def ensure_config(self, spec: EndpointConfigSpec) -> None:
        """Create the config; one of that name that holds other variants or counts is written again
        (an earlier pass's, whose update failed: its counts are stale)."""
        ...

    def create_endpoint(self, endpoint_name: str, config_name: str) -> None: ...

    def update_endpoint(self, endpoint_name: str, config_name: str) -> None: ...

    def set_weights(self, endpoint_name: str, weights: dict[str, float]) -> None: ...

    def set_capacities(self, endpoint_name: str, counts: dict[str, int]) -> None:
        """One UpdateEndpointWeightsAndCapacities setting only ``DesiredInstanceCount`` (weights untouched)."""
        ...

    def delete_endpoint(self, endpoint_name: str) -> None: ...

    def delete_config(self, config_name: str) -> None: ...

    def delete_model(self, model_name: str) -> None: ...


class DescribedAlarm(Struct, frozen=True):
    """An alarm as CloudWatch describes it: its state, and each of its metrics' dimensions."""

    state: str
    metric_dimensions: tuple[dict[str, str], ...]


class AlarmControl(Protocol):
    def described(self, alarm_name: str) -> DescribedAlarm | None:
        """The alarm as CloudWatch has it, or None when it does not exist (one DescribeAlarms)."""
        ...

    def alarm_states(self, alarm_names: tuple[str, ...]) -> dict[str, str]:
        """The state (ALARM, OK, INSUFFICIENT_DATA) of each named alarm that exists. A name left out
        is an alarm that does not exist: never read it as "not firing" (alarm_gate.py)."""
        ...

    def existing(self, alarm_names: tuple[str, ...]) -> frozenset[str]: ...

    def create_rollout_alarms(
        self,
        names: tuple[str, str],
        endpoint_name: str,
        variant_name: str,
        analysis: Analysis,
        action_arns: tuple[str, ...],
    ) -> None:
        """Create or update (idempotent) the error-rate and latency alarms `names` on the variant."""
        ...

    def delete_alarms(self, alarm_names: tuple[str, ...]) -> None: ...


def endpoint_audit(
    rollout: Rollout,
    action: str,
    detail: str,
    at: datetime,
    event_id: str,
    actor: str | None = None,
    traffic: tuple[int, int] | None = None,
    reached_step: int | None = None,
) -> AuditEndpoint:
    """The audit entry of a transition; ``traffic``: the candidate's percent before and after, when the
    transition asks SageMaker for new weights; ``reached_step``: the step it saw reached."""
    return AuditEndpoint(
        EndpointAuditEntry(
            endpoint_name=rollout.endpoint_name,
            rollout_id=rollout.rollout_id,
            action=action,
            model_name=rollout.model_name,
            version=rollout.version,
            detail=detail,
            actor=actor,
            at=at,
            event_id=event_id,
            revision=rollout.revision,
            from_percent=traffic[0] if traffic else None,
            to_percent=traffic[1] if traffic else None,
            reached_step=reached_step,
        )
    )


def version_move(
    rollout: Rollout,
    version: int,
    expected: tuple[VersionStatus, ...],
    to: VersionStatus,
    stored: StoredRollout,
    at: datetime,
    changes: tuple[tuple[str, str], ...] = (),
    cause: tuple[str, str] | None = None,
) -> MoveVersion:
    """A version status change caused by this rollout, with its audit entry (time = the event's).

    `cause` is (actor, event id) when something other than the promotion request caused it (an alarm).
    """
    actor, event_id = cause or (stored.request.requested_by, stored.request.event_id)
    model_name = rollout.model_name if version == rollout.version else rollout.previous_model_name
    if model_name is None:
        raise ValueError(f"rollout {rollout.rollout_id} has no version {version}")
    return MoveVersion(
        changes=changes,
        expected=expected,
        audit=AuditEntry(
            model_name=model_name,
            version=version,
            action=to.value.lower().replace("_", " "),
            from_status=expected[0],
            to_status=to,
            actor=actor,
            at=at,
            event_id=event_id,
            reason=rollout.failure_reason or stored.request.reason,
            endpoint_name=rollout.endpoint_name,
            rollout_id=rollout.rollout_id,
        ),
    )
