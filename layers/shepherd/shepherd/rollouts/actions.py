"""The actions the decision returns (decide.py), and what carrying each one out means.

=====================  ================================================================  ================
action                 adapter (reconcile.py carries it out)                             then
=====================  ================================================================  ================
Wait                   nothing (log ``reason``; ``alarms`` are the ones holding it)       no write
CreateEndpoint         CreateEndpointConfig(config) [exists = done] + CreateEndpoint      write
UpdateEndpoint         CreateEndpointConfig(create_config) if given + UpdateEndpoint      write
ShiftTraffic           UpdateEndpointWeightsAndCapacities(candidate, live weights)       write, announce
ResizeVariants         UpdateEndpointWeightsAndCapacities(counts only: candidate_sizing)  write
DeleteEndpoint         DeleteEndpoint (a failed first deployment's own endpoint)          write
RecordProgress         nothing: the endpoint is already where the record is going         write
Complete               nothing                                                           terminal
Fail                   nothing                                                           terminal
FinishRollback         nothing                                                           terminal
=====================  ================================================================  ================

"write": commit ``next`` conditionally on the old revision. "announce": ``Rollout Traffic Shifted``
with ``from_percent``/``to_percent`` (``to_percent`` 0 is the revert of an aborting rollout).
"terminal": write ``next`` (COMPLETED / FAILED / ROLLED_BACK), release the lock, leave the active
index, forget the per-rollout alarms and set the version statuses in the same transaction, then
announce (``Rollout Completed``, ``Rollout Failed``); clean-up deletes what nothing uses any more.

``ShiftTraffic`` weights: candidate ``percent / 100``, live the rest; with a fresh baseline a judged
step of ``p`` gives it ``min(p, 100 - p)`` and the live variant ``100 - 2p`` (0 when ``2p > 100``);
any other step gives the fresh baseline 0 (:attr:`Rollout.fresh_percent`).
"""

from datetime import datetime
from typing import Literal, TypeAlias

from msgspec import Struct

from shepherd.rollouts.record import (
    LiveDeployment,
    Rollout,
    VariantSpec,
)


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
    (back to ``previous_config``, which exists: ``create_config`` is None; or, when autoscaling moved
    the live fleet, to ``Rollout.restore_config`` at its observed count: kept_capacity.py)."""

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


class ResizeVariants(Struct, frozen=True):
    """Grow the candidate (and a fresh baseline) to ``counts`` before their share grows, weights
    untouched (candidate_sizing.py). ``percent``: the share the counts are for."""

    endpoint_name: str
    counts: tuple[tuple[str, int], ...]
    percent: int
    next: Rollout

    def requested(self) -> dict[str, int]:
        return dict(self.counts)


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
    """The rollout failed; ``reason`` says why. ``baseline``: the endpoint's new baseline, when the
    restore put the live variant back on its own config (``Rollout.restore_config``)."""

    reason: str
    next: Rollout
    baseline: LiveDeployment | None = None


class FinishRollback(Struct, frozen=True):
    """The endpoint is back as it was before the rollout: the rollback is done (``baseline`` as for Fail)."""

    reason: str
    next: Rollout
    baseline: LiveDeployment | None = None


Action: TypeAlias = (
    Wait
    | CreateEndpoint
    | UpdateEndpoint
    | ShiftTraffic
    | ResizeVariants
    | DeleteEndpoint
    | RecordProgress
    | Complete
    | Fail
    | FinishRollback
)


def shift(next_record: Rollout, from_percent: int, to_percent: int) -> ShiftTraffic:
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


def endpoint_config(name: str, *variants: tuple[VariantSpec, float]) -> EndpointConfigSpec:
    return EndpointConfigSpec(name, tuple(WeightedVariant(spec, weight) for spec, weight in variants))
