"""Which versions were live on an endpoint: what an operator's rollback may ship (issue 20).

Read from the endpoint's rollout records, which only Shepherd writes (a promotion starts one, only the
controller completes one), never from a command: a rollout that COMPLETED made its version the
endpoint's baseline, and every rollout names the baseline it started from (`previous_version`). The
endpoint's current baseline counts too. Rollout records are never deleted, so endpoints deployed
before this rule existed need no back-fill: their history is already there.
"""

from __future__ import annotations

from collections.abc import Iterable

from shepherd.rollouts.ports import StoredRollout
from shepherd.rollouts.record import LiveDeployment, Phase


def versions_live_on(rollouts: Iterable[StoredRollout], live: LiveDeployment | None) -> frozenset[tuple[str, int]]:
    """(model, version) of every version that served the endpoint as its baseline."""
    found: set[tuple[str, int]] = set()
    if live is not None:
        found.add((live.model_name, live.version))
    for stored in rollouts:
        rollout = stored.rollout
        if rollout.phase is Phase.COMPLETED:
            found.add((rollout.model_name, rollout.version))
        if rollout.previous_model_name is not None and rollout.previous_version is not None:
            found.add((rollout.previous_model_name, rollout.previous_version))
    return frozenset(found)


def never_live(endpoint_name: str, model_name: str, version: int, live_before: frozenset[tuple[str, int]]) -> str:
    """The refusal of a rollback to a version that never served the endpoint."""
    mine = sorted(number for model, number in live_before if model == model_name)
    earlier = f" (live there before: {', '.join(f'v{number}' for number in mine)})" if mine else ""
    return (
        f"{model_name} version {version} was never live on {endpoint_name}: a rollback goes back only to a "
        f"version that served the endpoint before{earlier}; promote it instead, with its own rollout"
    )
