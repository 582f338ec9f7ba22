"""Rollout use cases: start a promotion, and move every active rollout forward (the controller).

The controller's decisions are the pure `controller.decide`; this module observes (DescribeEndpoint,
alarm states), carries each action out, and commits the next record together with the version
statuses, the lock and the audit trail it implies, then announces. Act first, then write: a crash
in between is repaired on the next tick, which sees the endpoint already changed. Each rollout's pass
is isolated from the others' failures; SageMaker refusing a call for good fails that rollout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from msgspec import Struct
from msgspec.structs import replace

from shepherd.analysis.observations import Observations
from shepherd.analysis.ports import MetricsUnavailable, VariantMetrics
from shepherd.contracts import (
    Announcement,
    CanaryAnalysisCompleted,
    ModelVersionRetired,
    PromotionRejected,
    RolloutCompleted,
    RolloutFailed,
    RolloutResumed,
    RolloutResumeRefused,
    RolloutStarted,
    RolloutTrafficShifted,
    TrafficStepDetail,
)
from shepherd.registry.errors import TransientError
from shepherd.registry.model import AuditEntry, ModelVersion, VersionStatus
from shepherd.registry.ports import Clock, EventPublisher, Registry
from shepherd.rollouts import naming
from shepherd.rollouts.clock import received_time
from shepherd.rollouts.controller import (
    Action,
    Complete,
    CreateEndpoint,
    DeleteEndpoint,
    EndpointStatus,
    Fail,
    FinishRollback,
    LiveDeployment,
    ObservedEndpoint,
    Phase,
    RecordProgress,
    Rollout,
    ShiftTraffic,
    UpdateEndpoint,
    VariantSpec,
    Wait,
    decide,
    failing_too_long,
    new_rollout,
    recovered,
    refused,
    still_failing,
)
from shepherd.rollouts.errors import EndpointRequestRefused, EndpointStillUpdating
from shepherd.rollouts.outbox import deliver, flush, outbox
from shepherd.rollouts.ports import (
    AlarmControl,
    Announce,
    Change,
    ChangeRejected,
    EndpointBusy,
    EndpointControl,
    ForgetAlarms,
    ForgetLive,
    MoveVersion,
    RegisterAlarms,
    ReleaseLock,
    RolloutRequest,
    RolloutStore,
    SaveRollout,
    SetLive,
    StartRollout,
    StoredRollout,
    endpoint_audit,
    version_move,
)
from shepherd.rollouts.rollback_cause import ANALYSIS_TRIGGER, RollbackCause
from shepherd.rollouts.step_analysis import StepAnalysis, analyse, charted
from shepherd.rollouts.strategy import InvalidStrategy, parse_strategy

logger = logging.getLogger(__name__)

# Decisions per rollout per tick: enough to record a reached step and request the next one
# without waiting a scheduler minute, bounded so one rollout cannot starve the others.
MAX_DECISIONS_PER_TICK = 6


class RolloutSettings(Struct, frozen=True):
    """The stack's settings the rollout service needs."""

    require_approval: bool
    default_inference_image: str
    namespace: str  # keeps two stacks' SageMaker model names apart
    rollback_function_arn: str | None  # the per-rollout alarms' action


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


class PromotionOutcome(Struct, frozen=True):
    """What a promotion came to: a rollout started, a duplicate, or a rejection and why."""

    result: Literal["started", "duplicate", "rejected"]
    rollout_id: str
    reason: str | None = None


class TickReport(Struct, frozen=True):
    """What one controller pass did to each rollout."""

    results: dict[str, str]  # rollout id -> what its pass did last ("error" when it failed)
    errors: int  # rollouts whose pass failed (logged); the next tick tries them again


class ResumeRequest(Struct, frozen=True):
    """An operator's ``Model Rollout Resume Requested``."""

    endpoint_name: str
    rollout_id: str
    requested_by: str
    reason: str
    event_id: str
    requested_at: datetime


class PromotionRefused(Exception):
    def __init__(self, reason: str, version: int | None = None, active_rollout_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.version = version
        self.active_rollout_id = active_rollout_id


class _RecordMoved(Exception):
    """Before a forward change the record was found written by someone else (a rollback's abort)."""

    def __init__(self, fresh: StoredRollout) -> None:
        super().__init__(fresh.rollout.rollout_id)
        self.fresh = fresh


class SameRollout(Exception):
    """The lock is held by the very rollout this delivery would start (a concurrent duplicate)."""


class RolloutService(Struct):
    """Starts rollouts and moves every active one forward (the controller)."""

    registry: Registry
    rollouts: RolloutStore
    endpoints: EndpointControl
    alarms: AlarmControl
    events: EventPublisher
    clock: Clock
    settings: RolloutSettings
    sleep: Callable[[float], None] = time.sleep  # waiting for a busy endpoint to flip back
    # Both variants' per-minute metrics for the canary judge (None: never readable, as in an outage).
    metrics: VariantMetrics | None = None
    # The rollback function's fast path, for a judge that fails the candidate (wired by bootstrap:
    # RollbackService depends on this service, so it is passed in rather than built here).
    analysis_rollback: Callable[[StoredRollout, RollbackCause], object] | None = None
    metrics_failures: int = 0  # GetMetricData failures seen by this process (logged each time)

    # --- promotion ------------------------------------------------------------------------------

    def promote(self, request: PromotionRequest) -> PromotionOutcome:
        # The id comes from the command as sent (every delivery names the same rollout); the rollout's
        # clock starts no later than ours, so a future-dated command cannot skip or stretch a bake.
        rollout_id = naming.rollout_id(request.event_id, request.requested_at)
        request = replace(request, requested_at=received_time(request.requested_at, self.clock()))
        existing = self.rollouts.get_rollout(request.endpoint_name, rollout_id)
        if existing is not None:  # a redelivered command: finish what the first delivery started
            return self._duplicate(existing)
        try:
            stored = self._start(request, rollout_id)
        except SameRollout:  # the same command delivered twice at once: the other delivery started it
            started = self.rollouts.get_rollout(request.endpoint_name, rollout_id)
            assert started is not None, "the lock names a rollout that is stored in the same transaction"
            return self._duplicate(started)
        except PromotionRefused as refused:
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
        self._prepare(stored.rollout)
        # The controller subscribes to "Rollout Started" and takes the first step at once.
        self.flush(request.endpoint_name)
        return PromotionOutcome("started", rollout_id)

    def _duplicate(self, existing: StoredRollout) -> PromotionOutcome:
        self._prepare(existing.rollout)
        self.flush(existing.rollout.endpoint_name)
        return PromotionOutcome("duplicate", existing.rollout.rollout_id)

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
        allowed = self._deployable(request) + ((VersionStatus.LIVE,) if redeploy else ())
        if version.status not in allowed:
            raise PromotionRefused(
                f"{version.model_name} version {version.version} is {version.status.value}; "
                f"only {' or '.join(status.value for status in allowed)} versions can be promoted",
                version.version,
            )
        missing = set(request.alarms) - self.alarms.existing(request.alarms)
        if missing:
            raise PromotionRefused(f"alarms do not exist: {', '.join(sorted(missing))}", version.version)
        if live is None and exists:
            raise PromotionRefused(
                f"endpoint {request.endpoint_name} exists but was not deployed by Shepherd", version.version
            )
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
        if live is not None and live.variant.variant_name == candidate.variant_name:
            raise PromotionRefused(
                f"{version.model_name} version {version.version} is already live on {request.endpoint_name}",
                version.version,
            )
        per_rollout_alarms = rollout_alarm_names(self.settings.namespace, request.endpoint_name, rollout_id)
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
        )
        stored = StoredRollout(
            rollout, RolloutRequest(requested_by=request.requested_by, reason=request.reason, event_id=request.event_id)
        )
        # The SageMaker model is created after the lock is taken (in _prepare): a refused promotion
        # leaves nothing behind.
        try:
            self.rollouts.commit(
                [
                    StartRollout(rollout, stored.request),
                    # Conditional on the status read above, which the audit entry names as its `from`
                    # (a RETIRED version redeployed by a rollback is audited RETIRED -> DEPLOYING).
                    version_move(
                        rollout, rollout.version, (version.status,), VersionStatus.DEPLOYING, stored, rollout.started_at
                    ),
                    RegisterAlarms(rollout.endpoint_name, rollout_id, per_rollout_alarms),
                    *(_forget_deleted(deleted, stored, retire=not redeploy) if deleted else ()),
                    outbox(rollout, _started(stored)),
                    endpoint_audit(
                        rollout,
                        "started",
                        _plan_text(rollout),
                        rollout.started_at,
                        request.event_id,
                        request.requested_by,
                    ),
                ]
            )
        except EndpointBusy as busy:
            if busy.active_rollout_id == rollout_id:
                raise SameRollout from None
            raise PromotionRefused(
                f"endpoint {request.endpoint_name} has an active rollout {busy.active_rollout_id}",
                version.version,
                busy.active_rollout_id,
            ) from None
        except ChangeRejected:
            current = self.registry.get_version(version.model_name, version.version)
            status = current.status.value if current else "gone"
            raise PromotionRefused(
                f"{version.model_name} version {version.version} changed to {status} meanwhile", version.version
            ) from None
        return stored

    def _deployable(self, request: PromotionRequest) -> tuple[VersionStatus, ...]:
        if request.is_rollback:
            return (VersionStatus.APPROVED, VersionStatus.RETIRED)
        if self.settings.require_approval:
            return (VersionStatus.APPROVED,)
        return (VersionStatus.APPROVED, VersionStatus.REGISTERED)

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

    def flush(self, endpoint_name: str) -> None:
        """Publish what earlier commits on this endpoint still owe (a publish that failed after them)."""
        flush(self.rollouts, self.events, endpoint_name)

    def deliver(self, announce: Announce) -> None:
        deliver(self.rollouts, self.events, announce)

    def _prepare(self, rollout: Rollout) -> None:
        """Idempotent set-up after the lock is held: the candidate's SageMaker model (which must exist
        before any endpoint config names it), and its alarms pointing at the rollback."""
        if rollout.phase.is_terminal:
            return
        version = self.registry.get_version(rollout.model_name, rollout.version)
        if version is None:
            raise LookupError(f"{rollout.model_name} version {rollout.version} of rollout {rollout.rollout_id} is gone")
        self.endpoints.ensure_model(
            rollout.candidate.model_resource_name,
            version.inference_image or self.settings.default_inference_image,
            version.artifact.uri,
        )
        actions = (self.settings.rollback_function_arn,) if self.settings.rollback_function_arn else ()
        self.alarms.create_rollout_alarms(
            _own_alarms(self.settings.namespace, rollout),
            rollout.endpoint_name,
            rollout.candidate.variant_name,
            rollout.strategy.analysis,
            actions,
        )

    # --- the controller -------------------------------------------------------------------------

    def tick(self, now: datetime, event_id: str) -> TickReport:
        """One controller pass over every active rollout, each isolated from the others' failures."""
        now = received_time(now, self.clock())
        results: dict[str, str] = {}
        errors = 0
        # Announcements a finished rollout still owes first (its endpoint may never be ticked again),
        # then every active rollout, then the clean-up finished rollouts still need.
        passes: list[tuple[str, Callable[[], str]]] = [
            (f"outbox {endpoint}", partial(self.flush_announcements, endpoint))
            for endpoint in self.rollouts.endpoints_owed_announcements()
        ]
        passes += [
            (s.rollout.rollout_id, partial(self._reconcile, s, now, event_id)) for s in self.rollouts.active_rollouts()
        ]
        passes += [
            (f"clean-up {s.rollout.rollout_id}", partial(self._clean_up, s.rollout))
            for s in self.rollouts.rollouts_to_clean_up()
        ]
        for name, run in passes:
            try:
                outcome = run()
            except Exception:  # one rollout's failure must never stop another's (I5)
                # Logged with its traceback and counted (the handler's RolloutErrors metric); the
                # record is as the last commit left it, so the next tick decides again from there.
                logger.exception("rollout pass failed; the next tick tries again", extra={"pass": name})
                outcome = "error"
                errors += 1
            if not name.startswith(("outbox ", "clean-up ")) or outcome == "error":
                results[name] = outcome
        return TickReport(results, errors)

    def flush_announcements(self, endpoint_name: str) -> str:
        self.flush(endpoint_name)
        return "published"

    def _reconcile(self, stored: StoredRollout, now: datetime, event_id: str) -> str:
        self.flush(stored.rollout.endpoint_name)
        outcome = "waiting"
        if stored.rollout.judged:
            stored, judged = self._judge(stored, now, event_id)
            outcome = judged or outcome
        for _ in range(MAX_DECISIONS_PER_TICK):
            rollout = stored.rollout
            try:
                action = self._next_action(stored, now)
            except _RecordMoved as moved:
                stored, outcome = moved.fresh, "raced"
                continue
            if action is None:
                return "raced"
            if isinstance(action, Wait):
                logger.info("rollout waits", extra={"rollout_id": rollout.rollout_id, "reason": action.reason})
                if rollout.failing_since is not None:  # this pass failed nothing: the failure clock stops
                    self._save_quietly(stored, recovered(rollout, now))
                return outcome
            changes, announcements = self._consequences(stored, action, now, event_id)
            owed = outbox(action.next, *announcements)
            changes.append(owed)
            try:
                self.rollouts.commit(changes)
            except ChangeRejected:
                # Another writer (a rollback, a concurrent tick) changed the record since it was read:
                # decide again from the fresh record, which undoes anything this action got wrong.
                logger.info("lost a race for the rollout record", extra={"rollout_id": rollout.rollout_id})
                fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
                if fresh is None:
                    return "raced"
                self._undo_lost_step(action, fresh.rollout)
                stored = fresh
                outcome = "raced"
                continue
            self.deliver(owed)
            outcome = type(action).__name__
            stored = StoredRollout(action.next, stored.request)
            if action.next.phase.is_terminal:
                self._clean_up(action.next)
                return outcome
        return outcome

    # --- the canary judge -------------------------------------------------------------------------

    def _judge(self, stored: StoredRollout, now: datetime, event_id: str) -> tuple[StoredRollout, str | None]:
        """Look at the baking step's metrics, record the verdict, and roll back if it says so.

        The record the controller then decides from holds the step's decision: it advances only on
        ``advance`` and waits otherwise (step_analysis.py). A lost race just keeps the fresh record.
        """
        rollout = stored.rollout
        previous = rollout.step_analysis()
        entry = previous
        if previous is None or previous.decision is None:
            entry = self._look(rollout, previous, now)
            record = rollout.with_step_analysis(entry).model_copy(
                update={"revision": rollout.revision + 1, "updated_at": max(now, rollout.updated_at)}
            )
            announcements = [_analysis_completed(record, entry)] if entry.decision else []
            owed = outbox(record, *announcements)
            changes: list[Change] = [SaveRollout(record, stored.request, rollout.revision), owed]
            if entry.decision:
                changes.append(endpoint_audit(record, "canary analysis", _analysis_text(entry), now, event_id))
            try:
                self.rollouts.commit(changes)
            except ChangeRejected:
                fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
                return (fresh or stored), "raced"
            self.deliver(owed)
            stored = StoredRollout(record, stored.request)
        assert entry is not None
        if entry.decision != "rollback" or self.analysis_rollback is None:
            return stored, None
        cause = RollbackCause(
            trigger=ANALYSIS_TRIGGER,
            alarm_name=None,
            reason=entry.reason,
            requested_at=entry.decided_at or now,
            # The same id on every try, so a retry finishes its own abort rather than being a duplicate.
            event_id=f"{rollout.rollout_id}-analysis-{entry.step}",
            verdict=entry.verdict,
        )
        self.analysis_rollback(stored, cause)
        fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
        return (fresh or stored), "rolled back by analysis"

    def _look(self, rollout: Rollout, previous: StepAnalysis | None, now: datetime) -> StepAnalysis:
        """The judge's verdict on everything since the step began (one GetMetricData call)."""
        # Imported by the first step judged, not at every cold start: most ticks judge nothing, and the
        # rollback and start_rollout functions never do.
        from shepherd.analysis.judge import judge

        config = rollout.strategy.analysis.judge
        metrics = config.judged_metrics()
        assert rollout.live is not None and rollout.step_started_at is not None and rollout.bake_ends_at is not None
        observations: Observations | None
        try:
            if self.metrics is None:
                raise TransientError("no metrics reader is configured")
            observations = self.metrics.variant_series(
                config.series(),
                rollout.endpoint_name,
                rollout.candidate.variant_name,
                rollout.live.variant_name,
                rollout.step_started_at,
                now,
            )
        except (TransientError, MetricsUnavailable) as failure:
            # No new data, not a verdict: the bake is extended, and an outage never rolls back.
            self.metrics_failures += 1
            logger.warning(
                "canary metrics unavailable; judged as no new data",
                extra={"rollout_id": rollout.rollout_id, "reason": str(failure), "failures": self.metrics_failures},
            )
            observations = None
        verdict = judge(metrics, observations, config.false_rollback_rate) if observations is not None else None
        paired = tuple(metric.series for metric in metrics if metric.kind == "paired")
        return analyse(
            previous,
            step=rollout.step_index,
            percent=rollout.target_percent,
            bake_ends_at=rollout.bake_ends_at,
            config=config,
            verdict=verdict,
            unavailable_verdict=judge(metrics, {}, config.false_rollback_rate),
            series=charted(observations or {}, paired),
            now=now,
        )

    def resume(self, request: ResumeRequest) -> str:
        """An operator resumes a rollout the judge held: its step's decision becomes advance.

        Answered either way (the CLI waits): ``Rollout Resumed`` through the outbox with the record,
        or ``Rollout Resume Refused`` saying why. Returns the answer's detail-type.
        """
        stored = self.rollouts.get_rollout(request.endpoint_name, request.rollout_id)
        entry = stored.rollout.step_analysis() if stored and stored.rollout.judged else None
        if stored is None or entry is None or entry.decision != "hold":
            if stored is None:
                why = f"{request.endpoint_name} has no rollout {request.rollout_id}"
            else:
                why = f"rollout {request.rollout_id} is {stored.rollout.phase}, not held by canary analysis"
            refusal = RolloutResumeRefused(
                endpoint_name=request.endpoint_name,
                rollout_id=request.rollout_id,
                reason=why,
                command_id=request.event_id,
            )
            self.events.publish(refusal)
            return refusal.DETAIL_TYPE
        rollout = stored.rollout
        resumed = entry.model_copy(update={"decision": "advance", "resumed_by": request.requested_by})
        at = max(received_time(request.requested_at, self.clock()), rollout.updated_at)
        record = rollout.with_step_analysis(resumed).model_copy(
            update={"revision": rollout.revision + 1, "updated_at": at}
        )
        detail = f"resumed at {rollout.target_percent}% ({entry.verdict.outcome}): {request.reason}"
        answer = RolloutResumed(
            **_ids(record),
            percent=rollout.target_percent,
            requested_by=request.requested_by,
            reason=request.reason,
            command_id=request.event_id,
        )
        owed = outbox(record, answer)
        self.rollouts.commit(
            [
                SaveRollout(record, stored.request, rollout.revision),
                endpoint_audit(record, "resumed", detail, at, request.event_id, request.requested_by),
                owed,
            ]
        )  # ChangeRejected (a tick wrote meanwhile) propagates: the event is retried on the fresh record
        self.deliver(owed)
        return answer.DETAIL_TYPE

    def _next_action(self, stored: StoredRollout, now: datetime) -> Action | None:
        """The action taken (its SageMaker calls made); None when another writer is changing the endpoint."""
        rollout = stored.rollout
        try:
            return self._decide_and_act(rollout, now)
        except EndpointStillUpdating as busy:
            # SageMaker refused because the endpoint is already changing: another writer acted.
            logger.info("endpoint busy; deciding again next tick", extra={"reason": str(busy)})
            return None
        except EndpointRequestRefused as refusal:
            # Asking again gives the same answer: the rollout fails (and restores) with SageMaker's reason.
            logger.warning(
                "SageMaker refused a call", extra={"rollout_id": rollout.rollout_id, "reason": refusal.reason}
            )
            return refused(rollout, now, refusal.reason)
        except _RecordMoved:
            raise
        except Exception as failure:
            # Throttling and 5xx, and anything else (a refusal no adapter names, a defect): timed from
            # the first failure, so no failure can hold the endpoint past the update deadline (I2).
            if not failing_too_long(rollout, now):
                self._note_failing(stored, now)
                raise
            return refused(rollout, now, f"still failing after {rollout.update_timeout_seconds} s: {failure}")

    def _decide_and_act(self, rollout: Rollout, now: datetime) -> Action:
        """Observe, decide, and make the action's SageMaker call(s); the caller records the outcome."""
        # The controller's path only (as below): start_rollout's cold start does not import the flip.
        from shepherd.rollouts.flip import moves_forward, observe_flip

        try:
            observed = self.endpoints.describe(rollout.endpoint_name)
        except EndpointRequestRefused as refusal:
            if rollout.phase is Phase.ABORTING:  # unseen, the candidate may still serve: as below
                raise TransientError(f"endpoint unseen while restoring: {refusal}") from refusal
            raise
        firing = self.alarms.firing(rollout.gating_alarms) if rollout.gating_alarms else frozenset()
        action = decide(rollout, observed, firing, now)
        if isinstance(action, Wait):
            return action
        if moves_forward(action) and (fresh := self._written_since(rollout)) is not None:
            raise _RecordMoved(fresh)  # decide again from it: it may be a rollback's abort
        try:
            self._carry_out(action)
        except EndpointRequestRefused as refusal:
            if (
                rollout.phase is Phase.ABORTING
                and observed is not None
                and observed.weight_of(rollout.candidate.variant_name)
            ):
                # Ending the abort now would release the endpoint with traffic on the rolled-back
                # candidate: tried again like a throttle (a permission can be fixed), until the deadline;
                # with the candidate out, it ends at once (the endpoint is safe as it is).
                raise TransientError(f"restore refused while the candidate serves: {refusal}") from refusal
            raise
        return observe_flip(action, observed, self.clock)  # an aborting rollback's flip, made or seen

    def _note_failing(self, stored: StoredRollout, now: datetime) -> None:
        """Start the clock on retryable failures (kept from the first), so they cannot hold the lock forever."""
        if stored.rollout.failing_since is None:
            self._save_quietly(stored, still_failing(stored.rollout, now))

    def _save_quietly(self, stored: StoredRollout, record: Rollout) -> None:
        """A record-only bookkeeping write; losing it to another writer is harmless (it re-decides)."""
        try:
            self.rollouts.commit([SaveRollout(record, stored.request, stored.rollout.revision)])
        except ChangeRejected:
            logger.info("record changed meanwhile", extra={"rollout_id": record.rollout_id})

    def _written_since(self, rollout: Rollout) -> StoredRollout | None:
        """The record again, if someone (a rollback's abort) wrote it since `rollout` was read.

        Read before every forward change, so a tick never steps forward on a record a rollback has
        already aborted; a rollback that writes between this read and the change is undone by
        `_undo_lost_step`.
        """
        fresh = self.rollouts.get_rollout(rollout.endpoint_name, rollout.rollout_id)
        return fresh if fresh is not None and fresh.rollout.revision != rollout.revision else None

    def _undo_lost_step(self, action: Action, fresh: Rollout) -> None:
        """Our forward step landed, but a rollback aborted the rollout meanwhile: flip back at once."""
        from shepherd.rollouts.flip import TrafficFlip, moves_forward

        stepped_up = isinstance(action, ShiftTraffic) and moves_forward(action)
        if stepped_up and fresh.phase is Phase.ABORTING and fresh.live is not None:
            TrafficFlip(self.endpoints, self.clock, self.sleep).back(fresh)

    def _carry_out(self, action: Action) -> None:
        if isinstance(action, CreateEndpoint):
            self.endpoints.ensure_config(action.config)
            self.endpoints.create_endpoint(action.endpoint_name, action.config.name)
        elif isinstance(action, UpdateEndpoint):
            if action.create_config is not None:
                self.endpoints.ensure_config(action.create_config)
            self.endpoints.update_endpoint(action.endpoint_name, action.config_name)
        elif isinstance(action, ShiftTraffic):
            self.endpoints.set_weights(
                action.endpoint_name,
                {action.candidate_variant: action.candidate_weight, action.live_variant: action.live_weight},
            )
        elif isinstance(action, DeleteEndpoint):
            self.endpoints.delete_endpoint(action.endpoint_name)
        # RecordProgress, Complete, Fail and FinishRollback only change records.

    def _consequences(
        self, stored: StoredRollout, action: Action, now: datetime, event_id: str
    ) -> tuple[list[Change], list[Announcement]]:
        assert not isinstance(action, Wait)
        before, after = stored.rollout, action.next
        changes: list[Change] = [SaveRollout(after, stored.request, before.revision)]
        announcements: list[Announcement] = []
        ids = _ids(after)
        detail = getattr(action, "note", None) or getattr(action, "reason", None) or type(action).__name__
        changes.append(endpoint_audit(after, _audit_action(action), str(detail), now, event_id))
        if isinstance(action, ShiftTraffic):
            announcements.append(
                RolloutTrafficShifted(**ids, from_percent=action.from_percent, to_percent=action.to_percent)
            )
        reached_full = after.phase is Phase.WATCHING and before.phase is not Phase.WATCHING
        first_done = isinstance(action, Complete) and after.is_first_deployment
        if reached_full or first_done:
            changes.append(
                version_move(after, after.version, (VersionStatus.DEPLOYING,), VersionStatus.LIVE, stored, now)
            )
            watch_until = now + timedelta(seconds=after.post_deploy_watch_seconds) if reached_full else None
            announcements.append(RolloutCompleted(**ids, watch_until=watch_until))
        if after.phase.is_terminal:
            changes += [
                ReleaseLock(after.endpoint_name, after.rollout_id),
                ForgetAlarms(_own_alarms(self.settings.namespace, after)),
            ]
        if isinstance(action, Complete):
            changes.append(SetLive(after.endpoint_name, _live(after)))
            if after.previous_version is not None and after.previous_model_name is not None:
                previous = after.previous_version
                changes.append(version_move(after, previous, (VersionStatus.LIVE,), VersionStatus.RETIRED, stored, now))
                announcements.append(
                    ModelVersionRetired(
                        model_name=after.previous_model_name,
                        version=after.previous_version,
                        endpoint_name=after.endpoint_name,
                        rollout_id=after.rollout_id,
                    )
                )
        elif isinstance(action, Fail):
            # A candidate that reached 100% (its watch window began) is LIVE: the audit names the
            # status it really leaves, as the rollback function's abort does.
            failed_from = (VersionStatus.DEPLOYING, VersionStatus.LIVE)
            if before.watch_started_at is not None:
                failed_from = failed_from[::-1]
            changes.append(version_move(after, after.version, failed_from, VersionStatus.FAILED, stored, now))
            announcements.append(RolloutFailed(**ids, reason=action.reason))
        # FinishRollback: the rollback function already marked the candidate ROLLED_BACK with its abort.
        from shepherd.rollouts.flip import rollback_consequences

        owed, announced = rollback_consequences(before, action, self.rollouts.endpoint_audit_trail, now, event_id)
        return changes + owed, announcements + announced

    def _clean_up(self, rollout: Rollout) -> str:
        """Delete the per-rollout alarms, and the configs and models nothing uses any more.

        Re-runnable: a finished rollout stays listed by `rollouts_to_clean_up` until this completes,
        so a failure half-way is finished by a later tick. What the endpoint runs now (described, not
        assumed from the outcome) and the endpoint's recorded baseline are never deleted.
        """
        self.alarms.delete_alarms(_own_alarms(self.settings.namespace, rollout))
        observed = self.endpoints.describe(rollout.endpoint_name)
        if observed is not None and observed.status not in (EndpointStatus.IN_SERVICE, EndpointStatus.FAILED):
            # A change still under way may land on any of this rollout's configs: delete none yet.
            return f"clean-up waits: endpoint is {observed.status}"
        live = self.rollouts.live(rollout.endpoint_name)
        if self._left_on_its_configs(rollout, observed, live):
            # The abort ended before the endpoint was back as recorded (its restore gave up, or a
            # change landed after it ended): finish the restore, so endpoint and records agree again.
            # A first deployment that did not complete leaves no endpoint (as its abort deletes one).
            if self.rollouts.lock_holder(rollout.endpoint_name) is not None:
                # Not while another rollout holds the endpoint; nor done without it: that rollout may
                # end without changing the endpoint (its update rolled back by SageMaker), leaving it
                # here for good. Either it moves the endpoint off these configs, or this finishes then.
                return "clean-up waits: another rollout holds the endpoint, left on this rollout's config"
            if live is None:
                self.endpoints.delete_endpoint(rollout.endpoint_name)
            else:
                self.endpoints.update_endpoint(rollout.endpoint_name, live.config_name)
            return "clean-up finishes the restore"
        in_use = {observed.config_name if observed else None, live.config_name if live else None}
        for config in {rollout.shift_config, rollout.final_config, rollout.previous_config} - in_use - {None}:
            assert config is not None
            self.endpoints.delete_config(config)
        retired = rollout.live if rollout.phase is Phase.COMPLETED else rollout.candidate
        running = {variant.name for variant in observed.variants} if observed else set()
        if (
            retired is not None
            and retired.variant_name not in running
            and not self.rollouts.endpoints_serving(retired.model_resource_name)
        ):
            self.endpoints.delete_model(retired.model_resource_name)
        self.rollouts.cleaned_up(rollout.endpoint_name, rollout.rollout_id)
        return "cleaned up"

    def _left_on_its_configs(
        self, rollout: Rollout, observed: ObservedEndpoint | None, live: LiveDeployment | None
    ) -> bool:
        """The endpoint serves a config of this ended (not completed) rollout instead of its recorded
        baseline (or none, for a first deployment). A restore SageMaker rolled back is tried again at
        the next pass, as the controller's restore is."""
        return (
            rollout.phase is not Phase.COMPLETED
            and observed is not None
            and observed.status is EndpointStatus.IN_SERVICE
            and (live is not None or rollout.is_first_deployment)
            and observed.config_name in {rollout.shift_config, rollout.final_config} - {live and live.config_name}
        )


DEFAULT_INSTANCE_TYPE = "ml.m5.large"


def _forget_deleted(deleted: LiveDeployment, stored: StoredRollout, *, retire: bool) -> tuple[Change, ...]:
    """The records of an endpoint deleted outside Shepherd: no baseline, its version no longer LIVE
    (retired; or, deployed again by this rollout, moved LIVE -> DEPLOYING by the rollout's start)."""
    if not retire:
        return (ForgetLive(stored.rollout.endpoint_name),)
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
    return ForgetLive(rollout.endpoint_name), MoveVersion(expected=(VersionStatus.LIVE,), audit=retired)


def rollout_alarm_names(namespace: str, endpoint_name: str, rollout_id: str) -> tuple[str, str]:
    """The per-rollout alarms on the candidate variant: error rate and p99 latency.

    They start with ``<namespace>--`` (no namespace contains "--"), the prefix the stack's alarm
    permissions are scoped to, so one stack cannot change or delete another stack's alarms.
    """
    prefix = f"{namespace}--{endpoint_name}-{rollout_id}"
    return f"{prefix}-error-rate", f"{prefix}-latency-p99"


def _own_alarms(namespace: str, rollout: Rollout) -> tuple[str, str]:
    return rollout_alarm_names(namespace, rollout.endpoint_name, rollout.rollout_id)


def _ids(rollout: Rollout) -> dict[str, Any]:
    return {
        "rollout_id": rollout.rollout_id,
        "endpoint_name": rollout.endpoint_name,
        "model_name": rollout.model_name,
        "version": rollout.version,
        "previous_version": rollout.previous_version,
    }


def _live(rollout: Rollout) -> LiveDeployment:
    return LiveDeployment(
        model_name=rollout.model_name,
        version=rollout.version,
        variant=rollout.candidate,
        config_name=rollout.final_config,
    )


def _audit_action(action: Action) -> str:
    if isinstance(action, ShiftTraffic):
        return f"traffic {action.from_percent}% -> {action.to_percent}%"
    if isinstance(action, UpdateEndpoint):
        return f"update endpoint ({action.purpose})"
    if isinstance(action, RecordProgress) and action.next.phase is Phase.ABORTING:
        # Its own name: it may follow a "progress" in the same tick, and audit keys hold the action.
        return "aborting"
    return {
        CreateEndpoint: "create endpoint",
        DeleteEndpoint: "delete endpoint",
        RecordProgress: "progress",
        Complete: "completed",
        Fail: "failed",
        FinishRollback: "rolled back",
    }[type(action)]


def _analysis_completed(rollout: Rollout, entry: StepAnalysis) -> CanaryAnalysisCompleted:
    assert entry.decision is not None
    return CanaryAnalysisCompleted(
        **_ids(rollout),
        step=entry.step,
        percent=entry.percent,
        outcome=entry.verdict.outcome,
        decision=entry.decision,
        critical_failure=entry.verdict.critical_failure,
        minutes=entry.verdict.minutes,
        extended_seconds=entry.extended_seconds,
        metrics=list(entry.verdict.metrics),
    )


def _analysis_text(entry: StepAnalysis) -> str:
    table = ", ".join(f"{item.metric} {item.outcome}" for item in entry.verdict.metrics)
    return f"{entry.verdict.outcome} at {entry.percent}% -> {entry.decision} ({table})"


def _plan_text(rollout: Rollout) -> str:
    steps = ", ".join(f"{step.percent}% (bake {step.bake_seconds}s)" for step in rollout.plan)
    return f"plan {steps}; watch {rollout.post_deploy_watch_seconds}s"


def _started(stored: StoredRollout) -> RolloutStarted:
    rollout = stored.rollout
    return RolloutStarted(
        **_ids(rollout),
        strategy=rollout.strategy.model_dump(mode="json"),
        plan=[TrafficStepDetail(percent=s.percent, bake_seconds=s.bake_seconds) for s in rollout.plan],
        post_deploy_watch_seconds=rollout.post_deploy_watch_seconds,
        alarms=list(rollout.gating_alarms),
        requested_by=stored.request.requested_by,
        reason=stored.request.reason,
    )
