"""Deciding an approval: a registered version approved (its artifact secured first) or rejected.
Pure Python over the ports."""

from __future__ import annotations

import logging
from typing import Any, Literal

from msgspec import Struct

from shepherd.contracts import ModelVersionApprovalRefused, ModelVersionApproved, ModelVersionRejected
from shepherd.kernel.clock import Clock
from shepherd.kernel.errors import ConflictError
from shepherd.kernel.publisher import EventPublisher
from shepherd.registry.errors import ArtifactNotApprovable
from shepherd.registry.images import digest_of
from shepherd.registry.model import AuditEntry, ModelVersion, VersionStatus
from shepherd.registry.ports import ArtifactVault, Registry

logger = logging.getLogger(__name__)
SHEPHERD = "shepherd"  # the actor of what Shepherd decides itself (an artifact that cannot be approved)


class ApprovalDecision(Struct, frozen=True):
    """An approval command, as the approval function parsed it."""

    model_name: str
    version: int
    decision: Literal["approved", "rejected"]
    requested_by: str
    reason: str
    event_id: str


class ApprovalOutcome(Struct, frozen=True):
    """What an approval command came to, and why."""

    result: Literal["approved", "rejected", "duplicate", "refused"]
    reason: str | None = None


class ApprovalService(Struct):
    """Approves or rejects registered versions. An approved version's artifact is copied to where only
    Shepherd may write, and every SageMaker model of the version is made from that copy."""

    registry: Registry
    events: EventPublisher
    clock: Clock
    vault: ArtifactVault
    # No identity check here: a command's requested_by is what its sender wrote, and EventBridge does
    # not say who sent it. Who may approve, and that approvers neither upload nor promote, is kept by
    # the bus and bucket policies (README, "Who may do what"); requested_by is recorded, not trusted.

    def decide(self, command: ApprovalDecision) -> ApprovalOutcome:
        target = VersionStatus.APPROVED if command.decision == "approved" else VersionStatus.REJECTED
        current = self.registry.get_version(command.model_name, command.version)
        if current is None:
            return self._refuse(command, f"{command.model_name} has no version {command.version}", None)
        if current.status is not VersionStatus.REGISTERED:
            return self._already_decided(command, current)
        changes: dict[str, Any] = {
            "decided_by": command.requested_by,
            "decision_reason": command.reason,
            "decided_by_event": command.event_id,
        }
        if command.decision == "approved":
            try:
                # Before the approval is written: what is approved is the copy, and a version whose
                # artifact cannot be copied as registered is never APPROVED.
                approved = self.vault.secure(current)
            except ArtifactNotApprovable as unfit:
                return self._reject_unfit(command, unfit.reason)
            changes["approved_artifact"] = approved.model_dump(mode="json")
            current = current.model_copy(update={"approved_artifact": approved})
        audit = AuditEntry(
            model_name=command.model_name,
            version=command.version,
            action=command.decision,
            from_status=VersionStatus.REGISTERED,
            to_status=target,
            actor=command.requested_by,
            at=self.clock(),
            event_id=command.event_id,
            reason=command.reason,
        )
        try:
            self.registry.transition(command.model_name, command.version, VersionStatus.REGISTERED, audit, changes)
        except ConflictError:
            # Another decision (or this one, delivered twice) won the race: judge against what it wrote.
            decided = self.registry.get_version(command.model_name, command.version)
            if decided is None:  # versions are never deleted; a conflict on a missing one is a bug
                raise
            return self._already_decided(command, decided)
        self._announce_decision(command, current)
        return ApprovalOutcome(command.decision)

    def _reject_unfit(self, command: ApprovalDecision, why: str) -> ApprovalOutcome:
        """An artifact that is gone or no longer the one registered can never be approved: the version
        is REJECTED (recorded, with its audit entry) and the approval refused with the reason."""
        reason = f"artifact not approvable: {why}"
        audit = AuditEntry(
            model_name=command.model_name,
            version=command.version,
            action="rejected",
            from_status=VersionStatus.REGISTERED,
            to_status=VersionStatus.REJECTED,
            actor=SHEPHERD,
            at=self.clock(),
            event_id=command.event_id,
            reason=reason,
        )
        changes = {"decided_by": SHEPHERD, "decision_reason": reason, "decided_by_event": command.event_id}
        try:
            self.registry.transition(command.model_name, command.version, VersionStatus.REGISTERED, audit, changes)
        except ConflictError:
            decided = self.registry.get_version(command.model_name, command.version)
            if decided is None:  # versions are never deleted; a conflict on a missing one is a bug
                raise
            return self._already_decided(command, decided)
        self._announce_unfit(command, reason)
        return ApprovalOutcome("refused", reason=reason)

    def _announce_unfit(self, command: ApprovalDecision, reason: str) -> None:
        logger.warning("approval refused: artifact not approvable", extra={"reason": reason})
        self.events.publish(
            ModelVersionRejected(
                model_name=command.model_name,
                version=command.version,
                requested_by=SHEPHERD,
                reason=reason,
                command_id=command.event_id,
            ),
            ModelVersionApprovalRefused(
                model_name=command.model_name,
                version=command.version,
                decision=command.decision,
                requested_by=command.requested_by,
                reason=reason,
                current_status=VersionStatus.REJECTED.value,
                command_id=command.event_id,
            ),
        )

    def _already_decided(self, command: ApprovalDecision, current: ModelVersion) -> ApprovalOutcome:
        if current.decided_by_event == command.event_id:
            # A redelivery: same effect, announced again (at least once).
            if current.decided_by == SHEPHERD and command.decision == "approved":
                self._announce_unfit(command, current.decision_reason or "artifact not approvable")
                return ApprovalOutcome("refused", reason=current.decision_reason)
            self._announce_decision(command, current)
            return ApprovalOutcome("duplicate")
        reason = (
            f"{command.model_name} version {command.version} is {current.status.value}; "
            f"only a REGISTERED version can be {command.decision}"
        )
        return self._refuse(command, reason, current.status)

    def _refuse(self, command: ApprovalDecision, reason: str, status: VersionStatus | None) -> ApprovalOutcome:
        logger.warning("approval refused", extra={"reason": reason})
        self.events.publish(
            ModelVersionApprovalRefused(
                model_name=command.model_name,
                version=command.version,
                decision=command.decision,
                requested_by=command.requested_by,
                reason=reason,
                current_status=status.value if status else None,
                command_id=command.event_id,
            )
        )
        return ApprovalOutcome("refused", reason=reason)

    def _announce_decision(self, command: ApprovalDecision, version: ModelVersion | None) -> None:
        ids = {
            "model_name": command.model_name,
            "version": command.version,
            "requested_by": command.requested_by,
            "reason": command.reason,
            "command_id": command.event_id,
        }
        if command.decision == "rejected":
            self.events.publish(ModelVersionRejected(**ids))
            return
        approved = version.approved_artifact if version is not None else None
        image = version.inference_image if version is not None else None
        self.events.publish(
            ModelVersionApproved(
                **ids,
                inference_image=image,
                image_digest=digest_of(image) if image else None,
                approved_artifact_uri=approved.uri if approved else None,
                approved_s3_version_id=approved.s3_version_id if approved else None,
                approved_checksum=approved.checksum if approved else None,
            )
        )
