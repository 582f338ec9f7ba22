"""Which rollouts an alarm acts on: by registration, by a promotion naming it, or by its dimensions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shepherd.rollouts.ports import RolloutStore, StoredRollout
    from shepherd.rollouts.rollback import AlarmStateChange


def alarm_targets(
    rollouts: RolloutStore, change: AlarmStateChange
) -> tuple[list[tuple[str, StoredRollout | None]], str]:
    """The rollouts an alarm that is no rollout's own acts on (or, with none, why not).

    It acts on a rollout whose own alarm it is (`RollbackService.handle_alarm`), or whose promotion named it,
    whatever its dimensions; or if its dimensions name the endpoint and the rollout's candidate
    variant. With no rollout, an alarm on an endpoint's live variant is skipped (announced); any
    other alarm (on another variant, on the endpoint as a whole, elsewhere) is ignored. A metric-math
    alarm is judged by all of its metrics at once, never by their order: one metric on the candidate
    variant makes it the candidate's (comparing it with the baseline is still watching it).
    """
    watched = change.variants()
    active = rollouts.active_rollouts()
    acting = [
        stored
        for stored in active
        if change.alarm_name in stored.rollout.gating_alarms
        or (stored.rollout.endpoint_name, stored.rollout.candidate.variant_name) in watched
    ]
    if acting:
        return [(stored.rollout.endpoint_name, stored) for stored in acting], ""
    endpoints = sorted({endpoint for endpoint, _ in watched})
    if not endpoints:
        return [], f"{change.alarm_name} is no rollout's alarm and names no endpoint"
    names = ", ".join(sorted(f"{variant or 'no variant'} on {endpoint}" for endpoint, variant in watched))
    on_endpoint = [stored.rollout for stored in active if stored.rollout.endpoint_name in endpoints]
    if on_endpoint:
        rollout = on_endpoint[0]
        return [], (
            f"{change.alarm_name} names {names}, not the candidate {rollout.candidate.variant_name} of "
            f"rollout {rollout.rollout_id}, and is not one of its alarms"
        )
    managed = False
    for endpoint_name in endpoints:
        live = rollouts.live(endpoint_name)
        managed = managed or live is not None
        if live is not None and (endpoint_name, live.variant.variant_name) in watched:
            return [(endpoint_name, None)], ""  # about the version the endpoint settled on: skipped
    if not managed:
        return [], f"{change.alarm_name} maps to no endpoint Shepherd manages"
    return [], f"{change.alarm_name} names {names}, not a live variant"
