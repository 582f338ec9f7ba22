"""In-memory implementations of the registry and rollout ports, for domain tests.

The rollout fakes obey the same contract as the AWS adapters: `tests/contract/` runs one set of test
functions against both (the fake, and the adapter on moto), so the fakes cannot drift.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import msgspec

from shepherd.adapters.dynamodb import model_audit_item
from shepherd.adapters.dynamodb_rollouts import answer_sk, endpoint_audit_keys
from shepherd.analysis.judge import VariantSeries
from shepherd.analysis.metrics import SeriesQuery
from shepherd.capacity.errors import NoScalableTarget, ScalingRequestRefused
from shepherd.capacity.scaling import (
    TARGET_TRACKING,
    ScalableTarget,
    ScalingPolicy,
    SuspendedState,
    TargetTracking,
    VariantCapacity,
    variant_resource_id,
)
from shepherd.contracts import Announcement
from shepherd.kernel.errors import ConflictError, TransientError
from shepherd.registry.errors import (
    ArtifactAlreadyRegistered,
    ArtifactMissing,
    ArtifactNotApprovable,
    VersionNumberTaken,
)
from shepherd.registry.keys import approved_key
from shepherd.registry.model import (
    ApprovedArtifact,
    ArtifactFacts,
    ArtifactRef,
    AuditEntry,
    Checksum,
    ModelSummary,
    ModelVersion,
    Rejection,
    VersionStatus,
)
from shepherd.registry.ports import Page, StoredManifest
from shepherd.rollouts.actions import EndpointConfigSpec
from shepherd.rollouts.errors import EndpointRequestRefused, EndpointStillUpdating
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint, ObservedVariant
from shepherd.rollouts.ports import (
    REFUSED_PROMOTION,
    AlarmRegistration,
    Announce,
    AnswerCommand,
    AuditEndpoint,
    BaselineIs,
    Change,
    ChangeRejected,
    DescribedAlarm,
    EndpointAuditEntry,
    EndpointBusy,
    ForgetAlarms,
    ForgetLive,
    Incident,
    MoveVersion,
    RecordIncident,
    RecordRefusal,
    RegisterAlarms,
    ReleaseLock,
    SaveRollout,
    SetLive,
    StartRollout,
    StoredRollout,
)
from shepherd.rollouts.record import LiveDeployment
from shepherd.rollouts.strategy import Analysis


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)  # strictly increasing, like audit keys expect
        return self.now


class InMemoryArtifactStore:
    """Objects by exact version; `manifests` holds one manifest per key, written before any artifact."""

    WRITTEN_AT = datetime(2026, 11, 20, 9, 14, 3, tzinfo=UTC)

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], ArtifactFacts] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.contents: dict[tuple[str, str, str], bytes] = {}  # default: a gzip stream's first bytes
        self.calls: list[str] = []

    def put(
        self,
        artifact: ArtifactRef,
        size: int = 100,
        metadata: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> None:
        if content is not None:
            self.contents[(artifact.bucket, artifact.key, artifact.s3_version_id)] = content
            size = len(content)
        self.objects[(artifact.bucket, artifact.key, artifact.s3_version_id)] = ArtifactFacts(
            etag="etag",
            size=size,
            checksum=None,
            user_metadata=metadata or {},
            version_id=artifact.s3_version_id,
            last_modified=self.WRITTEN_AT,
        )

    def head(self, artifact: ArtifactRef) -> ArtifactFacts:
        self.calls.append(f"head {artifact.uri}")
        try:
            return self.objects[(artifact.bucket, artifact.key, artifact.s3_version_id)]
        except KeyError:
            raise ArtifactMissing(artifact.uri) from None

    def first_bytes(self, artifact: ArtifactRef, count: int) -> bytes:
        self.calls.append(f"first bytes {artifact.uri}")
        key = (artifact.bucket, artifact.key, artifact.s3_version_id)
        if key not in self.objects:
            raise ArtifactMissing(artifact.uri)
        return self.contents.get(key, b"\x1f\x8b\x08\x00")[:count]

    def read_manifest(self, bucket: str, key: str, max_bytes: int, as_of: datetime) -> StoredManifest | None:
        self.calls.append(f"manifest s3://{bucket}/{key}")
        raw = self.manifests.get((bucket, key))
        return StoredManifest(raw[: max_bytes + 1], "manifest-v1") if raw is not None else None


class InMemoryVault:
    """Approved copies that match their registration, unless `unfit` gives a version's reason not to."""

    COPIED_AT = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)

    def __init__(self) -> None:
        self.unfit: dict[tuple[str, int], str] = {}
        self.secured: list[tuple[str, int]] = []

    def secure(self, version: ModelVersion) -> ApprovedArtifact:
        reason = self.unfit.get((version.model_name, version.version))
        if reason is not None:
            raise ArtifactNotApprovable(reason)
        self.secured.append((version.model_name, version.version))
        return ApprovedArtifact(
            bucket=version.artifact.bucket,
            key=approved_key(version.model_name, version.version),
            s3_version_id=f"copy-{len(self.secured)}",
            checksum=Checksum(algorithm="SHA256", value="Y29weQ==", type="FULL_OBJECT"),
            copied_at=self.COPIED_AT,
        )


class InMemoryRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.versions: dict[tuple[str, int], ModelVersion] = {}
        self.claims: dict[ArtifactRef, tuple[str, int]] = {}
        self.rejections: dict[ArtifactRef, Rejection] = {}
        self.audit: list[AuditEntry] = []

    def latest_version(self, model_name: str, fresh: bool) -> int:
        return max((number for name, number in self.versions if name == model_name), default=0)

    def add_version(self, version: ModelVersion, audit: AuditEntry, expected_latest: int) -> None:
        with self._lock:
            if version.artifact in self.claims:
                raise ArtifactAlreadyRegistered(self.versions[self.claims[version.artifact]])
            latest = self.latest_version(version.model_name, fresh=True)
            if latest != expected_latest or (version.model_name, version.version) in self.versions:
                raise VersionNumberTaken(version.model_name, latest)
            self.versions[(version.model_name, version.version)] = version
            self.claims[version.artifact] = (version.model_name, version.version)
            self.audit.append(audit)

    def find_registration(self, artifact: ArtifactRef) -> ModelVersion | None:
        claim = self.claims.get(artifact)
        return self.versions[claim] if claim else None

    def record_rejection(self, rejection: Rejection) -> None:
        self.rejections.setdefault(rejection.artifact, rejection)

    def get_version(self, model_name: str, version: int) -> ModelVersion | None:
        return self.versions.get((model_name, version))

    def transition(
        self,
        model_name: str,
        version: int,
        expected: VersionStatus,
        audit: AuditEntry,
        changes: Mapping[str, Any],
    ) -> None:
        with self._lock:
            current = self.versions.get((model_name, version))
            if current is None or current.status is not expected:
                raise ConflictError(f"{model_name} v{version} is not {expected}")
            # Validated, as the adapter's item is when read back (a change may be a nested record's JSON).
            updated = {**current.model_dump(mode="json"), "status": audit.to_status, **changes}
            self.versions[(model_name, version)] = ModelVersion.model_validate(updated)
            self.audit.append(audit)

    def record_approved_artifact(self, model_name: str, version: int, approved: ApprovedArtifact) -> ModelVersion:
        with self._lock:
            current = self.versions[(model_name, version)]
            if current.approved_artifact is None:
                current = current.model_copy(update={"approved_artifact": approved})
                self.versions[(model_name, version)] = current
            return current

    def list_models(self, limit: int, cursor: str | None) -> Page[ModelSummary]:
        names = sorted({name for name, _ in self.versions})
        start = names.index(cursor) + 1 if cursor else 0
        page = names[start : start + limit]
        summaries = []
        for name in page:
            numbers = [number for model, number in self.versions if model == name]
            first, last = self.versions[(name, min(numbers))], self.versions[(name, max(numbers))]
            summaries.append(
                ModelSummary(
                    model_name=name,
                    latest_version=max(numbers),
                    created_at=first.created_at,
                    updated_at=last.created_at,
                )
            )
        more = start + limit < len(names)
        return Page(summaries, page[-1] if more and page else None)

    def list_versions(self, model_name: str, limit: int, cursor: str | None) -> Page[ModelVersion]:
        numbers = sorted((number for name, number in self.versions if name == model_name), reverse=True)
        start = numbers.index(int(cursor)) + 1 if cursor else 0
        page = numbers[start : start + limit]
        more = start + limit < len(numbers)
        return Page([self.versions[(model_name, n)] for n in page], str(page[-1]) if more and page else None)

    def get_rejection(self, bucket: str, key: str) -> Rejection | None:
        matching = [r for a, r in self.rejections.items() if (a.bucket, a.key) == (bucket, key)]
        return max(matching, key=lambda rejection: rejection.rejected_at, default=None)

    def model_audit_trail(self, model_name: str) -> list[AuditEntry]:
        return sorted((entry for entry in self.audit if entry.model_name == model_name), key=lambda e: e.at)


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Announcement] = []

    def publish(self, *announcements: Announcement) -> None:
        self.published.extend(announcements)

    def of_type(self, kind: type[Announcement]) -> list[Any]:
        return [announcement for announcement in self.published if isinstance(announcement, kind)]


# --- rollouts ------------------------------------------------------------------------------------
# In-memory rollout ports, held to the adapters' behaviour by tests/contract/ (the same test functions
# run against these and against DynamoRolloutStore / SageMakerEndpoints / CloudWatchAlarms on moto).


# One transaction item: its key, its condition (raises when it fails) and its write.
_Item = tuple[tuple[str, str], Callable[[], None], Callable[[], None]]


class DuplicateTransactionItem(Exception):
    """DynamoDB refuses a transaction that touches one item twice (a ValidationException)."""


class InMemoryRolloutStore:
    """`RolloutStore` with DynamoRolloutStore's conditions, one transaction per commit, all or nothing.

    Every change becomes the same items, under the same keys and conditions, as in the adapter
    (`shepherd.adapters.dynamodb_rollouts`): the lock and a new rollout only if absent, a rollout only
    at its expected revision, the lock released only by its holder, a version moved only from an
    expected status, audit and outbox entries only if their key is new. Conditions are evaluated
    against the state before the commit; the first failed one (in item order) decides the error,
    as the adapter reads DynamoDB's cancellation reasons. Version statuses live in `registry`, the
    same table in AWS.
    """

    def __init__(self, registry: InMemoryRegistry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self.rollouts: dict[tuple[str, str], StoredRollout] = {}
        self.locks: dict[str, str] = {}
        self.lives: dict[str, LiveDeployment] = {}
        self.alarm_items: dict[str, AlarmRegistration] = {}
        self.audit: dict[tuple[str, str], EndpointAuditEntry] = {}
        self.incident_items: dict[tuple[str, str], Incident] = {}
        self.outbox: dict[tuple[str, str], Announcement] = {}
        self.answers: dict[tuple[str, str], Announcement] = {}  # commands' answers (AnswerCommand)
        # Rollouts whose index key was removed (`cleaned_up`): the adapter's sparse gsi1 no longer lists
        # them, until their record is written again (a SaveRollout puts the key back).
        self.unindexed: set[tuple[str, str]] = set()
        self.model_audit_keys: set[str] = {_model_audit_sk(entry) for entry in registry.audit}
        self.commits = 0

    # --- writes ---------------------------------------------------------------------------------

    def commit(self, changes: Sequence[Change]) -> None:
        with self._lock:
            items = [item for change in changes for item in self._items(change)]
            keys = [key for key, _, _ in items]
            if len(set(keys)) != len(keys):
                raise DuplicateTransactionItem(f"one transaction touches an item twice: {keys}")
            for _, check, _ in items:
                check()  # raises EndpointBusy or ChangeRejected, before anything is written
            for _, _, write in items:
                write()
            self.commits += 1

    def _items(self, change: Change) -> list[_Item]:
        """(key, condition check, write) per item, as the adapter's transaction items."""
        if isinstance(change, StartRollout):
            return self._start_items(change)
        if isinstance(change, SaveRollout):
            return self._save_items(change)
        if isinstance(change, ReleaseLock):
            return self._release_items(change)
        if isinstance(change, MoveVersion):
            return self._version_items(change)
        if isinstance(change, BaselineIs | ForgetLive):
            return self._baseline_items(change)
        return self._record_items(change)

    def _baseline_still(self, change: Change, endpoint_name: str, config_name: str | None) -> None:
        """As the adapter's condition: the endpoint's baseline is still the one read (on that config)."""
        live = self.lives.get(endpoint_name)
        if (live.config_name if live else None) != config_name:
            raise ChangeRejected(change, None)  # the adapter asks for no old item here

    def _baseline_items(self, change: BaselineIs | ForgetLive) -> list[_Item]:
        def still_the_one_read() -> None:
            self._baseline_still(change, change.endpoint_name, change.config_name)

        def write() -> None:
            if isinstance(change, ForgetLive):
                self.lives.pop(change.endpoint_name, None)

        return [(_endpoint_key(change.endpoint_name, "ENDPOINT"), still_the_one_read, write)]

    def _start_items(self, change: StartRollout) -> list[_Item]:
        rollout = change.rollout
        endpoint, key = rollout.endpoint_name, (rollout.endpoint_name, rollout.rollout_id)

        def lock_free() -> None:
            if endpoint in self.locks:
                raise EndpointBusy(self.locks[endpoint])

        def rollout_new() -> None:
            if key in self.rollouts:
                raise ChangeRejected(change, None)  # the adapter asks for no old item here

        return [
            (_endpoint_key(endpoint, "LOCK"), lock_free, partial(self.locks.__setitem__, endpoint, rollout.rollout_id)),
            (
                _endpoint_key(endpoint, f"ROLLOUT#{rollout.rollout_id}"),
                rollout_new,
                partial(self.rollouts.__setitem__, key, StoredRollout(rollout, change.request)),
            ),
        ]

    def _save_items(self, change: SaveRollout) -> list[_Item]:
        saved = change.rollout
        key = (saved.endpoint_name, saved.rollout_id)

        def at_revision() -> None:
            current = self.rollouts.get(key)
            if current is None or current.rollout.revision != change.expected_revision:
                raise ChangeRejected(change, _dumped(current) if current else None)

        def save() -> None:
            self.rollouts[key] = StoredRollout(saved, change.request)
            self.unindexed.discard(key)

        return [(_endpoint_key(saved.endpoint_name, f"ROLLOUT#{saved.rollout_id}"), at_revision, save)]

    def _release_items(self, change: ReleaseLock) -> list[_Item]:
        def held_by_it() -> None:
            holder = self.locks.get(change.endpoint_name)
            if holder is not None and holder != change.rollout_id:
                raise ChangeRejected(change, None)  # the adapter asks for no old item here

        return [
            (
                _endpoint_key(change.endpoint_name, "LOCK"),
                held_by_it,
                partial(self.locks.pop, change.endpoint_name, None),
            )
        ]

    def _version_items(self, change: MoveVersion) -> list[_Item]:
        audit = change.audit
        version_key = (audit.model_name, audit.version)
        audit_sk = _model_audit_sk(audit)

        def in_expected_status() -> None:
            current = self.registry.versions.get(version_key)
            if current is None or current.status not in change.expected:
                raise ChangeRejected(change, current.model_dump(mode="json") if current else None)

        def move() -> None:
            current = self.registry.versions[version_key]
            self.registry.versions[version_key] = current.model_copy(
                update={"status": audit.to_status, **dict(change.changes)}
            )

        def audit_new() -> None:
            if audit_sk in self.model_audit_keys:
                raise ChangeRejected(change, None)

        def append_audit() -> None:
            self.model_audit_keys.add(audit_sk)
            self.registry.audit.append(audit)

        return [
            ((f"MODEL#{audit.model_name}", f"VERSION#{audit.version:010d}"), in_expected_status, move),
            ((f"AUDIT#MODEL#{audit.model_name}", audit_sk), audit_new, append_audit),
        ]

    def _set_live(self, change: SetLive) -> list[_Item]:
        def still_the_one_read() -> None:
            if change.only_if_config is not None:
                self._baseline_still(change, change.endpoint_name, change.only_if_config)

        def write() -> None:
            self.lives[change.endpoint_name] = change.live

        return [(_endpoint_key(change.endpoint_name, "ENDPOINT"), still_the_one_read, write)]

    def _record_items(self, change: Change) -> list[_Item]:
        def always() -> None:
            return None

        if isinstance(change, SetLive):
            return self._set_live(change)
        if isinstance(change, RegisterAlarms):
            registration = partial(AlarmRegistration, endpoint_name=change.endpoint_name, rollout_id=change.rollout_id)
            return [
                ((f"ALARM#{name}", "ALARM"), always, partial(self.alarm_items.__setitem__, name, registration(name)))
                for name in change.alarm_names
            ]
        if isinstance(change, ForgetAlarms):
            return [
                ((f"ALARM#{name}", "ALARM"), always, partial(self.alarm_items.pop, name, None))
                for name in change.alarm_names
            ]
        if isinstance(change, RecordIncident):
            incident = change.incident
            sk = f"INCIDENT#{incident.flipped_at.isoformat(timespec='milliseconds')}#{incident.rollout_id}"
            key = (incident.endpoint_name, sk)
            return [(_endpoint_key(*key), always, partial(self.incident_items.__setitem__, key, incident))]
        if isinstance(change, Announce):
            return [
                (
                    _endpoint_key(change.endpoint_name, sk),
                    partial(self._absent, self.outbox, (change.endpoint_name, sk), change),
                    partial(self.outbox.__setitem__, (change.endpoint_name, sk), announcement),
                )
                for sk, announcement in zip(_outbox_sks(change), change.announcements, strict=True)
            ]
        if isinstance(change, AnswerCommand):
            key = (change.endpoint_name, answer_sk(change.command, change.command_id))
            return [
                (
                    _endpoint_key(*key),
                    partial(self._absent, self.answers, key, change),
                    partial(self.answers.__setitem__, key, change.answer),
                )
            ]
        if isinstance(change, AuditEndpoint):
            entry = change.entry
            keys = endpoint_audit_keys(entry)
            key = (entry.endpoint_name, keys["sk"])
            return [
                (
                    (keys["pk"], keys["sk"]),
                    partial(self._absent, self.audit, key, change),
                    partial(self.audit.__setitem__, key, entry),
                )
            ]
        if isinstance(change, RecordRefusal):
            entry = change.entry
            keys = endpoint_audit_keys(entry)
            key = (entry.endpoint_name, keys["sk"])
            return [((keys["pk"], keys["sk"]), always, partial(self.audit.__setitem__, key, entry))]
        raise TypeError(f"unknown change {change!r}")

    @staticmethod
    def _absent(items: Mapping[Any, Any], key: Any, change: Change) -> None:
        if key in items:
            raise ChangeRejected(change, None)  # put-if-new items ask for no old item

    def forget(self, announce: Announce) -> None:
        with self._lock:
            for sk in _outbox_sks(announce):
                self.outbox.pop((announce.endpoint_name, sk), None)

    def cleaned_up(self, endpoint_name: str, rollout_id: str) -> None:
        with self._lock:
            if (endpoint_name, rollout_id) in self.rollouts:  # the adapter's update is conditional on the item
                self.unindexed.add((endpoint_name, rollout_id))

    # --- reads ----------------------------------------------------------------------------------

    def active_rollouts(self) -> list[StoredRollout]:
        # The adapter reads the sparse index, ordered by "<endpoint>#<rollout id>".
        return [stored for stored in self._indexed() if not stored.rollout.phase.is_terminal]

    def rollouts_to_clean_up(self) -> list[StoredRollout]:
        # The same sparse index: a finished rollout stays listed until `cleaned_up`.
        return [stored for stored in self._indexed() if stored.rollout.phase.is_terminal]

    def _indexed(self) -> list[StoredRollout]:
        return [stored for key, stored in sorted(self.rollouts.items()) if key not in self.unindexed]

    def endpoints_owed_announcements(self) -> list[str]:
        return sorted({endpoint for endpoint, _ in self.outbox})

    def endpoint_names(self) -> list[str]:
        return sorted(self.lives)

    def managed_endpoints(self) -> list[str]:
        active = {stored.rollout.endpoint_name for stored in self.active_rollouts()}
        return sorted({*self.lives, *active})

    def get_rollout(self, endpoint_name: str, rollout_id: str) -> StoredRollout | None:
        return self.rollouts.get((endpoint_name, rollout_id))

    def latest_rollout(self, endpoint_name: str) -> StoredRollout | None:
        return next(iter(self.rollouts_of(endpoint_name)), None)

    def live(self, endpoint_name: str) -> LiveDeployment | None:
        return self.lives.get(endpoint_name)

    def endpoints_serving(self, model_resource_name: str) -> list[str]:
        serving = {name for name, live in self.lives.items() if live.variant.model_resource_name == model_resource_name}
        for stored in self.active_rollouts():
            rollout = stored.rollout
            if model_resource_name in {v.model_resource_name for v in (rollout.candidate, rollout.live) if v}:
                serving.add(rollout.endpoint_name)
        return sorted(serving)

    def alarm_registration(self, alarm_name: str) -> AlarmRegistration | None:
        return self.alarm_items.get(alarm_name)

    def lock_holder(self, endpoint_name: str) -> str | None:
        return self.locks.get(endpoint_name)

    def rollouts_of(self, endpoint_name: str, newest: int | None = None) -> list[StoredRollout]:
        mine = [
            (rollout_id, stored)
            for (endpoint, rollout_id), stored in self.rollouts.items()
            if endpoint == endpoint_name
        ]
        ordered = [stored for _, stored in sorted(mine, key=lambda pair: pair[0], reverse=True)]
        return ordered if newest is None else ordered[:newest]

    def incidents(self, endpoint_name: str) -> list[Incident]:
        return [
            incident for (endpoint, _), incident in sorted(self.incident_items.items()) if endpoint == endpoint_name
        ]

    def command_answer(self, endpoint_name: str, command: str, command_id: str) -> Announcement | None:
        return self.answers.get((endpoint_name, answer_sk(command, command_id)))

    def pending_announcements(self, endpoint_name: str) -> list[Announce]:
        groups: dict[str, list[Announcement]] = {}
        for (endpoint, sk), announcement in sorted(self.outbox.items()):
            if endpoint == endpoint_name:
                groups.setdefault(sk.removeprefix("OUTBOX#").rsplit("#", 1)[0], []).append(announcement)
        return [Announce(endpoint_name, key, tuple(announcements)) for key, announcements in groups.items()]

    def endpoint_audit_trail(self, endpoint_name: str) -> list[EndpointAuditEntry]:
        return [entry for (endpoint, _), entry in sorted(self.audit.items()) if endpoint == endpoint_name]

    def refusals(self, limit: int) -> list[EndpointAuditEntry]:
        refused = [(sk, entry) for (_, sk), entry in self.audit.items() if entry.action == REFUSED_PROMOTION]
        return [entry for _, entry in sorted(refused, reverse=True)][:limit]


def _endpoint_key(endpoint_name: str, sk: str) -> tuple[str, str]:
    return (f"ENDPOINT#{endpoint_name}", sk)


def _outbox_sks(announce: Announce) -> list[str]:
    return [f"OUTBOX#{announce.key}#{index:02d}" for index in range(len(announce.announcements))]


def _model_audit_sk(entry: AuditEntry) -> str:
    return model_audit_item(entry)["sk"]


def _dumped(stored: StoredRollout) -> dict[str, Any]:
    return {"rollout": stored.rollout.model_dump(mode="json"), "request": stored.request.model_dump(mode="json")}


def sagemaker_refusal(code: str, message: str) -> EndpointRequestRefused:
    """A SageMaker refusal for good, as the adapter raises it (`SageMakerEndpoints._raise_domain_error`)."""
    return EndpointRequestRefused(code, message)


@dataclass
class _FakeEndpoint:
    status: EndpointStatus
    config_name: str
    weights: dict[str, float]  # CurrentWeight per variant
    desired: dict[str, float]  # DesiredWeight per variant
    counts: dict[str, int] = field(default_factory=dict)  # CurrentInstanceCount per variant
    desired_counts: dict[str, int] = field(default_factory=dict)  # DesiredInstanceCount per variant
    failure_reason: str | None = None
    describes_left: int = 0
    settle: Callable[[], None] | None = None  # lands the change in progress


@dataclass(frozen=True)
class WeightMove:
    """An accepted weight change: each variant's share of the traffic before and after it, and the
    instances each variant ran (CurrentInstanceCount) when the weights moved."""

    endpoint_name: str
    shares_before: dict[str, float]
    shares_after: dict[str, float]
    running: dict[str, int]


def _shares(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {name: (100 * weight / total if total > 0 else 0.0) for name, weight in weights.items()}


@dataclass(frozen=True)
class CountChange:
    """A call that set a variant's instance count: what the variant had just before (the larger of its
    current and desired counts), what the call asks for, and whether it served traffic before and after."""

    endpoint_name: str
    variant_name: str
    before: int
    after: int
    served_before: bool
    serves_after: bool
    call: str  # "UpdateEndpoint" or "UpdateEndpointWeightsAndCapacities"


class InMemoryEndpoints:
    """`EndpointControl` as SageMaker (and the moto emulator extension) behave, in memory.

    A change (CreateEndpoint, UpdateEndpoint, UpdateEndpointWeightsAndCapacities) puts the endpoint
    in Creating/Updating for `settle_after_describes` DescribeEndpoint calls, then InService; weights
    and instance counts are Desired at once and Current when the change lands (an UpdateEndpoint
    gives every variant its config's weight and InitialInstanceCount when it lands). Changing an
    endpoint that is not InService raises EndpointStillUpdating ("Cannot update in-progress
    endpoint", as the adapter maps it); other refusals raise EndpointRequestRefused, as the adapter
    maps them. Creating a model or config that exists is done; deleting one that is gone is done.
    Given Application Auto Scaling (`scaling`), an UpdateEndpoint that removes or retypes a
    registered variant is refused (ValidationException), and deleting the endpoint deregisters its
    variants, as SageMaker does.

    Test controls beyond SageMaker's API: `fail_next_update` (an update SageMaker rolls back),
    `stuck` (endpoints whose change never lands until removed), `delete_outside` (someone deletes
    the endpoint), `autoscale` (Application Auto Scaling's own capacity change), and what was asked:
    `flips` (every accepted weight change, with the time it was accepted), `count_changes` (every
    instance count the port's calls asked for) and `unsafe_updates` (every update refused because of
    a registered variant).
    """

    def __init__(
        self,
        now: Callable[[], datetime] | None = None,
        settle_after_describes: int = 1,
        scaling: InMemoryAutoScaling | None = None,
    ) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        self.settle_after_describes = settle_after_describes
        self.scaling = scaling
        self.endpoints: dict[str, _FakeEndpoint] = {}
        self.configs: dict[str, EndpointConfigSpec] = {}
        self.models: dict[str, tuple[str, str]] = {}
        self.stuck: set[str] = set()
        self.failing_updates: dict[str, str] = {}
        self.flips: list[tuple[str, datetime, dict[str, float]]] = []
        self.count_changes: list[CountChange] = []
        self.weight_moves: list[WeightMove] = []
        self.unsafe_updates: list[str] = []

    def describe(self, endpoint_name: str) -> ObservedEndpoint | None:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            return None
        if endpoint.settle is not None and endpoint_name not in self.stuck:
            if endpoint.describes_left > 0:
                endpoint.describes_left -= 1
            else:
                self._land(endpoint)
        return ObservedEndpoint(
            status=endpoint.status,
            config_name=endpoint.config_name,
            variants=tuple(
                ObservedVariant(name, weight, endpoint.counts.get(name), endpoint.desired_counts.get(name))
                for name, weight in endpoint.weights.items()
            ),
            failure_reason=endpoint.failure_reason,
        )

    def variant_capacity(self, endpoint_name: str) -> dict[str, VariantCapacity] | None:
        """`CapacityReader`: each variant's counts as DescribeEndpoint reports them (without advancing it)."""
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            return None
        return {
            name: VariantCapacity(endpoint.counts.get(name), endpoint.desired_counts.get(name))
            for name in endpoint.weights
        }

    def ensure_model(self, name: str, image: str, artifact_uri: str) -> None:
        self.models.setdefault(name, (image, artifact_uri))

    def ensure_config(self, spec: EndpointConfigSpec) -> None:
        if self.configs.get(spec.name) == spec:
            return  # as the adapter: one that exists with other contents is written again
        for weighted in spec.variants:  # as SageMaker: a config names only models that exist
            if weighted.variant.model_resource_name not in self.models:
                raise sagemaker_refusal(
                    "ValidationException", f'Could not find model "{weighted.variant.model_resource_name}".'
                )
        self.configs[spec.name] = spec

    def create_endpoint(self, endpoint_name: str, config_name: str) -> None:
        if endpoint_name in self.endpoints:
            raise sagemaker_refusal("ValidationException", f"Cannot create already existing endpoint {endpoint_name}.")
        weights, counts = self._config_weights(config_name), self._config_counts(config_name)
        endpoint = _FakeEndpoint(
            EndpointStatus.CREATING, config_name, dict(weights), dict(weights), dict(counts), dict(counts)
        )
        self.endpoints[endpoint_name] = endpoint
        self._begin(endpoint, lambda: None)

    def update_endpoint(self, endpoint_name: str, config_name: str) -> None:
        endpoint = self._endpoint(endpoint_name)
        weights, counts = self._config_weights(config_name), self._config_counts(config_name)
        self._require_in_service(endpoint)
        self._refuse_unsafe_update(endpoint_name, endpoint, config_name)
        for variant, count in counts.items():
            if variant in endpoint.weights:
                self._note_count(endpoint_name, endpoint, variant, count, weights[variant] > 0, "UpdateEndpoint")
        failure = self.failing_updates.pop(endpoint_name, None)
        endpoint.failure_reason = None

        def land() -> None:
            if failure is None:
                endpoint.config_name, endpoint.weights, endpoint.desired = config_name, dict(weights), dict(weights)
                endpoint.counts, endpoint.desired_counts = dict(counts), dict(counts)
            else:  # SageMaker rolls a failed update back: old config and variants, and a reason
                endpoint.failure_reason = failure

        endpoint.status = EndpointStatus.UPDATING
        self._begin(endpoint, land)

    def set_weights(self, endpoint_name: str, weights: dict[str, float]) -> None:
        endpoint = self._endpoint(endpoint_name)
        self._require_in_service(endpoint)
        self._require_variants(endpoint, set(weights))
        shares_before = _shares(endpoint.desired)
        endpoint.desired.update(weights)
        self.flips.append((endpoint_name, self.now(), dict(weights)))
        self.weight_moves.append(
            WeightMove(endpoint_name, shares_before, _shares(endpoint.desired), dict(endpoint.counts))
        )
        desired = dict(endpoint.desired)
        endpoint.status = EndpointStatus.UPDATING
        self._begin(endpoint, lambda: endpoint.weights.update(desired))

    def set_capacities(self, endpoint_name: str, counts: dict[str, int]) -> None:
        """UpdateEndpointWeightsAndCapacities with DesiredInstanceCount only: weights stay as they are."""
        endpoint = self._endpoint(endpoint_name)
        self._require_in_service(endpoint)
        self._require_variants(endpoint, set(counts))
        for variant, count in counts.items():
            serves = endpoint.desired.get(variant, 0.0) > 0
            self._note_count(endpoint_name, endpoint, variant, count, serves, "UpdateEndpointWeightsAndCapacities")
        self._change_counts(endpoint, counts)

    def delete_endpoint(self, endpoint_name: str) -> None:
        self._forget_endpoint(endpoint_name)

    def delete_config(self, config_name: str) -> None:
        self.configs.pop(config_name, None)

    def delete_model(self, model_name: str) -> None:
        self.models.pop(model_name, None)

    # --- test controls --------------------------------------------------------------------------

    def fail_next_update(self, endpoint_name: str, reason: str) -> None:
        self.failing_updates[endpoint_name] = reason

    def delete_outside(self, endpoint_name: str) -> None:
        self._forget_endpoint(endpoint_name)

    def autoscale(self, endpoint_name: str, variant_name: str, count: int) -> None:
        """An Application Auto Scaling activity: the variant's DesiredInstanceCount, refused (raises
        EndpointStillUpdating) while the endpoint is changing, as SageMaker refuses any such call."""
        endpoint = self._endpoint(endpoint_name)
        self._require_in_service(endpoint)
        self._require_variants(endpoint, {variant_name})
        self._change_counts(endpoint, {variant_name: count})

    def desired_weights(self, endpoint_name: str) -> dict[str, float]:
        """The weights the endpoint serves once its change in progress lands (DesiredWeight)."""
        endpoint = self.endpoints.get(endpoint_name)
        return dict(endpoint.desired) if endpoint else {}

    def desired_counts(self, endpoint_name: str) -> dict[str, int]:
        """The instance counts the endpoint runs once its change in progress lands (DesiredInstanceCount)."""
        endpoint = self.endpoints.get(endpoint_name)
        return dict(endpoint.desired_counts) if endpoint else {}

    # --- internals ------------------------------------------------------------------------------

    def _endpoint(self, endpoint_name: str) -> _FakeEndpoint:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise sagemaker_refusal("ValidationException", f"Could not find endpoint {endpoint_name}.")
        return endpoint

    def _forget_endpoint(self, endpoint_name: str) -> None:
        self.endpoints.pop(endpoint_name, None)
        if self.scaling is not None:  # SageMaker deregisters a deleted endpoint's variants
            self.scaling.forget_endpoint(endpoint_name)

    def _config(self, config_name: str) -> EndpointConfigSpec:
        config = self.configs.get(config_name)
        if config is None:
            raise sagemaker_refusal("ValidationException", f"Could not find endpoint configuration {config_name}.")
        return config

    def _config_weights(self, config_name: str) -> dict[str, float]:
        return {
            weighted.variant.variant_name: weighted.initial_weight for weighted in self._config(config_name).variants
        }

    def _config_counts(self, config_name: str) -> dict[str, int]:
        return {
            weighted.variant.variant_name: weighted.variant.initial_instance_count
            for weighted in self._config(config_name).variants
        }

    def _refuse_unsafe_update(self, endpoint_name: str, endpoint: _FakeEndpoint, config_name: str) -> None:
        """SageMaker refuses to remove or retype a variant registered with Application Auto Scaling."""
        if self.scaling is None:
            return
        registered = self.scaling.registered_variants(endpoint_name)
        new_types = {w.variant.variant_name: w.variant.instance_type for w in self._config(config_name).variants}
        old = self.configs.get(endpoint.config_name)
        old_types = {w.variant.variant_name: w.variant.instance_type for w in old.variants} if old else {}
        blocked = sorted(
            name
            for name in registered
            if name not in new_types or (name in old_types and new_types[name] != old_types[name])
        )
        if blocked:
            message = (
                f"The variant(s) {blocked} of endpoint {endpoint_name} are registered as scalable targets: "
                f"UpdateEndpoint to {config_name} would remove or retype them"
            )
            self.unsafe_updates.append(message)
            raise sagemaker_refusal("ValidationException", message)

    def _require_variants(self, endpoint: _FakeEndpoint, names: set[str]) -> None:
        unknown = names - set(endpoint.weights)
        if unknown:
            raise sagemaker_refusal(
                "ValidationException",
                f'The variant name(s) "{", ".join(sorted(unknown))}" is/are not present within endpoint '
                f'configuration "{endpoint.config_name}".',
            )

    def _note_count(
        self, endpoint_name: str, endpoint: _FakeEndpoint, variant: str, count: int, serves_after: bool, call: str
    ) -> None:
        before = max(endpoint.counts.get(variant, 0), endpoint.desired_counts.get(variant, 0))
        served = max(endpoint.weights.get(variant, 0.0), endpoint.desired.get(variant, 0.0)) > 0
        self.count_changes.append(CountChange(endpoint_name, variant, before, count, served, serves_after, call))

    def _change_counts(self, endpoint: _FakeEndpoint, counts: dict[str, int]) -> None:
        endpoint.desired_counts.update(counts)
        desired = dict(endpoint.desired_counts)
        endpoint.status = EndpointStatus.UPDATING
        self._begin(endpoint, lambda: endpoint.counts.update(desired))

    @staticmethod
    def _require_in_service(endpoint: _FakeEndpoint) -> None:
        if endpoint.status is not EndpointStatus.IN_SERVICE:
            raise EndpointStillUpdating(f"Cannot update in-progress endpoint (it is {endpoint.status})")

    def _begin(self, endpoint: _FakeEndpoint, settle: Callable[[], None]) -> None:
        endpoint.settle, endpoint.describes_left = settle, self.settle_after_describes
        if self.settle_after_describes == 0:
            self._land(endpoint)

    @staticmethod
    def _land(endpoint: _FakeEndpoint) -> None:
        assert endpoint.settle is not None
        endpoint.settle()
        endpoint.settle = None
        endpoint.status = EndpointStatus.IN_SERVICE
        if endpoint.failure_reason:
            endpoint.desired, endpoint.desired_counts = dict(endpoint.weights), dict(endpoint.counts)


class InMemoryAutoScaling:
    """`VariantAutoScaling` as Application Auto Scaling behaves for SageMaker variants, in memory.

    Registering a registered variant updates its limits and suspended state; deregistering deletes
    its policies; a policy or suspension for a variant not registered is `NoScalableTarget`; removing
    what is absent is done. Limits must satisfy 1 <= min <= max (the adapter refuses the rest). The
    scaling itself is the test's (`InMemoryEndpoints.autoscale`), within the registered limits.
    `read_failure` makes every read raise what the adapter raises for a failed call (`TransientError`
    for throttling and 5xx, `ScalingRequestRefused` for a refusal); `reads` lists the reads.
    """

    def __init__(self) -> None:
        self.targets: dict[tuple[str, str], ScalableTarget] = {}
        self.policies: dict[tuple[str, str], dict[str, ScalingPolicy]] = {}
        self.read_failure: Exception | None = None
        self.reads: list[tuple[str, str]] = []

    def scalable_target(self, endpoint_name: str, variant_name: str) -> ScalableTarget | None:
        self._read(endpoint_name, variant_name)
        return self.targets.get((endpoint_name, variant_name))

    def scaling_policies(self, endpoint_name: str, variant_name: str) -> tuple[ScalingPolicy, ...]:
        self._read(endpoint_name, variant_name)
        return tuple(self.policies.get((endpoint_name, variant_name), {}).values())

    def _read(self, endpoint_name: str, variant_name: str) -> None:
        self.reads.append((endpoint_name, variant_name))
        if self.read_failure is not None:
            raise self.read_failure

    def register(self, target: ScalableTarget) -> None:
        if not 1 <= target.min_capacity <= target.max_capacity:
            raise ScalingRequestRefused(
                "ValidationException", f"bad limits {target.min_capacity}-{target.max_capacity}"
            )
        self.targets[(target.endpoint_name, target.variant_name)] = target

    def deregister(self, endpoint_name: str, variant_name: str) -> None:
        self.targets.pop((endpoint_name, variant_name), None)
        self.policies.pop((endpoint_name, variant_name), None)

    def put_target_tracking_policy(
        self, endpoint_name: str, variant_name: str, policy_name: str, tracking: TargetTracking
    ) -> None:
        self._registered(endpoint_name, variant_name)
        policy = ScalingPolicy(policy_name, TARGET_TRACKING, tracking)
        self.policies.setdefault((endpoint_name, variant_name), {})[policy_name] = policy

    def delete_policy(self, endpoint_name: str, variant_name: str, policy_name: str) -> None:
        self.policies.get((endpoint_name, variant_name), {}).pop(policy_name, None)

    def set_suspended(self, endpoint_name: str, variant_name: str, suspended: SuspendedState) -> None:
        target = self._registered(endpoint_name, variant_name)
        self.targets[(endpoint_name, variant_name)] = msgspec.structs.replace(target, suspended=suspended)

    # --- test view ------------------------------------------------------------------------------

    def registered_variants(self, endpoint_name: str) -> dict[str, ScalableTarget]:
        return {variant: target for (endpoint, variant), target in self.targets.items() if endpoint == endpoint_name}

    def forget_endpoint(self, endpoint_name: str) -> None:
        for variant in list(self.registered_variants(endpoint_name)):
            self.deregister(endpoint_name, variant)

    def _registered(self, endpoint_name: str, variant_name: str) -> ScalableTarget:
        target = self.targets.get((endpoint_name, variant_name))
        if target is None:
            raise NoScalableTarget("ObjectNotFoundException", f"{variant_resource_id(endpoint_name, variant_name)}")
        return target


class InMemoryAlarms:
    """`AlarmControl` in memory: alarm states the test sets, and the per-rollout alarms' dimensions."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.dimensions: dict[str, dict[str, str]] = {}

    def add(self, name: str, dimensions: dict[str, str] | None = None, state: str = "OK") -> None:
        self.states[name], self.dimensions[name] = state, dict(dimensions or {})

    def alarm_states(self, alarm_names: tuple[str, ...]) -> dict[str, str]:
        return {name: self.states[name] for name in alarm_names if name in self.states}

    def existing(self, alarm_names: tuple[str, ...]) -> frozenset[str]:
        return frozenset(name for name in alarm_names if name in self.states)

    def described(self, alarm_name: str) -> DescribedAlarm | None:
        if alarm_name not in self.states:
            return None
        dimensions = self.dimensions.get(alarm_name) or {}
        return DescribedAlarm(self.states[alarm_name], (dict(dimensions),) if dimensions else ())

    def create_rollout_alarms(
        self,
        names: tuple[str, str],
        endpoint_name: str,
        variant_name: str,
        analysis: Analysis,
        action_arns: tuple[str, ...],
    ) -> None:
        for name in names:  # PutMetricAlarm on an existing alarm keeps its state
            self.states.setdefault(name, "OK")
            self.dimensions[name] = {"EndpointName": endpoint_name, "VariantName": variant_name}

    def delete_alarms(self, alarm_names: tuple[str, ...]) -> None:
        for name in alarm_names:
            self.states.pop(name, None)
            self.dimensions.pop(name, None)


class FakeVariantMetrics:
    """`shepherd.analysis.ports.VariantMetrics` over per-minute values put in by the test.

    Like the CloudWatch adapter (contract in tests/integration/test_cloudwatch_variant_metrics.py):
    every requested series comes back, empty when nothing was put; minutes are whole UTC minutes in
    [start, end) at minute precision; `unavailable` makes every read fail as a throttled call does.
    """

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str], dict[datetime, float]] = {}  # (endpoint, variant, series id)
        self.unavailable = False
        self.calls = 0

    def put(self, endpoint_name: str, variant: str, series_id: str, at: datetime, value: float) -> None:
        self.values.setdefault((endpoint_name, variant, series_id), {})[_minute(at)] = value

    def variant_series(
        self,
        series: tuple[SeriesQuery, ...],
        endpoint_name: str,
        candidate_variant: str,
        baseline_variant: str,
        start: datetime,
        end: datetime,
    ) -> dict[str, VariantSeries]:
        self.calls += 1
        if self.unavailable:
            raise TransientError("GetMetricData: Throttling (fake)")
        low, high = _minute(start), _minute(end)

        def window(variant: str, series_id: str) -> dict[datetime, float]:
            found = self.values.get((endpoint_name, variant, series_id), {})
            return {minute: value for minute, value in found.items() if low <= minute < high}

        return {
            query.id: VariantSeries(window(candidate_variant, query.id), window(baseline_variant, query.id))
            for query in series
        }


def _minute(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(second=0, microsecond=0)


class NoAutoScaling:
    """`VariantAutoScaling` of an account where no variant is registered: every read finds nothing,
    and nothing here registers one (the domain tests' endpoints do not autoscale)."""

    def scalable_target(self, endpoint_name: str, variant_name: str) -> None:
        return None

    def scaling_policies(self, endpoint_name: str, variant_name: str) -> tuple[()]:
        return ()

    def register(self, target: object) -> None:
        raise AssertionError("nothing registers a variant in a test without auto scaling")

    def deregister(self, endpoint_name: str, variant_name: str) -> None:
        return None

    def put_target_tracking_policy(
        self, endpoint_name: str, variant_name: str, policy_name: str, tracking: object
    ) -> None:
        raise AssertionError("nothing puts a policy in a test without auto scaling")

    def delete_policy(self, endpoint_name: str, variant_name: str, policy_name: str) -> None:
        return None

    def set_suspended(self, endpoint_name: str, variant_name: str, suspended: object) -> None:
        raise AssertionError("nothing suspends scaling in a test without auto scaling")
