"""I1-I5 and C1-C4 (docs/design.md, "Invariants") as the model-based test can observe them.

`check_step` runs after every step of the state machine, `check_final` once time has run out. Each
returns (invariant id, what is wrong) pairs. What is observed is what a user could see: the
endpoint's weights and config (DesiredWeight: what it serves once a change in progress lands), the
lock items, the rollout records, the announcements published or still owed in the outbox, and the
audit trails.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shepherd.capacity.scaling import ScalableTarget, ScalingPolicy
from shepherd.contracts import (
    ModelVersionRetired,
    PromotionRejected,
    RollbackSkipped,
    RolloutCompleted,
    RolloutFailed,
    RolloutRolledBack,
)
from shepherd.registry.model import VersionStatus
from shepherd.rollouts.observed import EndpointStatus
from shepherd.rollouts.record import Phase, Rollout

if TYPE_CHECKING:
    from tests.model.faults import Call
    from tests.model.harness import RolloutModel

SKIPPED = frozenset(filter(None, os.environ.get("SHEPHERD_MODEL_SKIP", "").replace(" ", "").split(",")))
FLIP_TOLERANCE_SECONDS = 1.0

Violation = tuple[str, str]


@dataclass(frozen=True)
class RollbackSeen:
    """A rollback function's result, with the alarm's (or request's) time and the flips it made."""

    endpoint: str | None
    result: Any  # driver.RollbackResult
    changed_at: datetime | None
    flips: list[tuple[str, datetime, dict[str, float]]]


@dataclass(frozen=True)
class TickSeen:
    """One controller invocation: what was active when it began, and the port calls it made."""

    now: datetime
    active_before: dict[str, str]  # endpoint -> rollout id
    results: dict[str, str] | None  # None: the invocation failed
    calls: list[Call]
    fired: list[tuple[Call, str]]
    crashed: bool


def check_step(model: RolloutModel) -> list[Violation]:
    found = [
        *_self_rejections(model),
        *_i1_flips(model),
        *_i1_after_ticks(model),
        *_i1_ended(model, final=False),
        *_i2_step(model),
        *_i3(model, final=False),
    ]
    found += [*_i4_audit_chains(model), *_i5(model), *_advisory_never_acts(model), *_one_answer_per_command(model)]
    found += [*_models_exist_before_use(model)]
    found += [*_c1_calls(model), *_c2(model), *_capacity_at_end(model), *_c4(model)]
    return [violation for violation in found if violation[0] not in SKIPPED]


def check_final(model: RolloutModel) -> list[Violation]:
    found = [*_i2_final(model), *_i3(model, final=True), *_i4_records_match_endpoints(model)]
    found += [*_i1_ended(model, final=True), *_i4_audit_chains(model), *_capacity_at_end(model)]
    if model.failed:
        kinds = ", ".join(f"{i.kind} {i.endpoint}" for i in model.failed)
        found.append(("I3", f"events still failing with no fault injected (lost after Lambda's retries): {kinds}"))
    return [violation for violation in found if violation[0] not in SKIPPED]


# --- the canary judge: advisory mode only tells -------------------------------------------------------


def _advisory_never_acts(model: RolloutModel) -> Iterator[Violation]:
    """A judge in advisory mode never rolls back (nor holds: the gate ignores it, see I2 at the end)."""
    for stored in model.store.rollouts.values():
        rollout = stored.rollout
        cause = rollout.rollback
        if rollout.strategy.analysis.judge.mode == "advisory" and cause is not None and cause.trigger == "analysis":
            yield ("ANALYSIS", f"rollout {rollout.rollout_id} in advisory mode was rolled back by the judge")


# --- set-up: a rollout's SageMaker models exist before any config names them ------------------------


def _models_exist_before_use(model: RolloutModel) -> Iterator[Violation]:
    """The fake refuses a config naming a model it does not have, as SageMaker does: a rollout that
    ended on that refusal ran before its promotion had set its candidate up."""
    for stored in model.store.rollouts.values():
        reason = stored.rollout.failure_reason or ""
        if 'Could not find model "' in reason:  # (not "model data": a fault the harness injects)
            yield "SETUP", f"{stored.rollout.rollout_id} failed before its model existed: {reason}"


# --- commands: one command, one answer ------------------------------------------------------------------

# The answers a command gets, by the id they answer. Only the resume is held to one answer so far:
# operator rollbacks and promotions still answer a redelivery from the state it finds (the long run
# finds `Rollback Skipped` then a redeploy's `Rollout Started`, `Promotion Rejected` then `Rollout
# Started`): SHEPHERD_MODEL_ANSWERS=all checks them too (issue 22, defect 3's siblings, still open).
_COMMAND_ANSWERS = ("Rollout Resumed", "Rollout Resume Refused")
_ALL_COMMAND_ANSWERS = (*_COMMAND_ANSWERS, "Rollback Skipped", "Rollout Rolled Back")
_ROLLOUT_ANSWERS = ("Rollout Started", "Promotion Rejected")
ALL_ANSWERS = os.environ.get("SHEPHERD_MODEL_ANSWERS") == "all"


def _one_answer_per_command(model: RolloutModel) -> Iterator[Violation]:
    """Whatever the deliveries (duplicates, retries after a failed PutEvents, any order), a command is
    answered one way: a later delivery repeats the answer or says nothing, never the opposite."""
    command_of = {stored.rollout.rollout_id: stored.request.event_id for stored in model.store.rollouts.values()}
    answers: dict[str, set[str]] = {}
    for announcement in model.publisher.published:
        kind = announcement.DETAIL_TYPE
        key = None
        if kind in (_ALL_COMMAND_ANSWERS if ALL_ANSWERS else _COMMAND_ANSWERS):
            key = announcement.command_id
        elif ALL_ANSWERS and kind in _ROLLOUT_ANSWERS:
            key = command_of.get(announcement.rollout_id, announcement.rollout_id)
        if key is not None:
            answers.setdefault(key, set()).add(kind)
    for key, kinds in answers.items():
        if len(kinds) > 1:
            yield "ANSWERS", f"command {key} was answered {' and '.join(sorted(kinds))}"


# --- I1: no traffic on a version rolled back; a reported flip happened, at the reported time --------


def _candidate_weight(model: RolloutModel, rollout: Rollout) -> float:
    """The candidate's share once the endpoint's change in progress lands (0 when it is not there)."""
    return model.sagemaker.desired_weights(rollout.endpoint_name).get(rollout.candidate.variant_name, 0.0)


def _i1_flips(model: RolloutModel) -> Iterator[Violation]:
    for seen in model.rollback_results:
        result = seen.result
        if result.result != "rolled_back" or result.rollout_id is None or seen.endpoint is None:
            continue
        stored = model.store.get_rollout(seen.endpoint, result.rollout_id)
        if stored is None:
            continue
        rollout = stored.rollout
        weight = _candidate_weight(model, rollout)
        if weight > 0:
            yield (
                "I1",
                (
                    f"rollback of {rollout.rollout_id} reported rolled_back, but {rollout.endpoint_name} still sends "
                    f"{weight:.0%} to the candidate (no flip was made)"
                ),
            )
        flips = [at for endpoint, at, weights in seen.flips if weights.get(rollout.candidate.variant_name) == 0]
        reported = result.seconds_to_flip
        if reported is None or seen.changed_at is None:
            continue
        if flips:
            expected = (flips[-1] - seen.changed_at).total_seconds()
            if abs(reported - expected) > FLIP_TOLERANCE_SECONDS:
                yield "I1", f"seconds_to_flip {reported:.3f} but the flip was accepted {expected:.3f} s after the alarm"
        elif weight > 0 or reported < 0:
            yield "I1", f"seconds_to_flip {reported:.3f} reported for a flip that was never made"
        if reported < 0:
            yield "I1", f"negative seconds_to_flip {reported:.3f} (RollbackLatency)"


def _rollback_intended(rollout: Rollout) -> bool:
    return rollout.phase is Phase.ROLLED_BACK or (
        rollout.phase is Phase.ABORTING and rollout.abort_outcome is Phase.ROLLED_BACK
    )


def _i1_after_ticks(model: RolloutModel) -> Iterator[Violation]:
    """A controller pass that ran without faults leaves no rolled-back candidate with traffic on a
    stable endpoint: it flips the moment it sees the endpoint InService."""
    for tick in model.tick_reports:
        if tick.results is None or tick.fired or tick.crashed:
            continue
        for rollout_id in tick.results:
            stored = next((s for s in model.store.rollouts.values() if s.rollout.rollout_id == rollout_id), None)
            if stored is None or not _rollback_intended(stored.rollout):
                continue
            rollout = stored.rollout
            if tick.now < rollout.updated_at:
                continue  # a stale tick rightly decides nothing
            endpoint = model.sagemaker.endpoints.get(rollout.endpoint_name)
            if endpoint is None or endpoint.status is not EndpointStatus.IN_SERVICE or endpoint.settle is not None:
                continue
            if (weight := _candidate_weight(model, rollout)) > 0:
                yield (
                    "I1",
                    (
                        f"{rollout.rollout_id} is {rollout.phase.value} (rollback) but after a controller pass "
                        f"{rollout.endpoint_name} is InService with {weight:.0%} on the candidate"
                    ),
                )


def _i1_ended(model: RolloutModel, final: bool) -> Iterator[Violation]:
    """Once no rollout is active on an endpoint, no variant with traffic serves a ROLLED_BACK version.

    Between steps, an endpoint whose change is still in flight is not judged: a rollback that gave up
    while SageMaker was still shifting traffic to the candidate can do nothing until the change lands;
    then the clean-up's next pass restores the baseline config (checked once time has run out).
    """
    active = {s.rollout.endpoint_name for s in model.store.active_rollouts()}
    for endpoint_name, endpoint in model.sagemaker.endpoints.items():
        if endpoint_name in active or (not final and endpoint.settle is not None):
            continue
        for variant, weight in model.sagemaker.desired_weights(endpoint_name).items():
            version = _version_of_variant(model, variant)
            if weight > 0 and version is not None and version.status is VersionStatus.ROLLED_BACK:
                yield (
                    "I1",
                    (
                        f"{endpoint_name} has no active rollout but sends {weight:.0%} to {variant}, "
                        f"a version that is ROLLED_BACK"
                    ),
                )


def _version_of_variant(model: RolloutModel, variant: str) -> Any:
    model_name, _, number = variant.rpartition("-v")
    return model.registry.versions.get((model_name, int(number))) if number.isdigit() else None


# --- I2: one lock holder, always eventually released ------------------------------------------------


def _i2_step(model: RolloutModel) -> Iterator[Violation]:
    for endpoint_name in {key[0] for key in model.store.rollouts} | set(model.store.locks):
        active = [
            s.rollout.rollout_id for s in model.store.rollouts_of(endpoint_name) if not s.rollout.phase.is_terminal
        ]
        holder = model.store.locks.get(endpoint_name)
        if len(active) > 1:
            yield "I2", f"{endpoint_name}: {len(active)} active rollouts at once: {active}"
        if active and holder != active[0]:
            yield "I2", f"{endpoint_name}: active rollout {active[0]} but the lock is held by {holder}"
        if holder is not None and not active:
            yield "I2", f"{endpoint_name}: lock held by {holder}, which is not active"


def _i2_final(model: RolloutModel) -> Iterator[Violation]:
    yield from _i2_step(model)
    for stored in model.store.active_rollouts():
        rollout = stored.rollout
        yield (
            "I2",
            (
                f"{rollout.rollout_id} on {rollout.endpoint_name} still holds the lock after time ran out "
                f"({rollout.phase.value}, record updated at {rollout.updated_at:%Y-%m-%d %H:%M}, "
                f"clock at {model.clock.now:%Y-%m-%d %H:%M})"
            ),
        )


# --- I3: every terminal transition announced (at least once) and audited ----------------------------

_ENDING = {
    Phase.COMPLETED: ("completed", VersionStatus.LIVE),
    Phase.FAILED: ("failed", VersionStatus.FAILED),
    Phase.ROLLED_BACK: ("rolled back", VersionStatus.ROLLED_BACK),
}


def _owed(rollout: Rollout) -> list[type]:
    if rollout.phase is Phase.COMPLETED:
        return [RolloutCompleted, ModelVersionRetired] if rollout.previous_version else [RolloutCompleted]
    return [{Phase.FAILED: RolloutFailed, Phase.ROLLED_BACK: RolloutRolledBack}[rollout.phase]]


def _i3(model: RolloutModel, final: bool) -> Iterator[Violation]:
    outbox = list(model.store.outbox.values())
    for stored in model.store.rollouts.values():
        rollout = stored.rollout
        if not rollout.phase.is_terminal:
            continue
        for kind in _owed(rollout):
            published = any(
                isinstance(a, kind) and a.rollout_id == rollout.rollout_id for a in model.publisher.published
            )
            owed = any(isinstance(a, kind) and a.rollout_id == rollout.rollout_id for a in outbox)
            if not published and (final or not owed):
                where = "still only in the outbox" if owed else "neither published nor in the outbox"
                yield "I3", f"{rollout.rollout_id} ended {rollout.phase.value}: {kind.DETAIL_TYPE} {where}"
        action, status = _ENDING[rollout.phase]
        trail = model.store.endpoint_audit_trail(rollout.endpoint_name)
        if not any(e.rollout_id == rollout.rollout_id and e.action == action for e in trail):
            yield "I3", f"{rollout.rollout_id} ended {rollout.phase.value} with no '{action}' endpoint audit entry"
        # The incident records a flip (docs/design.md, Rollback): one observed needs its incident; a
        # rollback that ended without one (the endpoint deleted, say) is announced and audited only.
        incident = any(i.rollout_id == rollout.rollout_id for i in model.store.incidents(rollout.endpoint_name))
        flipped = rollout.rollback is not None and rollout.rollback.flipped_at is not None
        if rollout.phase is Phase.ROLLED_BACK and flipped and not incident:
            yield "I3", f"{rollout.rollout_id} ended ROLLED_BACK after an observed flip with no incident recorded"
        moves = [e for e in model.registry.audit if (e.model_name, e.version) == (rollout.model_name, rollout.version)]
        if not any(e.to_status is status and e.rollout_id == rollout.rollout_id for e in moves):
            yield (
                "I3",
                f"{rollout.rollout_id} ended {rollout.phase.value} with no audit of v{rollout.version} -> {status.value}",
            )


# --- I4: the records say what really happened ----------------------------------------------------------


def _i4_audit_chains(model: RolloutModel) -> Iterator[Violation]:
    """Each version's audit trail is a chain of real transitions ending in its current status."""
    trails: dict[tuple[str, int], list[Any]] = {}
    for entry in model.registry.audit:
        trails.setdefault((entry.model_name, entry.version), []).append(entry)
    for key, trail in trails.items():
        for before, after in itertools.pairwise(trail):
            if after.from_status is not before.to_status:
                yield (
                    "I4",
                    (
                        f"{key[0]} v{key[1]} audit says {after.from_status} -> {after.to_status.value} "
                        f"({after.action}, {after.rollout_id}), but it was {before.to_status.value}"
                    ),
                )
        current = model.registry.versions[key].status
        if trail[-1].to_status is not current:
            yield "I4", f"{key[0]} v{key[1]} is {current.value} but its audit trail ends at {trail[-1].to_status.value}"


def _i4_records_match_endpoints(model: RolloutModel) -> Iterator[Violation]:
    """Once nothing is active: the endpoint record, the version statuses and SageMaker agree."""
    from tests.model.harness import MODEL_OF

    for endpoint_name, model_name in MODEL_OF.items():
        if model.deleted_outside.get(endpoint_name) == model.rollout_ids(endpoint_name):
            continue  # deleted outside, and no rollout started since: the record is stale until one starts
        yield from _i4_endpoint_matches_record(model, endpoint_name)
        live = model.store.live(endpoint_name)
        for (name, number), version in model.registry.versions.items():
            if name != model_name:
                continue
            serving = live is not None and live.version == number
            if serving and version.status is not VersionStatus.LIVE:
                yield "I4", f"{model_name} v{number} serves {endpoint_name} but is {version.status.value}"
            if not serving and version.status in (VersionStatus.LIVE, VersionStatus.STANDBY, VersionStatus.DEPLOYING):
                yield "I4", f"{model_name} v{number} is {version.status.value} but {endpoint_name} does not serve it"


def _i4_endpoint_matches_record(model: RolloutModel, endpoint_name: str) -> Iterator[Violation]:
    live = model.store.live(endpoint_name)
    endpoint = model.sagemaker.endpoints.get(endpoint_name)
    if live is None and endpoint is not None:
        yield "I4", f"{endpoint_name} exists (config {endpoint.config_name}) but Shepherd records nothing live on it"
    if live is not None and endpoint is None:
        yield "I4", f"{endpoint_name} is recorded serving v{live.version} but does not exist"
    if endpoint is not None and endpoint.config_name not in model.sagemaker.configs:
        yield "I4", f"{endpoint_name} runs on config {endpoint.config_name}, which Shepherd deleted (clean-up)"
    if live is not None and endpoint is not None:
        weights = {
            name: weight for name, weight in model.sagemaker.desired_weights(endpoint_name).items() if weight > 0
        }
        if endpoint.config_name != live.config_name or set(weights) != {live.variant.variant_name}:
            yield (
                "I4",
                (
                    f"{endpoint_name} is recorded serving {live.variant.variant_name} on {live.config_name}, but is "
                    f"{endpoint.status} on {endpoint.config_name} sending traffic to {sorted(weights)}"
                ),
            )


# --- I5: one rollout's failure never delays another endpoint's rollout --------------------------------


def _i5(model: RolloutModel) -> Iterator[Violation]:
    for tick in model.tick_reports:
        if tick.crashed:
            continue  # the process died: every rollout waits for the next tick, as they must
        faulted = {call.endpoint for call, _ in tick.fired}
        if None in faulted:
            continue  # a fault not about one endpoint (e.g. the query of active rollouts)
        described = {call.endpoint for call in tick.calls if call.port == "sagemaker" and call.method == "describe"}
        for endpoint_name, rollout_id in tick.active_before.items():
            if endpoint_name in faulted or endpoint_name in described:
                continue
            faults = ", ".join(f"{kind} on {call.endpoint}" for call, kind in tick.fired) or "no fault injected"
            yield (
                "I5",
                (
                    f"a controller pass never looked at {rollout_id} on {endpoint_name}: the pass ended before "
                    f"it described the endpoint ({faults})"
                ),
            )


# --- which alarms and requests act on a rollout (issue 9, fixes 5 and 6) --------------------------------
# Not among I1-I5: the promises of the README about what a rollback does, checked after each alarm or
# operator request that ran without faults, on a rollout that can be rolled back.


def _can_roll_back(rollout: Rollout | None) -> bool:
    return rollout is not None and not rollout.is_first_deployment and rollout.phase in _ROLLBACKABLE


_ROLLBACKABLE = (Phase.STARTING, Phase.SHIFTING, Phase.WATCHING)


def _rolled_back_now(model: RolloutModel, before: Rollout) -> bool:
    stored = model.store.get_rollout(before.endpoint_name, before.rollout_id)
    return stored is not None and _rollback_intended(stored.rollout)


def check_alarm_acted(
    model: RolloutModel, before: Rollout | None, alarm_name: str, dimensions: dict[str, str]
) -> list[Violation]:
    """An alarm acts if it is the rollout's own or named in its promotion (whatever its dimensions),
    or if its dimensions name the endpoint and the candidate's variant; no other alarm acts."""
    if before is None or not _can_roll_back(before) or "ALARMS" in SKIPPED:
        return []
    acts = alarm_name in before.gating_alarms or dimensions == {
        "EndpointName": before.endpoint_name,
        "VariantName": before.candidate.variant_name,
    }
    acted = _rolled_back_now(model, before)
    if acts and not acted:
        return [("ALARMS", f"{alarm_name} {dimensions} should roll {before.rollout_id} back but was ignored")]
    if acted and not acts:
        return [("ALARMS", f"{alarm_name} {dimensions} is not one of {before.rollout_id}'s alarms but rolled it back")]
    return []


def check_operator_rollback(
    model: RolloutModel, before: Rollout | None, to_version: int | None, published: list[Any]
) -> list[Violation]:
    """During a rollout, a rollback to its baseline (or to nothing named) aborts it as a rollback; one
    to any other version is refused with `Rollback Skipped` and a reason, never `Promotion Rejected`."""
    if before is None or not _can_roll_back(before) or "OPERATOR" in SKIPPED:
        return []
    found: list[Violation] = []
    if to_version in (None, before.previous_version):
        if not _rolled_back_now(model, before):
            found.append(("OPERATOR", f"rollback to {to_version} during {before.rollout_id} did not roll it back"))
    elif not any(isinstance(a, RollbackSkipped) for a in published):
        found.append(("OPERATOR", f"rollback to v{to_version} during {before.rollout_id}: no Rollback Skipped"))
    if any(isinstance(a, PromotionRejected) for a in published):
        found.append(("OPERATOR", f"rollback to {to_version} during {before.rollout_id} announced Promotion Rejected"))
    return found


def _self_rejections(model: RolloutModel) -> Iterator[Violation]:
    """A duplicate delivery of a promotion never rejects the promotion itself (issue 9, fix 10)."""
    for announcement in model.publisher.published[model.checked_announcements :]:
        if isinstance(announcement, PromotionRejected) and announcement.active_rollout_id == announcement.rollout_id:
            yield "PROMOTION", f"Promotion Rejected for {announcement.rollout_id}: the endpoint is held by itself"
    model.checked_announcements = len(model.publisher.published)


# --- C1-C3: capacity (issue 23) -------------------------------------------------------------------------
# What autoscaling does is not Shepherd's: the harness scales variants itself (`autoscaling_acts`), through
# the fake's `autoscale`, which records no count change; every count the fake records was asked for by
# the services through the port.


@dataclass
class CapacityAtStart:
    """A rollout's live variant when the rollout started: its instance count (moved along when
    autoscaling moves it) and its registration with Application Auto Scaling (None: not autoscaled)."""

    endpoint: str
    variant: str
    count: int
    target: ScalableTarget | None
    policies: tuple[ScalingPolicy, ...]


def note_rollouts_started(model: RolloutModel) -> None:
    """Remember each new rollout's live variant as it is before the rollout changes anything (the
    promotion only writes the record: the first change is a controller pass's, after this step)."""
    for stored in model.store.rollouts.values():
        rollout = stored.rollout
        if rollout.rollout_id in model.capacity_at_start or rollout.live is None:
            continue
        endpoint, variant = rollout.endpoint_name, rollout.live.variant_name
        counts = model.sagemaker.desired_counts(endpoint)
        if variant not in counts:
            continue  # the endpoint is gone (deleted outside) or serves something else: nothing to keep
        model.capacity_at_start[rollout.rollout_id] = CapacityAtStart(
            endpoint,
            variant,
            counts[variant],
            model.scaling.scalable_target(endpoint, variant),
            model.scaling.scaling_policies(endpoint, variant),
        )


def autoscaling_moved(model: RolloutModel, endpoint: str, variant: str, count: int) -> None:
    """Autoscaling changed a variant's count: the capacity a rollout must keep follows it."""
    for start in model.capacity_at_start.values():
        if (start.endpoint, start.variant) == (endpoint, variant):
            start.count = count


def _c1_calls(model: RolloutModel) -> Iterator[Violation]:
    """C1: no call Shepherd makes lowers a serving variant's instance count below what it had just
    before (an UpdateEndpoint to a config with fewer instances, or an UpdateEndpointWeightsAndCapacities)."""
    changes = model.sagemaker.count_changes[model.checked_count_changes :]
    model.checked_count_changes = len(model.sagemaker.count_changes)
    for change in changes:
        if change.served_before and change.serves_after and change.after < change.before:
            yield (
                "C1",
                (
                    f"{change.call} set {change.variant_name} on {change.endpoint_name} to {change.after} "
                    f"instance(s) while it served with {change.before}"
                ),
            )


def _c4(model: RolloutModel) -> Iterator[Violation]:
    """C4: a sized rollout's candidate takes a larger share only onto instances already running: at
    least ``ceil(live x share x headroom)`` (capped at the live count), and the live count at 100%,
    where "live" is what the live variant runs as the weights move (a lower bound of the fleet the
    engine sizes for). Judged at every accepted weight change that raises a candidate's share."""
    moves = model.sagemaker.weight_moves[model.checked_weight_moves :]
    model.checked_weight_moves = len(model.sagemaker.weight_moves)
    for move in moves:
        latest = model.store.latest_rollout(move.endpoint_name)
        rollout = latest.rollout if latest is not None else None
        if rollout is None or rollout.sizing is None or rollout.live is None:
            continue
        candidate, live = rollout.candidate.variant_name, rollout.live.variant_name
        share = move.shares_after.get(candidate, 0.0)
        if share <= move.shares_before.get(candidate, 0.0) + 0.5 or live not in move.running:
            continue
        fleet = move.running[live]
        wanted = (
            fleet
            if share >= 99.5
            else min(fleet, max(1, math.ceil(fleet * share / 100 * rollout.sizing.headroom - 1e-9)))
        )
        running = move.running.get(candidate, 0)
        if running < wanted:
            yield (
                "C4",
                (
                    f"{rollout.rollout_id}: {candidate} took {share:.0f}% of {move.endpoint_name} on {running} "
                    f"instance(s); the live variant runs {fleet}, so it needs {wanted}"
                ),
            )


def _c2(model: RolloutModel) -> Iterator[Violation]:
    """C2: Shepherd never asks SageMaker to remove or retype a variant registered as a scalable target."""
    refused = model.sagemaker.unsafe_updates[model.checked_unsafe_updates :]
    model.checked_unsafe_updates = len(model.sagemaker.unsafe_updates)
    for message in refused:
        yield "C2", f"SageMaker refused: {message}"


def _capacity_at_end(model: RolloutModel) -> Iterator[Violation]:
    """Once a rollout has ended and its endpoint is settled (no rollout active, its clean-up done, no
    change in flight): C1, the live model serves again with at least the instances it had when the
    rollout started (after a rollback or a failure); C3, on an endpoint that autoscaled, the variant
    that serves is registered as the old one was (limits, suspended state, policies; after a completion
    with the promotion's `scaling_limits` if it set them) and no variant that left is still registered.
    Each rollout is judged once, when its endpoint first settles (time running out settles every one)."""
    busy = {stored.rollout.endpoint_name for stored in model.store.active_rollouts()}
    busy |= {stored.rollout.endpoint_name for stored in model.store.rollouts_to_clean_up()}
    for endpoint_name, endpoint in model.sagemaker.endpoints.items():
        latest = model.store.latest_rollout(endpoint_name)
        if latest is None or endpoint_name in busy or endpoint.settle is not None:
            continue
        rollout = latest.rollout
        start = model.capacity_at_start.get(rollout.rollout_id)
        if start is None or rollout.rollout_id in model.capacity_judged or not rollout.phase.is_terminal:
            continue
        model.capacity_judged.add(rollout.rollout_id)
        yield from _c1_restored(model, rollout, start)
        yield from _c3(model, rollout, start)


def _c1_restored(model: RolloutModel, rollout: Rollout, start: CapacityAtStart) -> Iterator[Violation]:
    if rollout.phase is Phase.COMPLETED:
        return
    weights = model.sagemaker.desired_weights(start.endpoint)
    count = model.sagemaker.desired_counts(start.endpoint).get(start.variant)
    if weights.get(start.variant, 0.0) > 0 and count is not None and count < start.count:
        yield (
            "C1",
            (
                f"{rollout.rollout_id} ended {rollout.phase.value}: {start.variant} serves {start.endpoint} again "
                f"with {count} instance(s), but had {start.count} when the rollout started"
            ),
        )


def _c3(model: RolloutModel, rollout: Rollout, start: CapacityAtStart) -> Iterator[Violation]:
    from tests.model.harness import STATS

    if start.target is None:
        return
    STATS.autoscaled_ends += 1
    expected_min, expected_max = start.target.min_capacity, start.target.max_capacity
    limits = rollout.scaling_limits
    if rollout.phase is Phase.COMPLETED and limits is not None:
        expected_min = limits.min_capacity if limits.min_capacity is not None else expected_min
        expected_max = limits.max_capacity if limits.max_capacity is not None else expected_max
    weights = model.sagemaker.desired_weights(start.endpoint)
    registered = model.scaling.registered_variants(start.endpoint)
    ended = f"{rollout.rollout_id} ended {rollout.phase.value}"
    for variant in sorted(name for name, weight in weights.items() if weight > 0):
        target = registered.get(variant)
        if target is None:
            yield "C3", f"{ended}: {variant} serves {start.endpoint} but is not registered for autoscaling"
            continue
        if (target.min_capacity, target.max_capacity, target.suspended) != (
            expected_min,
            expected_max,
            start.target.suspended,
        ):
            yield (
                "C3",
                (
                    f"{ended}: {variant} on {start.endpoint} is registered min {target.min_capacity} max "
                    f"{target.max_capacity} ({target.suspended}), expected min {expected_min} max {expected_max} "
                    f"({start.target.suspended})"
                ),
            )
        policies = model.scaling.scaling_policies(start.endpoint, variant)
        if sorted(policies, key=lambda p: p.name) != sorted(start.policies, key=lambda p: p.name):
            yield "C3", f"{ended}: {variant} on {start.endpoint} has policies {policies}, expected {start.policies}"
    for variant in sorted(set(registered) - set(weights)):
        yield "C3", f"{ended}: {variant} left {start.endpoint} but is still registered for autoscaling"
