"""Registering an upload: each artifact upload becomes a numbered model version, or a recorded rejection.
Pure Python over the ports."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from msgspec import Struct
from msgspec.structs import replace

from shepherd.contracts import ModelArtifactIgnored, ModelArtifactRejected, ModelVersionRegistered
from shepherd.kernel.clock import Clock
from shepherd.kernel.errors import TransientError
from shepherd.kernel.publisher import EventPublisher
from shepherd.registry.errors import ArtifactAlreadyRegistered, ArtifactMissing, ArtifactRejected, VersionNumberTaken
from shepherd.registry.images import ImagePolicy, image_refusal
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
from shepherd.registry.ports import ArtifactStore, Registry

logger = logging.getLogger(__name__)
UNVERSIONED = "null"  # S3's version id of an object in an unversioned bucket
# Under contention every round of a registration race has one winner; a loser decides again at once.
# The budget is time, well inside the function's timeout; past it the invocation fails and Lambda
# retries the event.
REGISTRATION_BUDGET = timedelta(seconds=20)
MAX_REGISTRATION_ATTEMPTS = 1000  # a bound that holds even if the clock stands still
GZIP_MAGIC = b"\x1f\x8b"  # every gzip stream starts with these two bytes (RFC 1952)
IGNORED = "IGNORED"  # the code of an upload's record when its key is no artifact key


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
