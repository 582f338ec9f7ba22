"""Promotion: a `Model Promotion Requested` command (or a rollback's redeploy) starts a rollout.

The version is checked deployable, the endpoint's lock taken and the rollout stored PREPARING in one
commit with the version's move to DEPLOYING; then the candidate's SageMaker model and its alarms are
made, and a second commit makes the rollout STARTING with its `Rollout Started`. The decision
(decide.py) acts on nothing PREPARING, so no rollout runs without its model or its alarms: a set-up
that failed for now is finished by Lambda's retry of the same command, one refused for good refuses
the promotion (the rollout aborts, releasing the endpoint), and one never finished fails at the
controller's deadline.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from msgspec import Struct
from msgspec.structs import replace

from shepherd.capacity.ports import VariantAutoScaling
from shepherd.contracts import PromotionRejected, RolloutStarted, TrafficStepDetail
from shepherd.kernel.clock import Clock, received_time
from shepherd.kernel.errors import TransientError
from shepherd.kernel.publisher import EventPublisher
from shepherd.registry.images import ImagePolicy
from shepherd.registry.model import AuditEntry, ModelVersion, VersionStatus
from shepherd.registry.ports import ArtifactVault, Registry
from shepherd.rollouts import naming
from shepherd.rollouts.actions import Wait
from shepherd.rollouts.errors import AlarmRequestRefused, EndpointRequestRefused
from shepherd.rollouts.failures import refused
from shepherd.rollouts.outbox import announced_ids, flush, outbox
from shepherd.rollouts.placement_rules import PlacementRules
from shepherd.rollouts.ports import (
    REFUSED_PROMOTION,
    AlarmControl,
    BaselineIs,
    Change,
    ChangeRejected,
    EndpointAuditEntry,
    EndpointBusy,
    EndpointControl,
    ForgetLive,
    MoveVersion,
    RecordRefusal,
    RegisterAlarms,
    RolloutRequest,
    RolloutStore,
    SaveRollout,
    StartRollout,
    StoredRollout,
    endpoint_audit,
    version_move,
)
from shepherd.rollouts.promotion_capacity import candidate_sizing, capacity_checked, scaling_limits
from shepherd.rollouts.promotion_checks import PromotionRefused, deployable, inference_image, outside_rules, secured
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout, VariantSpec, new_rollout, prepared
from shepherd.rollouts.strategy import InvalidStrategy, parse_strategy

logger = logging.getLogger(__name__)

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
# Decisions a promotion makes while other rollouts keep completing on its endpoint before Lambda's retry.
BASELINE_ATTEMPTS = 3


class PromotionSettings(Struct, frozen=True):
    """The stack's settings a promotion needs."""

    require_approval: bool
    default_inference_image: str | None  # None: a version's manifest must name its image
    image_policy: ImagePolicy  # checked at every promotion: the stack's rule may have changed since registration
    namespace: str  # keeps two stacks' SageMaker model names apart
    rollback_function_arn: str | None  # the per-rollout alarms' action
    placement: PlacementRules | None = None  # the stack's instance limits (None: none; the stack always sets them)


class PromotionRequest(Struct, frozen=True):
    """A promotion command, as the start_rollout function parsed it (or a rollback's redeploy)."""

    model_name: str
    version: int | Literal["latest-approved"]
    endpoint_name: str
    strategy: dict[str, Any]
    alarms: tuple[str, ...]
    instance_type: str | None  # None: as the live variant (or the defaults on a first deployment)
    initial_instance_count: int | None
    requested_by: str
    reason: str
    event_id: str
    requested_at: datetime
    is_rollback: bool = False  # a rollback may redeploy a RETIRED version
    allow_rolled_back: bool = False  # the operator asked to deploy a ROLLED_BACK version again
    replace_model: bool = False  # the deployer asked to put another model on the endpoint
    headroom: float | None = None  # the candidate's spare capacity over its share (None: DEFAULT_HEADROOM)
    min_capacity: int | None = None  # the new live variant's auto scaling limits (None: the old variant's)
    max_capacity: int | None = None


class PromotionOutcome(Struct, frozen=True):
    """What a promotion came to: a rollout started, a duplicate, or a rejection and why."""

    result: Literal["started", "duplicate", "rejected"]
    rollout_id: str
    reason: str | None = None


class _BaselineMoved(Exception):
    """The endpoint's baseline is no longer the one the promotion decided on."""


class SameRollout(Exception):
    """The lock is held by the very rollout this delivery would start (a concurrent duplicate)."""


class PromotionService(Struct):
    """Starts rollouts: checks the version and the endpoint, takes the lock, and sets the candidate up."""

    registry: Registry
    rollouts: RolloutStore
    endpoints: EndpointControl
    alarms: AlarmControl
    events: EventPublisher
    clock: Clock
    settings: PromotionSettings
    vault: ArtifactVault  # the approved copy every SageMaker model is made from
    scaling: VariantAutoScaling  # read only: the live variant's auto scaling, which the new one takes over

    def promote(self, request: PromotionRequest) -> PromotionOutcome:
        # The id comes from the command as sent (every delivery names the same rollout); the rollout's
        # clock starts no later than ours, so a future-dated command cannot skip or stretch a bake.
        rollout_id = naming.rollout_id(request.event_id, request.requested_at)
        request = replace(request, requested_at=received_time(request.requested_at, self.clock()))
        existing = self.rollouts.get_rollout(request.endpoint_name, rollout_id)
        if existing is not None:  # a redelivered command: finish what the first delivery started
            return self._duplicate(existing, request)
        try:
            stored = self._start_on_fresh_reads(request, rollout_id)
        except SameRollout:  # the same command delivered twice at once: the other delivery started it
            started = self.rollouts.get_rollout(request.endpoint_name, rollout_id)
            assert started is not None, "the lock names a rollout that is stored in the same transaction"
            return self._duplicate(started, request)
        except PromotionRefused as refused:
            return self._reject(request, rollout_id, refused)
        return self._set_up(stored, request)

    def _record_refusal(self, request: PromotionRequest, rollout_id: str, refused: PromotionRefused) -> None:
        """Keep the refusal where `shepherd rejections`, `status` and `history` find it, whoever sent the
        command: the announcement alone is gone once heard (or missed)."""
        version = refused.version if refused.version is not None else request.version
        entry = EndpointAuditEntry(
            endpoint_name=request.endpoint_name,
            rollout_id=rollout_id,
            action=REFUSED_PROMOTION,
            model_name=request.model_name,
            version=version if isinstance(version, int) else None,
            detail=refused.reason,
            actor=request.requested_by,
            at=request.requested_at,
            event_id=request.event_id,
        )
        self.rollouts.commit([RecordRefusal(entry)])

    def _reject(self, request: PromotionRequest, rollout_id: str, refused: PromotionRefused) -> PromotionOutcome:
        self._record_refusal(request, rollout_id, refused)
        self.events.publish(
            PromotionRejected(
                rollout_id=rollout_id,
                endpoint_name=request.endpoint_name,
                model_name=request.model_name,
                version=refused.version,
                reason=refused.reason,
                requested_by=request.requested_by,
                active_rollout_id=refused.active_rollout_id,
            )
        )
        logger.warning("promotion rejected", extra={"rollout_id": rollout_id, "reason": refused.reason})
        return PromotionOutcome("rejected", rollout_id, refused.reason)

    def _duplicate(self, existing: StoredRollout, request: PromotionRequest) -> PromotionOutcome:
        if existing.rollout.phase is Phase.PREPARING:  # the first delivery failed before it was set up
            return self._set_up(existing, request)
        flush(self.rollouts, self.events, existing.rollout.endpoint_name)
        return PromotionOutcome("duplicate", existing.rollout.rollout_id)

    def _set_up(self, stored: StoredRollout, request: PromotionRequest) -> PromotionOutcome:
        """Make the candidate's model and alarms, then hand the rollout to the controller (STARTING).

        Throttling, 5xx and the like raise: Lambda's retry of the same command finishes the set-up (the
        record stays PREPARING, which the controller does not act on). A refusal for good refuses the
        promotion: the rollout aborts (the controller ends it at once, releasing the endpoint, with
        `Rollout Failed`) and the command is answered `Promotion Rejected` with the reason.
        """
        rollout = stored.rollout
        try:
            self._prepare(rollout)
        except (EndpointRequestRefused, AlarmRequestRefused) as refusal:
            return self._set_up_refused(stored, request, refusal.reason)
        ready = prepared(rollout, request.requested_at)
        owed = outbox(ready, _started(StoredRollout(ready, stored.request)))
        try:
            self.rollouts.commit([SaveRollout(ready, stored.request, rollout.revision), owed])
        except ChangeRejected:  # another delivery set it up, or an abort came first: it is that rollout's now
            flush(self.rollouts, self.events, rollout.endpoint_name)
            return PromotionOutcome("duplicate", rollout.rollout_id)
        # The controller subscribes to "Rollout Started" and takes the first step at once.
        flush(self.rollouts, self.events, rollout.endpoint_name)
        return PromotionOutcome("started", rollout.rollout_id)

    def _set_up_refused(self, stored: StoredRollout, request: PromotionRequest, why: str) -> PromotionOutcome:
        rollout = stored.rollout
        reason = f"could not set the rollout up: {why}"
        aborting = refused(rollout, request.requested_at, reason)
        if not isinstance(aborting, Wait):
            audit = endpoint_audit(aborting.next, "aborting", reason, request.requested_at, request.event_id)
            try:
                self.rollouts.commit([SaveRollout(aborting.next, stored.request, rollout.revision), audit])
            except ChangeRejected:  # set up, or aborted, by another writer meanwhile: it is theirs
                return PromotionOutcome("duplicate", rollout.rollout_id)
        refusal = PromotionRefused(reason, rollout.version)
        return self._reject(request, rollout.rollout_id, refusal)

    def _start_on_fresh_reads(self, request: PromotionRequest, rollout_id: str) -> StoredRollout:
        """`_start`, decided again from fresh reads when the endpoint's baseline moved between its reads
        and its commit (another rollout completed meanwhile); a few times, then Lambda retries."""
        for _ in range(BASELINE_ATTEMPTS):
            try:
                return self._start(request, rollout_id)
            except _BaselineMoved:
                logger.info(
                    "endpoint baseline changed while starting; deciding again", extra={"rollout_id": rollout_id}
                )
        raise TransientError(f"the baseline of {request.endpoint_name} kept changing while the promotion started")

    def _start(self, request: PromotionRequest, rollout_id: str) -> StoredRollout:
        try:
            strategy = parse_strategy(request.strategy)
        except InvalidStrategy as invalid:
            raise PromotionRefused(f"invalid strategy: {invalid.reason}") from None
        version = self._resolve(request)
        live = self.rollouts.live(request.endpoint_name)
        exists = self.endpoints.describe(request.endpoint_name) is not None
        # Deleted outside Shepherd: a first deployment (its baseline is dropped in the same commit).
        deleted = live if live is not None and not exists else None
        # The version recorded LIVE there serves nothing any more: it may be deployed again.
        redeploy = deleted is not None and (deleted.model_name, deleted.version) == (
            version.model_name,
            version.version,
        )
        allowed = deployable(request, self.settings) + ((VersionStatus.LIVE,) if redeploy else ())
        if version.status not in allowed:
            how = (
                " (to deploy a rolled-back version again, promote it with --allow-rolled-back: "
                "allow_rolled_back true in the command)"
                if version.status is VersionStatus.ROLLED_BACK
                else ""
            )
            raise PromotionRefused(
                f"{version.model_name} version {version.version} is {version.status.value}; "
                f"only {' or '.join(status.value for status in allowed)} versions can be promoted{how}",
                version.version,
            )
        inference_image(version, self.settings)
        version = secured(version, self.vault, self.registry)  # before the lock: a refusal leaves nothing held
        missing = set(request.alarms) - self.alarms.existing(request.alarms)
        if missing:
            raise PromotionRefused(f"alarms do not exist: {', '.join(sorted(missing))}", version.version)
        if live is None and exists:
            if self.rollouts.live(request.endpoint_name) is not None:
                raise _BaselineMoved  # a first deployment completed after the read: decide again
            raise self._no_baseline_refusal(request.endpoint_name, rollout_id, version.version)
        known = live or deleted  # capacity as the live variant's; the defaults only for a new endpoint
        candidate = VariantSpec.for_version(
            version.model_name,
            version.version,
            instance_type=request.instance_type or (known.variant.instance_type if known else DEFAULT_INSTANCE_TYPE),
            initial_instance_count=request.initial_instance_count
            or (known.variant.initial_instance_count if known else 1),
            namespace=self.settings.namespace,
        )
        if deleted is not None:
            live = None
        refusal = outside_rules(request, version, known, candidate, live, self.rollouts, self.settings.placement)
        if refusal is not None:
            raise PromotionRefused(refusal, version.version)
        if live is not None and live.variant.variant_name == candidate.variant_name:
            raise PromotionRefused(
                f"{version.model_name} version {version.version} is already live on {request.endpoint_name}",
                version.version,
            )
        autoscaled = capacity_checked(request, version.version, live, candidate, self.scaling, self.settings.placement)
        per_rollout_alarms = naming.rollout_alarm_names(self.settings.namespace, request.endpoint_name, rollout_id)
        # PREPARING until its model and alarms exist (_set_up): the controller does not act on it before.
        rollout = new_rollout(
            rollout_id=rollout_id,
            endpoint_name=request.endpoint_name,
            model_name=version.model_name,
            version=version.version,
            strategy=strategy,
            candidate=candidate,
            live=live,
            now=request.requested_at,
            gating_alarms=(*request.alarms, *per_rollout_alarms),
        ).model_copy(
            update={
                "phase": Phase.PREPARING,
                "sizing": candidate_sizing(request, live, autoscaled),
                "scaling_limits": scaling_limits(request),
            }
        )
        reason = request.reason
        if version.status is VersionStatus.ROLLED_BACK:  # allowed explicitly: the audit says so
            reason = f"{reason} (promoted again after its rollback: allow_rolled_back)"
        stored = StoredRollout(
            rollout, RolloutRequest(requested_by=request.requested_by, reason=reason, event_id=request.event_id)
        )
        # The SageMaker model and the alarms are made after the lock is taken (in _set_up): a refused
        # promotion leaves nothing behind. "Rollout Started" is owed by the commit that ends the set-up.
        changes: list[Change] = [
            StartRollout(rollout, stored.request),
            # Conditional on the status read above, which the audit entry names as its `from`
            # (a RETIRED version redeployed by a rollback is audited RETIRED -> DEPLOYING).
            version_move(
                rollout, rollout.version, (version.status,), VersionStatus.DEPLOYING, stored, rollout.started_at
            ),
            RegisterAlarms(rollout.endpoint_name, rollout_id, per_rollout_alarms),
            *_baseline_changes(live, deleted, stored, redeploy=redeploy),
            endpoint_audit(
                rollout, "started", _plan_text(rollout), rollout.started_at, request.event_id, request.requested_by
            ),
        ]
        self._commit_start(changes, rollout, version)
        return stored

    def _commit_start(self, changes: list[Change], rollout: Rollout, version: ModelVersion) -> None:
        """Take the endpoint's lock and store the rollout in one commit; a lost condition says which."""
        try:
            self.rollouts.commit(changes)
        except EndpointBusy as busy:
            if busy.active_rollout_id == rollout.rollout_id:
                raise SameRollout from None
            raise PromotionRefused(
                f"endpoint {rollout.endpoint_name} has an active rollout {busy.active_rollout_id}",
                version.version,
                busy.active_rollout_id,
            ) from None
        except ChangeRejected as rejected:
            if isinstance(rejected.change, BaselineIs | ForgetLive):
                raise _BaselineMoved from None
            current = self.registry.get_version(version.model_name, version.version)
            status = current.status.value if current else "gone"
            raise PromotionRefused(
                f"{version.model_name} version {version.version} changed to {status} meanwhile", version.version
            ) from None

    def _no_baseline_refusal(self, endpoint_name: str, rollout_id: str, version: int) -> Exception:
        """Why an endpoint that exists with no baseline cannot take a rollout: Shepherd's own first
        deployment is still on it (busy, like any held endpoint), or its clean-up is removing it; only
        otherwise did someone else deploy it."""
        holder = self.rollouts.lock_holder(endpoint_name)
        if holder == rollout_id:
            return SameRollout()
        if holder is not None:
            return PromotionRefused(f"endpoint {endpoint_name} has an active rollout {holder}", version, holder)
        latest = self.rollouts.latest_rollout(endpoint_name)
        if latest is not None and latest.rollout.is_first_deployment and latest.rollout.phase.is_terminal:
            ended = latest.rollout
            return PromotionRefused(
                f"endpoint {endpoint_name} is being removed after rollout {ended.rollout_id} (a first deployment "
                f"that ended {ended.phase.value}): promote again once it is gone",
                version,
            )
        return PromotionRefused(f"endpoint {endpoint_name} exists but was not deployed by Shepherd", version)

    def _resolve(self, request: PromotionRequest) -> ModelVersion:
        if request.version != "latest-approved":
            found = self.registry.get_version(request.model_name, request.version)
            if found is None:
                raise PromotionRefused(f"{request.model_name} has no version {request.version}", request.version)
            return found
        cursor = None
        while True:
            page = self.registry.list_versions(request.model_name, 50, cursor)
            for version in page.items:
                if version.status is VersionStatus.APPROVED:
                    return version
            cursor = page.next_cursor
            if cursor is None:
                raise PromotionRefused(f"{request.model_name} has no APPROVED version")

    def _prepare(self, rollout: Rollout) -> None:
        """Idempotent set-up after the lock is held: the candidate's SageMaker model (which must exist
        before any endpoint config names it), and its alarms pointing at the rollback (deterministic
        names: a retry creates or updates the same ones)."""
        version = self.registry.get_version(rollout.model_name, rollout.version)
        if version is None:
            raise LookupError(f"{rollout.model_name} version {rollout.version} of rollout {rollout.rollout_id} is gone")
        version = secured(version, self.vault, self.registry)  # a rollout started before approved copies existed
        approved = version.approved_artifact
        assert approved is not None, "_secured records the approved copy or refuses"
        self.endpoints.ensure_model(
            rollout.candidate.model_resource_name, inference_image(version, self.settings), approved.uri
        )
        actions = (self.settings.rollback_function_arn,) if self.settings.rollback_function_arn else ()
        self.alarms.create_rollout_alarms(
            naming.rollout_alarm_names(self.settings.namespace, rollout.endpoint_name, rollout.rollout_id),
            rollout.endpoint_name,
            rollout.candidate.variant_name,
            rollout.strategy.analysis,
            actions,
        )


def _baseline_changes(
    live: LiveDeployment | None, deleted: LiveDeployment | None, stored: StoredRollout, *, redeploy: bool
) -> tuple[Change, ...]:
    """The start's hold on the endpoint's baseline as read: dropped, for an endpoint deleted outside
    Shepherd; otherwise unchanged since the read (a rollout that completed meanwhile changed it)."""
    if deleted is not None:
        return _forget_deleted(deleted, stored, retire=not redeploy)
    return (BaselineIs(stored.rollout.endpoint_name, live.config_name if live else None),)


def _forget_deleted(deleted: LiveDeployment, stored: StoredRollout, *, retire: bool) -> tuple[Change, ...]:
    """The records of an endpoint deleted outside Shepherd: no baseline, its version no longer LIVE
    (retired; or, deployed again by this rollout, moved LIVE -> DEPLOYING by the rollout's start)."""
    if not retire:
        return (ForgetLive(stored.rollout.endpoint_name, deleted.config_name),)
    rollout = stored.rollout
    retired = AuditEntry(
        model_name=deleted.model_name,
        version=deleted.version,
        action="retired",
        from_status=VersionStatus.LIVE,
        to_status=VersionStatus.RETIRED,
        actor=stored.request.requested_by,
        at=rollout.started_at,
        event_id=stored.request.event_id,
        reason=f"endpoint {rollout.endpoint_name} was deleted outside Shepherd",
        endpoint_name=rollout.endpoint_name,
        rollout_id=rollout.rollout_id,
    )
    return ForgetLive(rollout.endpoint_name, deleted.config_name), MoveVersion(
        expected=(VersionStatus.LIVE,), audit=retired
    )


def _plan_text(rollout: Rollout) -> str:
    steps = ", ".join(f"{step.percent}% (bake {step.bake_seconds}s)" for step in rollout.plan)
    return f"plan {steps}; watch {rollout.post_deploy_watch_seconds}s"


def _started(stored: StoredRollout) -> RolloutStarted:
    rollout = stored.rollout
    return RolloutStarted(
        **announced_ids(rollout),
        strategy=rollout.strategy.model_dump(mode="json"),
        plan=[TrafficStepDetail(percent=s.percent, bake_seconds=s.bake_seconds) for s in rollout.plan],
        post_deploy_watch_seconds=rollout.post_deploy_watch_seconds,
        alarms=list(rollout.gating_alarms),
        requested_by=stored.request.requested_by,
        reason=stored.request.reason,
    )
