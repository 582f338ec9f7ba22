"""The rollout controller: one pure decision function and the records it decides on.

Controllers decide, adapters act. :func:`decide` takes the rollout record, the endpoint as
SageMaker describes it right now, the gating alarms that are in ``ALARM`` and "now" (the triggering
event's ``time``), and returns the single next :data:`Action`. It does no I/O, reads no clock and
keeps no state, so the same inputs always give the same action, and a crash anywhere is repaired by
deciding again from what is observed (level-triggered, as Kubernetes controllers and Argo Rollouts
do), never by trusting a half-written record.

How the service uses it, once per active rollout per tick::

    rollout  = repository.get(rollout_id)
    observed = sagemaker.describe_endpoint(rollout.endpoint_name)   # None when it does not exist
    firing   = cloudwatch.alarms_in_alarm(rollout.gating_alarms)
    action   = decide(rollout, observed, firing, now)
    carry out the action's AWS call(s), if any (table below)
    repository.save(action.next, expected_revision=rollout.revision)   # every action but Wait

Order matters: act first, then write. If the process dies between the two, the next tick sees the
endpoint already changed and answers with a :class:`RecordProgress` catch-up instead of a second
change. The write is conditional on ``revision`` (each ``next`` carries ``revision + 1``); a failed
condition means a concurrent tick decided from the same record, and because the action is a pure
function of that record the loser asked SageMaker for the same thing: drop it. The service may loop
(re-describe, decide, act) until it gets a :class:`Wait`, a terminal action or a few iterations, so
a step that needs a record-only update does not cost a scheduler minute.

=====================  ================================================================  ================
action                 adapter                                                           service
=====================  ================================================================  ================
Wait                   nothing (log ``reason``; ``alarms`` are the ones holding it)       no write
CreateEndpoint         CreateEndpointConfig(config) [exists = done] + CreateEndpoint      write
UpdateEndpoint         CreateEndpointConfig(create_config) if given + UpdateEndpoint      write
ShiftTraffic           UpdateEndpointWeightsAndCapacities(candidate, live weights)       write, announce
DeleteEndpoint         DeleteEndpoint (a failed first deployment's own endpoint)          write
RecordProgress         nothing: the endpoint is already where the record is going         write
Complete               nothing                                                           terminal
Fail                   nothing                                                           terminal
FinishRollback         nothing                                                           terminal
=====================  ================================================================  ================

"announce": ``Rollout Traffic Shifted`` with ``from_percent``/``to_percent``, when the request is
made. "terminal": write ``next`` (phase COMPLETED / FAILED / ROLLED_BACK), release the endpoint lock,
drop the rollout from the active index, delete its per-rollout alarms and set the version states in
the same transaction, then announce (``Rollout Completed`` with the candidate ``LIVE`` and the
previous version ``RETIRED``; ``Rollout Failed`` with ``reason`` and the candidate ``FAILED``).
After ``Complete`` the configs and models nothing uses any more can be deleted (``previous_config``
and the ``shift_config``, the previous version's model). A ``ShiftTraffic`` with ``to_percent`` 0
is the revert of an aborting rollout: announce it as such or not at all.

Phases (``Phase.is_terminal``: COMPLETED, FAILED, ROLLED_BACK)::

    PREPARING -> STARTING -> SHIFTING (plan[0], plan[1], ... each baked) -> WATCHING -> RETIRING -> COMPLETED
    any of the four before COMPLETED -> ABORTING (candidate to 0, previous config back)
                                     -> FAILED | ROLLED_BACK

- ``PREPARING``: the promotion holds the lock but has not finished setting the rollout up (the
  candidate's SageMaker model, the per-rollout alarms): nothing touches the endpoint (Wait). The
  promotion, or Lambda's retry of it, moves it to STARTING with :func:`prepared`; one still
  preparing ``update_timeout_seconds`` after it began fails, the endpoint untouched.
- ``STARTING``: the record exists, the endpoint is not yet on the rollout's config. An update
  rollout asks for ``UpdateEndpoint`` to ``shift_config`` (live variant at weight 1, candidate at
  weight 0) and waits for InService; a first deployment asks for ``CreateEndpoint`` with
  ``final_config`` (the candidate alone, weight 1). The service may make the first call itself or
  just write the STARTING record and run one controller pass: the controller asks for it.
- ``SHIFTING``: ``plan[step_index]`` was requested (``pending_since`` set) or reached
  (``step_started_at`` set, baking). A bake is over when ``now >= step_started_at + bake_seconds``;
  the bake counts from when the endpoint was *observed* at the weight, not from the request.
- ``WATCHING``: the candidate serves 100%, the previous variant stays at weight 0 for
  ``post_deploy_watch_seconds`` from ``watch_started_at`` so a rollback is one weight change.
- ``RETIRING``: ``UpdateEndpoint`` to ``final_config`` was requested; InService there -> Complete.
- ``ABORTING``: the rollout failed (``abort_outcome`` FAILED) or a rollback was requested
  (``abort_outcome`` ROLLED_BACK, see :func:`request_abort`); the controller puts the endpoint back
  as it was before the rollout - candidate weight 0, then ``UpdateEndpoint`` to ``previous_config``
  - and only then ends the rollout. The lock is held throughout, so a new promotion cannot collide
  with the restore. A failed first deployment deletes the endpoint it created unless it is
  InService (it may already take traffic: left in place and completed as the endpoint's live
  deployment, the reason saying why it was late).
- SageMaker refusing a call for good: the service asks :func:`refused` for the record (ABORTING, or
  the end when the refusal came during a restore). Retryable failures are timed from the first
  (:func:`still_failing`, :func:`failing_too_long`; any action or :func:`recovered` clears it).

Rules:

- Every advance (the first shift, each next step, the retire at the end of the watch) needs the
  firing alarm set to be empty; otherwise :class:`Wait` names the alarms holding it. The rollback
  function acts on alarms; the controller only holds. Catch-ups, completion and aborting are not
  advances and are not held.
- ``Creating``/``Updating``/``SystemUpdating``/``RollingBack`` -> Wait. A change this rollout
  requested must take effect within ``update_timeout_seconds`` (default 3600) of
  ``pending_since``, else the rollout aborts. Transitions the rollout did not request (autoscaling,
  SageMaker maintenance) are waited out without a deadline.
- A requested change that did not take effect (endpoint stable but not at the target; SageMaker
  rolled a failed update back, ``FailureReason`` says why), an endpoint ``Failed``/``OutOfService``/
  ``Deleting``/``UpdateRollbackFailed`` or gone, or an endpoint changed outside the rollout: abort.
- A tick whose ``now`` is earlier than the record's ``updated_at`` is stale: Wait. Timestamps in
  the record therefore never go backwards, and a late tick never shortens a bake.
- A first deployment has no live variant: its plan is a single 100% step and it has no watch window
  (nothing to roll back to, and holding the lock would only block the next promotion, the real
  remedy for a bad first model); it completes as soon as the new endpoint is InService.
- ``ShiftTraffic`` weights: candidate ``percent / 100``, live ``(100 - percent) / 100``. With a fresh
  baseline (``analysis.judge.baseline: fresh``, see :attr:`Rollout.fresh_baseline`) a judged step of
  ``p`` gives the candidate ``p``, the fresh baseline ``min(p, 100 - p)`` and the live variant the
  rest (``100 - 2p``, or 0 when ``2p > 100``); any other step (no bake, the final 100%, the watch
  window, a revert to 0) gives the fresh baseline 0.
- A request whose record write was lost *and* that failed looks, afterwards, like a request never
  made (a stale ``FailureReason`` proves nothing): it is made once more, and fails the rollout if
  it fails again.

Records: :class:`Rollout` is a frozen pydantic model; store ``model_dump(mode="json")`` and read
it back with ``Rollout.model_validate``, which re-checks its invariants. The service builds the
first one with :func:`new_rollout` (config names from :mod:`naming`, the effective plan) and the
rollback function asks for an abort with :func:`request_abort`; every later record comes from an
action's ``next``.
"""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, Self, TypeAlias

import msgspec.structs
from msgspec import Struct
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shepherd.rollouts import naming
from shepherd.rollouts.rollback_cause import RollbackCause
from shepherd.rollouts.step_analysis import StepAnalysis, bounded
from shepherd.rollouts.strategy import Strategy, TrafficStep

DEFAULT_UPDATE_TIMEOUT_SECONDS = 3600

# A requested change that has not even started after this long did not take effect. SageMaker marks
# the endpoint Updating before the call returns; the grace only absorbs a lagging DescribeEndpoint.
_SETTLE_SECONDS = 60

# Observed weights are floats; a step is reached when the candidate's share is within this many
# percentage points of it (plans are whole percents, so neighbours are a full point apart).
_PERCENT_TOLERANCE = 0.01


class Phase(StrEnum):
    PREPARING = "PREPARING"
    STARTING = "STARTING"
    SHIFTING = "SHIFTING"
    WATCHING = "WATCHING"
    RETIRING = "RETIRING"
    ABORTING = "ABORTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ROLLED_BACK = "ROLLED_BACK"

    @property
    def is_terminal(self) -> bool:
        """Terminal rollouts hold no lock and leave the active index."""
        return self in (Phase.COMPLETED, Phase.FAILED, Phase.ROLLED_BACK)


class EndpointStatus(StrEnum):
    """SageMaker's ``EndpointStatus`` values."""

    OUT_OF_SERVICE = "OutOfService"
    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"


# Statuses that end by themselves; anything else but InService is a failure for a rollout.
_TRANSITIONAL = frozenset(
    {
        EndpointStatus.CREATING,
        EndpointStatus.UPDATING,
        EndpointStatus.SYSTEM_UPDATING,
        EndpointStatus.ROLLING_BACK,
    }
)


# --- records -----------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built on first use


class VariantSpec(_Frozen):
    """A production variant as it goes into an endpoint config (weight aside)."""

    variant_name: str
    model_resource_name: str
    instance_type: str
    initial_instance_count: int = Field(ge=1)

    @classmethod
    def for_version(
        cls,
        model_name: str,
        version: int,
        *,
        instance_type: str,
        initial_instance_count: int,
        namespace: str | None = None,
    ) -> Self:
        """The variant serving ``version`` of ``model_name``, named by :mod:`naming`."""
        return cls(
            variant_name=naming.variant_name(model_name, version),
            model_resource_name=naming.model_resource_name(model_name, version, namespace=namespace),
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
        )


class LiveDeployment(_Frozen):
    """What the endpoint serves before the rollout (from the endpoint item and DescribeEndpoint)."""

    model_name: str
    version: int = Field(ge=1)
    variant: VariantSpec
    config_name: str


class Rollout(_Frozen):
    """The rollout record; build the first one with :func:`new_rollout`, then only via actions.

    ``revision`` starts at 0 and every action's ``next`` has ``revision + 1``: write it on the
    condition that the stored revision is still the old one. ``gating_alarms`` are the alarms whose
    state the service passes to :func:`decide` (the ones named in the request plus the per-rollout
    ones). ``current_percent`` is the candidate's share last observed at a transition.
    """

    rollout_id: str
    endpoint_name: str
    model_name: str
    version: int = Field(ge=1)
    previous_model_name: str | None = None
    previous_version: int | None = None
    candidate: VariantSpec
    live: VariantSpec | None = None
    # analysis.judge.baseline "fresh": the live variant's model again, on the candidate's instance type
    # and count, in the shift config beside both; the judge compares the candidate with it (both start
    # cold on the same capacity). Traffic on it is traffic on the live version. Never in the final config.
    # Left out of the stored record when unset, so a rollout without one is stored exactly as before.
    fresh_baseline: VariantSpec | None = Field(default=None, exclude_if=lambda fresh: fresh is None)
    final_config: str
    shift_config: str | None = None
    previous_config: str | None = None
    strategy: Strategy
    plan: tuple[TrafficStep, ...] = Field(min_length=1)
    post_deploy_watch_seconds: int = Field(ge=0)
    update_timeout_seconds: int = Field(default=DEFAULT_UPDATE_TIMEOUT_SECONDS, ge=1)
    gating_alarms: tuple[str, ...] = ()
    # Gating alarms found missing, which hold it like firing ones (alarm_gate.py). Left out of the stored
    # record when none, so a rollout without any is stored exactly as before.
    missing_alarms: tuple[str, ...] = Field(default=(), exclude_if=lambda missing: not missing)

    phase: Phase = Phase.STARTING
    abort_outcome: Phase | None = None
    step_index: int = Field(default=-1, ge=-1)
    current_percent: int = Field(default=0, ge=0, le=100)
    revision: int = Field(default=0, ge=0)
    started_at: AwareDatetime
    phase_started_at: AwareDatetime
    updated_at: AwareDatetime
    pending_since: AwareDatetime | None = None
    step_started_at: AwareDatetime | None = None
    watch_started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    failure_reason: str | None = None
    # When a SageMaker call this rollout needs first failed with a retryable error (throttling, 5xx);
    # every action clears it. The service fails the rollout once it has failed for update_timeout_seconds.
    failing_since: AwareDatetime | None = None
    rollback: RollbackCause | None = None  # a rollback's cause and observed flip (rollback_cause.py)
    analysis: tuple[StepAnalysis, ...] = ()  # the canary judge's latest verdict per judged step

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        update_fields = (self.live, self.shift_config, self.previous_config, self.previous_version)
        if any(f is None for f in update_fields) and any(f is not None for f in update_fields):
            raise ValueError(
                "live, shift_config, previous_config and previous_version are all set (an update) "
                "or all unset (a first deployment)"
            )
        percents = [step.percent for step in self.plan]
        if percents != sorted(set(percents)) or percents[-1] != 100 or self.plan[-1].bake_seconds:
            raise ValueError("plan: percents strictly increasing, ending with 100 and no bake")
        if self.step_index >= len(self.plan):
            raise ValueError(f"step_index: {self.step_index} is past the plan's {len(self.plan)} steps")
        if self.phase is Phase.SHIFTING and self.pending_since is None and self.step_started_at is None:
            raise ValueError("SHIFTING: pending_since (requested) or step_started_at (reached) is set")
        if self.phase is Phase.WATCHING and self.watch_started_at is None:
            raise ValueError("WATCHING: watch_started_at is set")
        if self.phase.is_terminal and self.ended_at is None:
            raise ValueError(f"{self.phase}: ended_at is set")
        aborting = self.phase is Phase.ABORTING
        if aborting != (self.abort_outcome in (Phase.FAILED, Phase.ROLLED_BACK)):
            raise ValueError("abort_outcome: FAILED or ROLLED_BACK exactly when the phase is ABORTING")
        fresh = self.fresh_baseline
        if fresh is not None and (
            self.live is None
            or fresh.model_resource_name != self.live.model_resource_name
            or fresh.variant_name in (self.live.variant_name, self.candidate.variant_name)
        ):
            raise ValueError("fresh_baseline: a variant of its own running the live variant's model, in an update")
        return self

    @property
    def is_first_deployment(self) -> bool:
        return self.live is None

    @property
    def judged(self) -> bool:
        """The step baking now is judged against `baseline_variant` (step_analysis.py).

        A step without a bake is not judged: it asked not to wait, and the judge has no data at once.
        """
        return (
            self.phase is Phase.SHIFTING
            and self.live is not None
            and self.strategy.analysis.judge.enabled
            and self.step_started_at is not None
            and self.pending_since is None
            and 0 <= self.step_index < len(self.plan) - 1
            and self.plan[self.step_index].bake_seconds > 0
        )

    @property
    def baseline_variant(self) -> VariantSpec | None:
        """The variant the canary judge compares the candidate with: the fresh baseline, else the live one."""
        return self.fresh_baseline or self.live

    @property
    def fresh_percent(self) -> int:
        """The fresh baseline's share at the step the rollout is at or moving to (module docstring)."""
        if self.fresh_baseline is None or not _judged_step(self.plan, self.step_index):
            return 0
        return min(self.target_percent, 100 - self.target_percent)

    @property
    def bake_ends_at(self) -> datetime | None:
        if self.step_started_at is None or self.step_index < 0:
            return None
        return self.step_started_at + timedelta(seconds=self.plan[self.step_index].bake_seconds)

    def step_analysis(self) -> StepAnalysis | None:
        """The analysis of the step the rollout is at, if the judge looked at it."""
        return next((entry for entry in self.analysis if entry.step == self.step_index), None)

    def with_step_analysis(self, entry: StepAnalysis) -> Self:
        """This record with ``entry`` as its step's analysis (replacing the step's earlier one)."""
        kept = tuple(item for item in self.analysis if item.step != entry.step)
        return self.model_copy(update={"analysis": bounded((*kept, entry))})

    @property
    def target_percent(self) -> int:
        """The candidate's share this rollout is at or moving to."""
        return 0 if self.step_index < 0 else self.plan[self.step_index].percent


def _judged_step(plan: tuple[TrafficStep, ...], index: int) -> bool:
    """A step the judge may judge: baked, and not the final 100% (the watch window is the alarms' alone)."""
    return 0 <= index < len(plan) - 1 and plan[index].bake_seconds > 0


def new_rollout(
    *,
    rollout_id: str,
    endpoint_name: str,
    model_name: str,
    version: int,
    strategy: Strategy,
    candidate: VariantSpec,
    live: LiveDeployment | None,
    now: datetime,
    gating_alarms: tuple[str, ...] = (),
    update_timeout_seconds: int = DEFAULT_UPDATE_TIMEOUT_SECONDS,
) -> Rollout:
    """The STARTING record of a rollout, with its config names and effective plan.

    A first deployment (``live`` None) gets the plan ``(100,)`` and no watch window whatever the
    strategy says; announce ``plan`` and ``post_deploy_watch_seconds`` from the record, not the
    strategy. An update whose judge asks for a fresh baseline, with a step to judge, gets one (named
    by :func:`naming.baseline_variant_name`, sized as the candidate). Raises ``ValueError`` when
    ``candidate`` is the live variant (same model and version): the service rejects that promotion
    before it gets here.
    """
    if live is not None and live.variant.variant_name == candidate.variant_name:
        raise ValueError(f"variant {candidate.variant_name} is already live on {endpoint_name}: nothing to roll out")
    timing = {"started_at": now, "phase_started_at": now, "updated_at": now}
    common = {
        "rollout_id": rollout_id,
        "endpoint_name": endpoint_name,
        "model_name": model_name,
        "version": version,
        "candidate": candidate,
        "final_config": naming.endpoint_config_name(endpoint_name, rollout_id, "final"),
        "strategy": strategy,
        "update_timeout_seconds": update_timeout_seconds,
        "gating_alarms": gating_alarms,
    }
    if live is None:
        return Rollout.model_validate(
            {**common, **timing, "plan": (TrafficStep(percent=100),), "post_deploy_watch_seconds": 0}
        )
    plan = strategy.plan()
    update: dict[str, object] = {
        "previous_model_name": live.model_name,
        "previous_version": live.version,
        "live": live.variant,
        "shift_config": naming.endpoint_config_name(endpoint_name, rollout_id, "shift"),
        "previous_config": live.config_name,
        "plan": plan,
        "post_deploy_watch_seconds": strategy.post_deploy_watch_seconds,
    }
    judge = strategy.analysis.judge
    if judge.enabled and judge.baseline == "fresh" and any(_judged_step(plan, i) for i in range(len(plan))):
        update["fresh_baseline"] = VariantSpec(
            variant_name=naming.baseline_variant_name(live.model_name, live.version, rollout_id),
            model_resource_name=live.variant.model_resource_name,  # the same approved artifact and image
            instance_type=candidate.instance_type,
            initial_instance_count=candidate.initial_instance_count,
        )
    return Rollout.model_validate({**common, **timing, **update})


class InvalidTransition(Exception):
    """A request that does not apply to the rollout in its current phase."""


def request_abort(rollout: Rollout, *, reason: str, now: datetime, outcome: Phase = Phase.ROLLED_BACK) -> Rollout:
    """The ABORTING record for a rollback (rollback function) or an operator's abort (FAILED).

    Write it on the condition ``revision == rollout.revision`` *before* touching the endpoint, so a
    controller tick deciding from the older record cannot shift traffic forward again; the
    controller then restores the endpoint and ends the rollout with ``outcome``. (A tick that read
    the older record just before may still make its forward change; the next tick reverts it.)
    The rollback function may move the traffic back itself right after the write, for speed; the
    controller finds it done and carries on with the restore. An already aborting
    rollout is returned unchanged (same revision: nothing to write). Raises
    :class:`InvalidTransition` for a terminal rollout, and for a rollback of a first deployment
    (there is nothing to roll back to; an operator may still abort one with ``outcome=FAILED``).
    """
    _require_aware(now)
    if outcome not in (Phase.FAILED, Phase.ROLLED_BACK):
        raise ValueError(f"outcome: FAILED or ROLLED_BACK, got {outcome}")
    if rollout.phase.is_terminal:
        raise InvalidTransition(f"rollout {rollout.rollout_id} is already {rollout.phase}")
    if rollout.phase is Phase.ABORTING:
        return rollout
    if outcome is Phase.ROLLED_BACK and rollout.is_first_deployment:
        raise InvalidTransition(f"rollout {rollout.rollout_id} is a first deployment: nothing to roll back to")
    at = max(now, rollout.updated_at)
    aborting = _aborting(rollout, reason, outcome, at)
    return aborting.model_copy(update={"revision": rollout.revision + 1, "updated_at": at})


# --- observations ------------------------------------------------------------------------------


class ObservedVariant(Struct, frozen=True):
    """A production variant as DescribeEndpoint reports it."""

    name: str
    current_weight: float


class ObservedEndpoint(Struct, frozen=True):
    """DescribeEndpoint, reduced: pass ``None`` to :func:`decide` when the endpoint does not exist."""

    status: EndpointStatus
    config_name: str
    variants: tuple[ObservedVariant, ...] = ()
    failure_reason: str | None = None

    def weight_of(self, variant: str) -> float | None:
        return next((v.current_weight for v in self.variants if v.name == variant), None)


# --- actions -----------------------------------------------------------------------------------


class WeightedVariant(Struct, frozen=True):
    """A variant in an endpoint config, with its initial weight."""

    variant: VariantSpec
    initial_weight: float


class EndpointConfigSpec(Struct, frozen=True):
    """An endpoint config to create (creating one that exists with this name counts as done)."""

    name: str
    variants: tuple[WeightedVariant, ...]


class Wait(Struct, frozen=True):
    """Nothing to do now. ``until`` is when a bake or watch window ends, if that is the reason."""

    reason: str
    alarms: frozenset[str] = frozenset()
    until: datetime | None = None


class CreateEndpoint(Struct, frozen=True):
    """A first deployment: create the endpoint on ``config``."""

    endpoint_name: str
    config: EndpointConfigSpec
    next: Rollout


UpdatePurpose: TypeAlias = Literal["start", "retire", "restore"]


class UpdateEndpoint(Struct, frozen=True):
    """``purpose``: "start" (to the shift config), "retire" (to the final config) or "restore"
    (back to ``previous_config``, which exists: ``create_config`` is None)."""

    endpoint_name: str
    config_name: str
    create_config: EndpointConfigSpec | None
    purpose: UpdatePurpose
    next: Rollout


class ShiftTraffic(Struct, frozen=True):
    """Set the variants' weights in one UpdateEndpointWeightsAndCapacities; ``to_percent`` 0 reverts.

    ``fresh_variant`` is the rollout's fresh baseline, if it has one (its weight is set in the same call).
    """

    endpoint_name: str
    candidate_variant: str
    candidate_weight: float
    live_variant: str
    live_weight: float
    from_percent: int
    to_percent: int
    next: Rollout
    fresh_variant: str | None = None
    fresh_weight: float = 0.0

    def weights(self) -> dict[str, float]:
        """Every variant's weight, as the one call sets them."""
        weights = {self.candidate_variant: self.candidate_weight, self.live_variant: self.live_weight}
        if self.fresh_variant is not None:
            weights[self.fresh_variant] = self.fresh_weight
        return weights


class DeleteEndpoint(Struct, frozen=True):
    """Delete the endpoint a failed first deployment created."""

    endpoint_name: str
    next: Rollout


class RecordProgress(Struct, frozen=True):
    """Only a record write: a target was reached, a crash is caught up, or an abort begins."""

    note: str
    next: Rollout


class Complete(Struct, frozen=True):
    """The rollout is done: the candidate serves alone."""

    next: Rollout


class Fail(Struct, frozen=True):
    """The rollout failed; ``reason`` says why."""

    reason: str
    next: Rollout


class FinishRollback(Struct, frozen=True):
    """The endpoint is back as it was before the rollout: the rollback is done."""

    reason: str
    next: Rollout


Action: TypeAlias = (
    Wait
    | CreateEndpoint
    | UpdateEndpoint
    | ShiftTraffic
    | DeleteEndpoint
    | RecordProgress
    | Complete
    | Fail
    | FinishRollback
)


# --- the decision ------------------------------------------------------------------------------


def decide(
    rollout: Rollout,
    observed: ObservedEndpoint | None,
    alarms_firing: frozenset[str],
    now: datetime,
) -> Action:
    """The next action for ``rollout``; see the module docstring for the contract."""
    _require_aware(now)
    if rollout.phase.is_terminal:
        return Wait(f"rollout is {rollout.phase}")
    if now < rollout.updated_at:
        return Wait(
            f"stale tick: {now.isoformat()} is before the record's last change at {rollout.updated_at.isoformat()}"
        )
    if rollout.phase is Phase.ABORTING:
        action = _decide_aborting(rollout, observed, now)
    elif rollout.phase is Phase.PREPARING:
        action = _decide_preparing(rollout, observed, now)
    else:
        action = _decide_forward(rollout, observed, alarms_firing, now)
    if isinstance(action, Wait):
        return action
    return _stamped(rollout, action, now)


def _stamped(rollout: Rollout, action: Action, now: datetime) -> Action:
    # One place stamps every write, so no branch can forget the revision the service conditions on.
    assert not isinstance(action, Wait)
    update = {"revision": rollout.revision + 1, "updated_at": now, "failing_since": None}
    return msgspec.structs.replace(action, next=action.next.model_copy(update=update))


def refused(rollout: Rollout, now: datetime, reason: str) -> Action:
    """SageMaker refused a call the rollout needs, for good (``reason``): the record that says so.

    A rollout moving forward starts aborting (its restore comes from the next :func:`decide`); one
    already aborting cannot be restored any further and ends, its reason saying what was refused.
    Only a record write: nothing here calls SageMaker again.
    """
    _require_aware(now)
    if rollout.phase.is_terminal:
        return Wait(f"rollout is {rollout.phase}")
    at = max(now, rollout.updated_at)
    if rollout.phase is Phase.ABORTING:
        action: Action = _finish(rollout, at, f"could not restore the endpoint: {reason}")
    else:
        action = RecordProgress(f"aborting: {reason}", _aborting(rollout, reason, Phase.FAILED, at))
    return _stamped(rollout, action, at)


def prepared(rollout: Rollout, now: datetime) -> Rollout:
    """The record once the promotion has set the rollout up: STARTING, for the controller to act on."""
    _require_aware(now)
    if rollout.phase is not Phase.PREPARING:
        raise InvalidTransition(f"rollout {rollout.rollout_id} is {rollout.phase}, not PREPARING")
    at = max(now, rollout.updated_at)
    update = {"phase": Phase.STARTING, "revision": rollout.revision + 1, "updated_at": at, "failing_since": None}
    return rollout.model_copy(update=update)


def still_failing(rollout: Rollout, now: datetime) -> Rollout:
    """The record after a retryable failure: ``failing_since`` set (kept from the first failure)."""
    return _failing_since(rollout, now, failing=True)


def recovered(rollout: Rollout, now: datetime) -> Rollout:
    """The record after a pass that failed nothing (a :class:`Wait`): ``failing_since`` cleared."""
    return _failing_since(rollout, now, failing=False)


def _failing_since(rollout: Rollout, now: datetime, *, failing: bool) -> Rollout:
    _require_aware(now)
    at = max(now, rollout.updated_at)
    since = (rollout.failing_since or at) if failing else None
    return rollout.model_copy(update={"failing_since": since, "revision": rollout.revision + 1, "updated_at": at})


def failing_too_long(rollout: Rollout, now: datetime) -> bool:
    """Retryable failures have lasted the update deadline: the rollout gives up as if refused."""
    since = rollout.failing_since
    return since is not None and now >= since + timedelta(seconds=rollout.update_timeout_seconds)


def _decide_forward(
    rollout: Rollout, observed: ObservedEndpoint | None, alarms: frozenset[str], now: datetime
) -> Action:
    if observed is None:
        return _absent(rollout, now)
    if observed.status in _TRANSITIONAL:
        if _overdue(rollout, now):
            return _abort(rollout, observed, now, _overdue_reason(rollout, f"{observed.status} to end"))
        return Wait(f"endpoint is {observed.status}")
    if observed.status is not EndpointStatus.IN_SERVICE:
        return _abort(rollout, observed, now, f"endpoint is {observed.status}{_because(observed)}")
    if _at_target(rollout, observed):
        if rollout.pending_since is not None:
            return _reached(rollout, now, "reached")
        return _advance(rollout, alarms, now)
    if rollout.pending_since is None:
        return _off_target(rollout, observed, now)
    if now < rollout.pending_since + timedelta(seconds=_SETTLE_SECONDS):
        return Wait(f"waiting for the endpoint to start the change towards {_describe_target(rollout)}")
    return _abort(
        rollout,
        observed,
        now,
        f"the requested change did not take effect: {_describe(rollout, observed)}, "
        f"expected {_describe_target(rollout)}{_because(observed)}",
    )


def _decide_preparing(rollout: Rollout, observed: ObservedEndpoint | None, now: datetime) -> Action:
    """Not set up yet: its model may not exist, nor the alarms that would roll it back. Wait for the
    promotion (Lambda retries it); past the deadline it fails without touching the endpoint."""
    if now < rollout.phase_started_at + timedelta(seconds=rollout.update_timeout_seconds):
        return Wait("setting up: the promotion has not yet created the candidate's model and alarms")
    reason = (
        f"set-up did not finish within {rollout.update_timeout_seconds} s of the promotion "
        "(the candidate's SageMaker model and the per-rollout alarms)"
    )
    return _abort(rollout, observed, now, reason)


def _absent(rollout: Rollout, now: datetime) -> Action:
    if rollout.is_first_deployment and rollout.phase is Phase.STARTING:
        if _overdue(rollout, now):
            return _abort(rollout, None, now, _overdue_reason(rollout, "the endpoint to appear"))
        return _create_endpoint(rollout, now)
    gone = _aborting(rollout, f"endpoint {rollout.endpoint_name} no longer exists", Phase.FAILED, now)
    return _finish(gone, now, None)


def _off_target(rollout: Rollout, observed: ObservedEndpoint, now: datetime) -> Action:
    """InService, not at the record's target, and nothing requested that the record knows of."""
    # A tick that made the next forward change may have died before writing the record: catch up.
    forward = _forward(rollout, now)
    if forward is not None and _at_target(forward.next, observed):
        return _reached(forward.next, now, "caught up with the endpoint at")
    if rollout.phase is Phase.STARTING:
        if rollout.is_first_deployment:
            reason = (
                f"endpoint {rollout.endpoint_name} already exists on config {observed.config_name}; "
                "a first deployment creates it"
            )
            return _abort(rollout, observed, now, reason)
        # The previous config, or any config still serving the live variant (a restore that gave
        # up, an edit outside Shepherd): the shift config puts all traffic back on the live variant.
        if observed.config_name == rollout.previous_config or _serves_live(rollout, observed):
            return _start_update(rollout, now)
    reason = (
        f"endpoint changed outside this rollout: {_describe(rollout, observed)}, expected {_describe_target(rollout)}"
    )
    return _abort(rollout, observed, now, reason)


def _advance(rollout: Rollout, alarms: frozenset[str], now: datetime) -> Action:
    """The endpoint is at the record's target and nothing is pending: bake, hold or move on."""
    if rollout.phase is Phase.RETIRING or (rollout.phase is Phase.STARTING and rollout.is_first_deployment):
        return _reached(rollout, now, "reached")
    if rollout.phase is Phase.SHIFTING:
        if rollout.step_index == len(rollout.plan) - 1:
            return _reached(rollout, now, "reached")  # repair: 100% is WATCHING
        assert rollout.step_started_at is not None
        until = rollout.step_started_at + timedelta(seconds=rollout.plan[rollout.step_index].bake_seconds)
        if now < until:
            return Wait(f"baking {rollout.target_percent}% until {until.isoformat()}", until=until)
        if rollout.judged:
            held = _held_by_analysis(rollout)
            if held is not None:
                return held
    if rollout.phase is Phase.WATCHING:
        assert rollout.watch_started_at is not None
        until = rollout.watch_started_at + timedelta(seconds=rollout.post_deploy_watch_seconds)
        if now < until:
            return Wait(f"watching at 100% until {until.isoformat()}", until=until)
    if alarms:
        return Wait(f"held at {rollout.target_percent}% by alarms: {', '.join(sorted(alarms))}", alarms=alarms)
    forward = _forward(rollout, now)
    assert forward is not None
    return forward


def _held_by_analysis(rollout: Rollout) -> Wait | None:
    """A bake that is over moves on only once the step's canary analysis says advance.

    In advisory mode the judge only says what it would do: the bake and the alarms decide alone.
    """
    config = rollout.strategy.analysis.judge
    if config.mode == "advisory":
        return None
    analysis = rollout.step_analysis()
    percent = rollout.target_percent
    if analysis is None or analysis.decision is None:
        outcome = analysis.verdict.outcome if analysis else "no verdict yet"
        return Wait(f"bake of {percent}% extended: canary analysis {outcome}")
    if analysis.decision == "hold":
        # Judged again every pass (canary.py): a FAIL, a PASS or the deadline ends the hold.
        deadline = analysis.hold_deadline(config)
        until = f" until {deadline.isoformat()} (then {config.on_hold_timeout})" if deadline else ""
        return Wait(
            f"held at {percent}% by canary analysis ({analysis.verdict.outcome}){until}: "
            "waiting for a verdict or shepherd resume"
        )
    if analysis.decision == "rollback":
        return Wait(f"rolling back: {analysis.reason}")  # the rollback function aborts the rollout
    return None


def _forward(rollout: Rollout, now: datetime) -> ShiftTraffic | UpdateEndpoint | None:
    """The change that moves an update rollout on from its reached target (not yet stamped)."""
    if rollout.is_first_deployment:
        return None
    if rollout.phase in (Phase.STARTING, Phase.SHIFTING) and rollout.step_index < len(rollout.plan) - 1:
        index = rollout.step_index + 1
        moved = rollout.model_copy(
            update={
                "phase": Phase.SHIFTING,
                "phase_started_at": rollout.phase_started_at if rollout.phase is Phase.SHIFTING else now,
                "step_index": index,
                "pending_since": now,
                "step_started_at": None,
            }
        )
        return _shift(moved, rollout.current_percent, rollout.plan[index].percent)
    if rollout.phase is Phase.WATCHING:
        retiring = rollout.model_copy(update={"phase": Phase.RETIRING, "phase_started_at": now, "pending_since": now})
        spec = _config(rollout.final_config, (rollout.candidate, 1.0))
        return UpdateEndpoint(rollout.endpoint_name, rollout.final_config, spec, "retire", retiring)
    return None


def _reached(rollout: Rollout, now: datetime, how: str) -> RecordProgress | Complete:
    """The record for a target observed reached: bake clock starts, watch starts, or done."""
    if rollout.phase is Phase.RETIRING or (rollout.phase is Phase.STARTING and rollout.is_first_deployment):
        return Complete(_ended(rollout, Phase.COMPLETED, now, current_percent=100))
    percent = rollout.target_percent
    update: dict[str, object] = {"pending_since": None, "current_percent": percent}
    if rollout.phase is Phase.STARTING:
        return RecordProgress(f"{how}: candidate deployed at weight 0", rollout.model_copy(update=update))
    update["step_started_at"] = now
    note = f"{how} {percent}%"
    if percent == 100:
        update |= {"phase": Phase.WATCHING, "phase_started_at": now, "watch_started_at": now}
        note += f"; watching for {rollout.post_deploy_watch_seconds} s"
    return RecordProgress(note, rollout.model_copy(update=update))


def _create_endpoint(rollout: Rollout, now: datetime) -> CreateEndpoint:
    # Keep the first request time: a retried create must not push the deadline out.
    pending = rollout.model_copy(update={"pending_since": rollout.pending_since or now})
    return CreateEndpoint(rollout.endpoint_name, _config(rollout.final_config, (rollout.candidate, 1.0)), pending)


def _start_update(rollout: Rollout, now: datetime) -> UpdateEndpoint:
    assert rollout.live is not None and rollout.shift_config is not None
    fresh = ((rollout.fresh_baseline, 0.0),) if rollout.fresh_baseline is not None else ()
    spec = _config(rollout.shift_config, (rollout.live, 1.0), (rollout.candidate, 0.0), *fresh)
    pending = rollout.model_copy(update={"pending_since": now})
    return UpdateEndpoint(rollout.endpoint_name, rollout.shift_config, spec, "start", pending)


# --- aborting ----------------------------------------------------------------------------------


def _abort(rollout: Rollout, observed: ObservedEndpoint | None, now: datetime, reason: str) -> Action:
    """Fail the rollout: restore the endpoint if needed, in the same decision when possible."""
    aborting = _aborting(rollout, reason, Phase.FAILED, now)
    action = _decide_aborting(aborting, observed, now)
    if isinstance(action, Wait):
        return RecordProgress(f"aborting: {reason}; {action.reason}", aborting)
    return action


def _aborting(rollout: Rollout, reason: str, outcome: Phase, now: datetime) -> Rollout:
    return rollout.model_copy(
        update={
            "phase": Phase.ABORTING,
            "abort_outcome": outcome,
            "failure_reason": reason,
            "phase_started_at": now,
            "pending_since": None,
        }
    )


def _decide_aborting(rollout: Rollout, observed: ObservedEndpoint | None, now: datetime) -> Action:
    """Put the endpoint back as it was before the rollout, then end it."""
    if observed is None:
        problem = None if rollout.is_first_deployment else "nothing to restore: the endpoint no longer exists"
        return _finish(rollout, now, problem, current_percent=0)
    deadline = rollout.phase_started_at + timedelta(seconds=rollout.update_timeout_seconds)
    if observed.status in _TRANSITIONAL or observed.status is EndpointStatus.DELETING:
        if now >= deadline:
            return _finish(
                rollout,
                now,
                f"restoring gave up: endpoint still {observed.status} "
                f"{rollout.update_timeout_seconds} s after the abort",
            )
        return Wait(f"restoring: endpoint is {observed.status}")
    if observed.config_name == rollout.previous_config:
        if observed.status is EndpointStatus.IN_SERVICE:
            return _finish(rollout, now, None, current_percent=0)
        return _finish(rollout, now, f"endpoint is {observed.status} on its previous config{_because(observed)}")
    ours = rollout.final_config if rollout.is_first_deployment else rollout.shift_config
    if observed.config_name not in (ours, rollout.final_config):
        return _finish(
            rollout,
            now,
            f"endpoint is on config {observed.config_name}, which this rollout did not create; left as it is",
        )
    if now >= deadline:
        return _finish(
            rollout,
            now,
            f"restoring gave up after {rollout.update_timeout_seconds} s: {_describe(rollout, observed)}",
        )
    return _restore(rollout, observed, now)


def _restore(rollout: Rollout, observed: ObservedEndpoint, now: datetime) -> Action:
    """One step back towards the pre-rollout endpoint, which is stable and on a config of ours."""
    pending = rollout.model_copy(update={"pending_since": now})
    if rollout.is_first_deployment:
        if observed.status is EndpointStatus.IN_SERVICE:
            # It came up after all and may already take traffic: left in place, and recorded as what
            # it is, the endpoint's live deployment (so the next promotion updates it).
            kept = rollout.model_copy(
                update={"failure_reason": f"{rollout.failure_reason}; the endpoint came up InService: kept as live"}
            )
            return Complete(_ended(kept, Phase.COMPLETED, now, current_percent=100))
        # A broken endpoint this rollout created serves nobody; deleting it lets the next
        # promotion create it again.
        return DeleteEndpoint(rollout.endpoint_name, pending)
    if observed.status is not EndpointStatus.IN_SERVICE:
        return _finish(rollout, now, f"endpoint is {observed.status}{_because(observed)}; could not restore it")
    percent = _candidate_percent(rollout, observed)
    if observed.config_name == rollout.shift_config and (percent is None or percent > _PERCENT_TOLERANCE):
        # Traffic first: one weight change, seconds; removing the candidate variant comes after.
        return _shift(pending, round(percent) if percent is not None else rollout.current_percent, 0)
    assert rollout.previous_config is not None
    return UpdateEndpoint(rollout.endpoint_name, rollout.previous_config, None, "restore", pending)


def _finish(
    rollout: Rollout, now: datetime, problem: str | None, *, current_percent: int | None = None
) -> Fail | FinishRollback:
    reason = rollout.failure_reason or "aborted"
    if problem:
        reason = f"{reason}; {problem}"
    outcome = rollout.abort_outcome or Phase.FAILED
    ended = _ended(rollout.model_copy(update={"failure_reason": reason}), outcome, now, current_percent)
    if outcome is Phase.ROLLED_BACK:
        return FinishRollback(reason, ended)
    return Fail(reason, ended)


def _ended(rollout: Rollout, phase: Phase, now: datetime, current_percent: int | None) -> Rollout:
    update: dict[str, object] = {
        "phase": phase,
        "abort_outcome": None,
        "phase_started_at": now,
        "ended_at": now,
        "pending_since": None,
    }
    if current_percent is not None:
        update["current_percent"] = current_percent
    return rollout.model_copy(update=update)


# --- helpers -----------------------------------------------------------------------------------


def _shift(next_record: Rollout, from_percent: int, to_percent: int) -> ShiftTraffic:
    assert next_record.live is not None
    fresh = next_record.fresh_baseline
    fresh_percent = next_record.fresh_percent if to_percent else 0  # a revert takes it out with the candidate
    return ShiftTraffic(
        endpoint_name=next_record.endpoint_name,
        candidate_variant=next_record.candidate.variant_name,
        candidate_weight=to_percent / 100,
        live_variant=next_record.live.variant_name,
        # (100 - p) / 100, not 1 - p / 100: 1 - 0.7 is 0.30000000000000004.
        live_weight=(100 - to_percent - fresh_percent) / 100,
        from_percent=from_percent,
        to_percent=to_percent,
        next=next_record,
        fresh_variant=fresh.variant_name if fresh is not None else None,
        fresh_weight=fresh_percent / 100,
    )


def _config(name: str, *variants: tuple[VariantSpec, float]) -> EndpointConfigSpec:
    return EndpointConfigSpec(name, tuple(WeightedVariant(spec, weight) for spec, weight in variants))


def _target_config(rollout: Rollout) -> str:
    if rollout.phase is Phase.RETIRING or rollout.is_first_deployment:
        return rollout.final_config
    assert rollout.shift_config is not None
    return rollout.shift_config


def _at_target(rollout: Rollout, observed: ObservedEndpoint) -> bool:
    if observed.config_name != _target_config(rollout):
        return False
    if observed.config_name == rollout.final_config:
        return True  # the candidate alone: its weight is all the traffic
    shares = _shares(rollout, observed)
    return (
        shares is not None
        and abs(shares[0] - rollout.target_percent) <= _PERCENT_TOLERANCE
        and abs(shares[1] - rollout.fresh_percent) <= _PERCENT_TOLERANCE
    )


def _serves_live(rollout: Rollout, observed: ObservedEndpoint) -> bool:
    return rollout.live is not None and observed.weight_of(rollout.live.variant_name) is not None


def _candidate_percent(rollout: Rollout, observed: ObservedEndpoint) -> float | None:
    """The candidate's share of traffic on the shift config, or None when it cannot be told."""
    shares = _shares(rollout, observed)
    return shares[0] if shares is not None else None


def _shares(rollout: Rollout, observed: ObservedEndpoint) -> tuple[float, float] | None:
    """The candidate's and the fresh baseline's shares of traffic on the shift config (0 for a rollout
    without one), or None when they cannot be told."""
    if rollout.live is None:
        return None
    candidate = observed.weight_of(rollout.candidate.variant_name)
    live = observed.weight_of(rollout.live.variant_name)
    fresh = 0.0 if rollout.fresh_baseline is None else observed.weight_of(rollout.fresh_baseline.variant_name)
    if candidate is None or live is None or fresh is None or min(candidate, live, fresh) < 0:
        return None
    total = candidate + live + fresh
    if total <= 0:
        return None
    return 100 * candidate / total, 100 * fresh / total


def _overdue(rollout: Rollout, now: datetime) -> bool:
    pending = rollout.pending_since
    return pending is not None and now >= pending + timedelta(seconds=rollout.update_timeout_seconds)


def _overdue_reason(rollout: Rollout, waiting_for: str) -> str:
    return (
        f"gave up waiting for {waiting_for}: {rollout.update_timeout_seconds} s after requesting "
        f"{_describe_target(rollout)}"
    )


def _describe(rollout: Rollout, observed: ObservedEndpoint) -> str:
    percent = _candidate_percent(rollout, observed) if observed.config_name == rollout.shift_config else None
    share = f" with the candidate at {percent:g}%" if percent is not None else ""
    return f"{observed.status} on config {observed.config_name}{share}"


def _describe_target(rollout: Rollout) -> str:
    config = _target_config(rollout)
    if config == rollout.final_config:
        return f"config {config}"
    return f"config {config} with the candidate at {rollout.target_percent}%"


def _because(observed: ObservedEndpoint) -> str:
    return f" (FailureReason: {observed.failure_reason})" if observed.failure_reason else ""


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now: must be timezone-aware (the triggering event's time)")
