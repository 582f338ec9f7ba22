"""Registry use cases: register an upload, decide an approval. Pure Python over the ports."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Literal

from msgspec import Struct
from msgspec.structs import replace

from shepherd.contracts import (
    ModelArtifactIgnored,
    ModelArtifactRejected,
    ModelVersionApprovalRefused,
    ModelVersionApproved,
    ModelVersionRegistered,
    ModelVersionRejected,
)
from shepherd.registry.errors import (
    ArtifactAlreadyRegistered,
    ArtifactMissing,
    ArtifactNotApprovable,
    ArtifactRejected,
    ConflictError,
    TransientError,
    VersionNumberTaken,
)
from shepherd.registry.images import ImagePolicy, digest_of, image_refusal
from shepherd.registry.keys import ARTIFACT_FILE_NAME, PREFIX, is_artifact_key, parse_artifact_key, why_ignored
from shepherd.registry.manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest
from shepherd.registry.model import (
    ArtifactFacts,
    ArtifactRef,
    AuditEntry,
    Lineage,
    ModelVersion,
    Rejection,
    VersionStatus,
)
from shepherd.registry.ports import ArtifactStore, ArtifactVault, Clock, EventPublisher, Registry

logger = logging.getLogger(__name__)
UNVERSIONED = "null"  # S3's version id of an object in an unversioned bucket
# Under contention every round of a registration race has one winner; a loser decides again at once.
# The budget is time, well inside the function's timeout; past it the invocation fails and Lambda
# retries the event.
REGISTRATION_BUDGET = timedelta(seconds=20)
MAX_REGISTRATION_ATTEMPTS = 1000  # a bound that holds even if the clock stands still
GZIP_MAGIC = b"\x1f\x8b"  # every gzip stream starts with these two bytes (RFC 1952)
IGNORED = "IGNORED"  # the code of an upload's record when its key is no artifact key
SHEPHERD = "shepherd"  # the actor of what Shepherd decides itself (an artifact that cannot be approved)


class ArtifactUploaded(Struct, frozen=True):
    """An `Object Created` notification, whichever shape it arrived in."""

    artifact: ArtifactRef  # the key URL-decoded, as S3 encodes keys in notifications
    uploaded_at: datetime
    uploaded_by: str | None
    event_id: str
    # The key exactly as the event carried it, when decoding changed it: tried if the decoded key does
    # not exist (EventBridge does not always encode keys, and '+' or '%' may be part of a real key).
    key_as_delivered: str | None = None


class ArtifactFound(Struct, frozen=True):
    """The object an upload names, as S3 has it, and the manifest version read for it."""

    artifact: ArtifactRef
    facts: ArtifactFacts
    key_decoding: Literal["decoded", "as-delivered"] | None
    manifest_version_id: str | None


class UploadOutcome(Struct, frozen=True):
    """What one upload came to: the version registered (or already registered), or why not."""

    result: Literal["registered", "duplicate", "rejected", "ignored"]
    version: ModelVersion | None = None
    rejection: Rejection | None = None


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


class RegistrationService(Struct):
    """Registers a model version for each artifact upload."""

    artifacts: ArtifactStore
    registry: Registry
    events: EventPublisher
    clock: Clock
    artifact_bucket: str  # events about any other bucket are ignored, before any AWS call
    # The stack's rule for a manifest's inference_image (checked again at promotion); None: not checked
    # here (domain tests of other rules).
    image_policy: ImagePolicy | None = None

    def handle_upload(self, upload: ArtifactUploaded) -> UploadOutcome:
        artifact = upload.artifact
        if artifact.bucket != self.artifact_bucket:
            logger.info("ignored: not the artifact bucket", extra={"bucket": artifact.bucket, "key": artifact.key})
            return UploadOutcome("ignored")
        if not any(is_artifact_key(candidate.key) for candidate in _candidates(upload)):
            return self._ignore(upload)
        try:
            version, created = self._register(upload)
        except ArtifactRejected as rejected:
            return self._reject(upload, rejected)
        # Announced on duplicates too: delivery is at least once, so a retry after a crash between
        # the write and the announcement must still announce. Consumers dedupe on (model, version).
        self.events.publish(_registered(version))
        return UploadOutcome("registered" if created else "duplicate", version=version)

    def _register(self, upload: ArtifactUploaded) -> tuple[ModelVersion, bool]:
        found = self._locate(upload)
        if isinstance(found, ModelVersion):
            return found, False
        artifact = found.artifact
        key = parse_artifact_key(artifact.key)
        try:
            self._check_gzip(found, key.model_name)
        except ArtifactMissing:
            # Deleted between HeadObject and the GET: a redelivery of a registered upload is that version.
            already = self.registry.find_registration(artifact)
            if already is not None:
                return already, False
            raise ArtifactRejected(
                "ARTIFACT_MISSING", f"{artifact.uri} (version {artifact.s3_version_id}) no longer exists", None
            ) from None
        # The manifest as it was when the artifact was written: one overwritten since (the next run's)
        # must not leak into this version.
        stored = self.artifacts.read_manifest(
            artifact.bucket, key.manifest_key, MAX_MANIFEST_BYTES, found.facts.last_modified
        )
        manifest = parse_manifest(stored.body) if stored is not None else Manifest()
        if manifest.inference_image is not None and self.image_policy is not None:
            refusal = image_refusal(manifest.inference_image, self.image_policy)
            if refusal is not None:
                raise ArtifactRejected("IMAGE_NOT_ALLOWED", f"manifest.json: {refusal}", key.model_name)
        found = replace(found, manifest_version_id=stored.version_id if stored else None)

        return self._allocate(upload, key.model_name, found, manifest)

    def _check_gzip(self, found: ArtifactFound, model_name: str) -> None:
        """An empty object, or one that is not gzip-compressed, is no model.tar.gz: SageMaker would fail
        to load it only once it takes traffic. The first two bytes (one ranged GET) tell."""
        if found.facts.size == 0:
            raise ArtifactRejected("INVALID_ARTIFACT", f"{ARTIFACT_FILE_NAME} is empty (0 bytes)", model_name)
        head = self.artifacts.first_bytes(found.artifact, len(GZIP_MAGIC))  # ArtifactMissing: the caller's
        if head != GZIP_MAGIC:
            starts = head.hex(" ") or "nothing"
            raise ArtifactRejected(
                "INVALID_ARTIFACT",
                f"{ARTIFACT_FILE_NAME} is not gzip-compressed: it starts with {starts}, not 1f 8b "
                "(a .tar.gz, e.g. from `tar czf model.tar.gz ...`)",
                model_name,
            )

    def _allocate(
        self, upload: ArtifactUploaded, model_name: str, found: ArtifactFound, manifest: Manifest
    ) -> tuple[ModelVersion, bool]:
        """Take the model's next number: decide the version against it, let the registry write it if the
        number is still free, and decide again against the winner's number when it is not."""
        latest = self.registry.latest_version(model_name, fresh=False)
        confirmed = False  # whether `latest` came from the table, rather than this container's guess
        deadline = self.clock() + REGISTRATION_BUDGET
        for _attempt in range(MAX_REGISTRATION_ATTEMPTS):
            if self.clock() >= deadline:
                break
            try:
                version, audit = self._new_version(upload, model_name, latest + 1, found, manifest)
            except ArtifactRejected:
                # Judged against the number (lineage must name an earlier version): a guessed number
                # must not reject an upload, so read the counter and judge again.
                if confirmed:
                    raise
                latest, confirmed = self.registry.latest_version(model_name, fresh=True), True
                continue
            try:
                self.registry.add_version(version, audit, expected_latest=latest)
            except ArtifactAlreadyRegistered as already:
                return already.version, False
            except VersionNumberTaken as taken:
                if taken.latest is not None:  # someone registered first: their number is the next guess
                    latest, confirmed = taken.latest, True
                continue
            return version, True
        raise TransientError(f"could not allocate a version of {model_name} in {REGISTRATION_BUDGET}")

    def _locate(self, upload: ArtifactUploaded) -> ArtifactFound | ModelVersion:
        """The object the event names, pinned to its version; or its version if a redelivery finds it gone."""
        candidates = _valid_candidates(upload)
        for candidate in candidates:
            try:
                facts = self.artifacts.head(candidate)
            except ArtifactMissing:
                continue
            if candidate.s3_version_id == UNVERSIONED and facts.version_id not in (None, UNVERSIONED):
                # A record without versionId on a versioned bucket: the version HeadObject just read.
                candidate = candidate.model_copy(update={"s3_version_id": facts.version_id})
            decoding: Literal["decoded", "as-delivered"] | None = None
            if upload.key_as_delivered is not None:
                decoding = "decoded" if candidate.key == upload.artifact.key else "as-delivered"
                logger.info("key had URL escapes", extra={"key": candidate.key, "key_decoding": decoding})
            return ArtifactFound(candidate, facts, decoding, None)
        for candidate in candidates:
            # A redelivery after the object was deleted must not turn a registered version into a rejection.
            already = self.registry.find_registration(candidate)
            if already is not None:
                return already
        artifact = upload.artifact
        raise ArtifactRejected(
            "ARTIFACT_MISSING", f"{artifact.uri} (version {artifact.s3_version_id}) no longer exists", None
        )

    def _new_version(
        self, upload: ArtifactUploaded, model_name: str, number: int, found: ArtifactFound, manifest: Manifest
    ) -> tuple[ModelVersion, AuditEntry]:
        facts = found.facts
        if manifest.parent_version is not None and manifest.parent_version >= number:
            raise ArtifactRejected(
                "INVALID_MANIFEST",
                f"manifest.json: parent_version {manifest.parent_version} does not exist before "
                f"version {number} of {model_name}",
                model_name,
            )
        now = self.clock()
        version = ModelVersion(
            model_name=model_name,
            version=number,
            artifact=found.artifact,
            etag=facts.etag,
            size=facts.size,
            checksum=facts.checksum,
            metadata=facts.user_metadata,
            manifest_version_id=found.manifest_version_id,
            key_decoding=found.key_decoding,
            description=manifest.description,
            framework=manifest.framework,
            framework_version=manifest.framework_version,
            inference_image=manifest.inference_image,
            metrics=manifest.metrics,
            tags=manifest.tags,
            lineage=Lineage(
                parent_version=manifest.parent_version,
                training_data=manifest.training_data,
                source=manifest.source,
            ),
            status=VersionStatus.REGISTERED,
            created_at=now,
            uploaded_at=upload.uploaded_at,
            uploaded_by=upload.uploaded_by,
            registered_by_event=upload.event_id,
        )
        audit = AuditEntry(
            model_name=model_name,
            version=number,
            action="registered",
            from_status=None,
            to_status=VersionStatus.REGISTERED,
            actor=upload.uploaded_by,
            at=now,
            event_id=upload.event_id,
            reason=f"uploaded {found.artifact.uri}",
        )
        return version, audit

    def _ignore(self, upload: ArtifactUploaded) -> UploadOutcome:
        """Not an artifact key: nothing registers, and the uploader can find out why (a record listed by
        `shepherd rejections`, `Model Artifact Ignored`), unless it is a file expected beside artifacts."""
        artifact = upload.artifact
        reason = why_ignored(artifact.key)
        logger.info("ignored upload", extra={"key": artifact.key, "reason": reason or "a file beside artifacts"})
        if reason is None:
            return UploadOutcome("ignored")
        now = self.clock()
        rejection = Rejection(
            artifact=artifact,
            code=IGNORED,
            reason=reason,
            model_name=_model_name_in(artifact.key) if artifact.key.startswith(PREFIX) else None,
            rejected_at=now,
            event_id=upload.event_id,
        )
        self.registry.record_rejection(rejection)
        self.events.publish(
            ModelArtifactIgnored(
                bucket=artifact.bucket, key=artifact.key, s3_version_id=artifact.s3_version_id, reason=reason, at=now
            )
        )
        return UploadOutcome("ignored", rejection=rejection)

    def _reject(self, upload: ArtifactUploaded, rejected: ArtifactRejected) -> UploadOutcome:
        model_name = rejected.model_name or _model_name_in(upload.artifact.key)
        rejection = Rejection(
            artifact=upload.artifact,
            code=rejected.code,
            reason=rejected.reason,
            model_name=model_name,
            rejected_at=self.clock(),
            event_id=upload.event_id,
        )
        logger.warning("rejected artifact", extra={"key": upload.artifact.key, "reason": rejected.reason})
        self.registry.record_rejection(rejection)
        self.events.publish(
            ModelArtifactRejected(
                bucket=upload.artifact.bucket,
                key=upload.artifact.key,
                s3_version_id=upload.artifact.s3_version_id,
                reason=rejected.reason,
                code=rejected.code,
                model_name=model_name,
            )
        )
        return UploadOutcome("rejected", rejection=rejection)


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


def _registered(version: ModelVersion) -> ModelVersionRegistered:
    return ModelVersionRegistered(
        model_name=version.model_name,
        version=version.version,
        artifact_uri=version.artifact.uri,
        bucket=version.artifact.bucket,
        key=version.artifact.key,
        s3_version_id=version.artifact.s3_version_id,
        checksum=version.checksum,
        metrics=version.metrics,
        requested_by=version.uploaded_by,
    )


def _candidates(upload: ArtifactUploaded) -> list[ArtifactRef]:
    """The decoded key first, then the key as delivered if it differs."""
    if upload.key_as_delivered is None:
        return [upload.artifact]
    return [upload.artifact, upload.artifact.model_copy(update={"key": upload.key_as_delivered})]


def _valid_candidates(upload: ArtifactUploaded) -> list[ArtifactRef]:
    """The candidates whose key is a valid artifact key, checked before any AWS call; if none is, the
    first one's reason (INVALID_KEY, INVALID_MODEL_NAME) rejects the upload."""
    valid: list[ArtifactRef] = []
    reasons: list[ArtifactRejected] = []
    for candidate in _candidates(upload):
        if not is_artifact_key(candidate.key):
            continue
        try:
            parse_artifact_key(candidate.key)
        except ArtifactRejected as rejected:
            reasons.append(rejected)
            continue
        valid.append(candidate)
    if not valid:
        raise reasons[0]
    return valid


def _model_name_in(key: str) -> str | None:
    segments = key.split("/")
    return segments[1] or None if len(segments) > 2 else None
