"""The rollout record: what a rollout is, where it is, and the only ways it may change.

:class:`Rollout` is a frozen pydantic model; store ``model_dump(mode="json")`` and read it back with
``Rollout.model_validate``, which re-checks its invariants (``Rollout._consistent``). The promotion
builds the first one with :func:`new_rollout` (config names from :mod:`naming`, the effective plan)
and finishes its set-up with :func:`prepared`; the rollback function asks for an abort with
:func:`request_abort`; every later record is an action's ``next`` (actions.py, decide.py).

Phases (``Phase.is_terminal``: COMPLETED, FAILED, ROLLED_BACK)::

    PREPARING -> STARTING -> SHIFTING (plan[0], plan[1], ... each baked) -> WATCHING -> RETIRING -> COMPLETED
    any of the five before COMPLETED -> ABORTING (candidate to 0, previous config back)
                                     -> FAILED | ROLLED_BACK

- ``PREPARING``: the promotion holds the lock but has not yet made the candidate's SageMaker model
  and the per-rollout alarms; nothing touches the endpoint.
- ``STARTING``: the endpoint is not yet on the rollout's config (``shift_config``: live at weight 1,
  candidate at 0; or, for a first deployment, ``final_config``: the candidate alone).
- ``SHIFTING``: ``plan[step_index]`` was requested (``pending_since`` set) or reached
  (``step_started_at`` set, baking; the bake counts from when the weight was *observed*).
- ``WATCHING``: the candidate serves 100%, the previous variant stays at weight 0 for
  ``post_deploy_watch_seconds`` from ``watch_started_at``, so a rollback is one weight change.
- ``RETIRING``: ``UpdateEndpoint`` to ``final_config`` was requested.
- ``ABORTING``: the rollout failed (``abort_outcome`` FAILED) or a rollback was requested
  (``abort_outcome`` ROLLED_BACK); the endpoint is put back as it was (restore.py), then it ends.
  The lock is held throughout, so a new promotion cannot collide with the restore.

``revision`` starts at 0 and each written record has ``revision + 1``: every write is conditional on
the stored revision still being the old one.
"""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, Field, model_validator

from shepherd.capacity.sizing import DEFAULT_HEADROOM
from shepherd.kernel.frozen import Frozen
from shepherd.rollouts import naming
from shepherd.rollouts.cost_record import CostRecord
from shepherd.rollouts.recorded_scaling import RecordedScaling
from shepherd.rollouts.rollback_cause import RollbackCause
from shepherd.rollouts.step_analysis import StepAnalysis, bounded
from shepherd.rollouts.strategy import Strategy, TrafficStep

DEFAULT_UPDATE_TIMEOUT_SECONDS = 3600


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


class VariantSpec(Frozen):
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


class CandidateSizing(Frozen):
    """The candidate sized to its share at each step (capacity/sizing.py, issue 23 rule 3): its count
    is ``ceil(live count x step share x headroom)``, grown before each step's weights move and while a
    step bakes if the live fleet grew; at 100% the live fleet's count. Absent from a rollout, the
    candidate's count is fixed (the promotion named it, or a first deployment)."""

    headroom: float = Field(default=DEFAULT_HEADROOM, ge=1, le=4)
    # The live variant's count when the rollout started (before any weight moved): the full fleet the
    # candidate is sized against never falls below it (candidate_sizing.py). Set by the start.
    live_count_at_start: int | None = Field(default=None, ge=1)


class ScalingLimits(Frozen):
    """A promotion's own auto scaling limits for the new live variant (None: the old variant's)."""

    min_capacity: int | None = Field(default=None, ge=1)
    max_capacity: int | None = Field(default=None, ge=1)


class ManualGate(Frozen):
    """A step's manual gate (``TrafficStep.gate``) once it holds: since when, its `Rollout Held`
    announcements (the first, then one per ``hold_reminder_seconds``), and how it opened: an
    operator's resume (who, and the command's event id, so a duplicate is answered alike) or its
    deadline (``timed_out``, then ``on_hold_timeout``)."""

    step: int = Field(ge=0)  # the gated step: the one that waits to be requested
    held_since: AwareDatetime
    announcements: int = Field(default=1, ge=1)
    announced_at: AwareDatetime
    opened_at: AwareDatetime | None = None
    opened_by: str | None = None
    resume_command: str | None = None
    timed_out: bool = False


class LiveDeployment(Frozen):
    """What the endpoint serves before the rollout (from the endpoint item and DescribeEndpoint)."""

    model_name: str
    version: int = Field(ge=1)
    variant: VariantSpec
    config_name: str


class Rollout(Frozen):
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
    # The manual gates that held this rollout (hold.py). Left out of the stored record when none, so a
    # rollout without one is stored exactly as before.
    gates: tuple[ManualGate, ...] = Field(default=(), exclude_if=lambda gates: not gates)
    # Capacity (issue 23). Left out of the stored record when unset, so a rollout without them is
    # stored exactly as before.
    sizing: CandidateSizing | None = Field(default=None, exclude_if=lambda sizing: sizing is None)
    scaling_limits: ScalingLimits | None = Field(default=None, exclude_if=lambda limits: limits is None)
    # The live variant's auto scaling as registered before the retire handed it to the candidate
    # (recorded_scaling.py): what a restore gives back once the old variant serves again. Written before
    # the old variant is deregistered; left out of the stored record when unset.
    retired_scaling: RecordedScaling | None = Field(default=None, exclude_if=lambda scaling: scaling is None)
    # The cost ledger (issue 23 rule 5): the extra instance-hours charged by each controller pass
    # (cost_tracking.py), closed when the rollout ends. Left out of the stored record until the first
    # charge, so a rollout stored before it reads and writes exactly as before.
    cost: CostRecord | None = Field(default=None, exclude_if=lambda cost: cost is None)

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
            and (self.pending_since is None or self.resizing)  # a resize leaves the weights as they are
            and 0 <= self.step_index < len(self.plan) - 1
            and self.plan[self.step_index].bake_seconds > 0
        )

    @property
    def resizing(self) -> bool:
        """A resize of the candidate is pending at a step already reached (candidate_sizing.py): a shift
        forward clears ``step_started_at``, a resize keeps it (the step's bake clock runs on)."""
        return (
            self.phase is Phase.SHIFTING
            and self.pending_since is not None
            and self.step_started_at is not None
            and self.step_index < len(self.plan) - 1
        )

    @property
    def restore_config(self) -> str | None:
        """The config a restore writes when the live fleet no longer has ``previous_config``'s count
        (autoscaling moved it: kept_capacity.py); None for a first deployment."""
        if self.live is None:
            return None
        return naming.endpoint_config_name(self.endpoint_name, self.rollout_id, "restore")

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

    def gate_of(self, step: int) -> ManualGate | None:
        """The manual gate of ``step``, once it has held."""
        return next((gate for gate in self.gates if gate.step == step), None)

    def with_gate(self, gate: ManualGate) -> Self:
        """This record with ``gate`` as its step's gate (replacing the step's earlier one)."""
        return self.model_copy(update={"gates": (*(g for g in self.gates if g.step != gate.step), gate)})

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
    require_aware(now)
    if outcome not in (Phase.FAILED, Phase.ROLLED_BACK):
        raise ValueError(f"outcome: FAILED or ROLLED_BACK, got {outcome}")
    if rollout.phase.is_terminal:
        raise InvalidTransition(f"rollout {rollout.rollout_id} is already {rollout.phase}")
    if rollout.phase is Phase.ABORTING:
        return rollout
    if outcome is Phase.ROLLED_BACK and rollout.is_first_deployment:
        raise InvalidTransition(f"rollout {rollout.rollout_id} is a first deployment: nothing to roll back to")
    at = max(now, rollout.updated_at)
    aborting = to_aborting(rollout, reason, outcome, at)
    return aborting.model_copy(update={"revision": rollout.revision + 1, "updated_at": at})


def prepared(rollout: Rollout, now: datetime) -> Rollout:
    """The record once the promotion has set the rollout up: STARTING, for the controller to act on."""
    require_aware(now)
    if rollout.phase is not Phase.PREPARING:
        raise InvalidTransition(f"rollout {rollout.rollout_id} is {rollout.phase}, not PREPARING")
    at = max(now, rollout.updated_at)
    update = {"phase": Phase.STARTING, "revision": rollout.revision + 1, "updated_at": at, "failing_since": None}
    return rollout.model_copy(update=update)


def to_aborting(rollout: Rollout, reason: str, outcome: Phase, now: datetime) -> Rollout:
    """The record starting to abort (not yet stamped): its restore comes from the next decision."""
    return rollout.model_copy(
        update={
            "phase": Phase.ABORTING,
            "abort_outcome": outcome,
            "failure_reason": reason,
            "phase_started_at": now,
            "pending_since": None,
        }
    )


def to_ended(rollout: Rollout, phase: Phase, now: datetime, current_percent: int | None) -> Rollout:
    """The record ended in ``phase`` (terminal; not yet stamped): its cost ledger closed at ``now``,
    whichever path ends it."""
    update: dict[str, object] = {
        "phase": phase,
        "abort_outcome": None,
        "phase_started_at": now,
        "ended_at": now,
        "pending_since": None,
    }
    if rollout.cost is not None:
        update["cost"] = rollout.cost.closed(now)
    if current_percent is not None:
        update["current_percent"] = current_percent
    return rollout.model_copy(update=update)


def require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now: must be timezone-aware (the triggering event's time)")
