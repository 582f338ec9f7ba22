"""What each variant on an endpoint is for, as its latest rollout sees it: `shepherd status` and the
dashboard both show this role, so they never disagree with each other or with the weights."""

from __future__ import annotations

from typing import Literal

from shepherd.rollouts.record import Phase, Rollout

VariantRole = Literal["serving", "candidate", "standby", "baseline", "rolled back", "other"]


def variant_role(variant_name: str, rollout: Rollout | None) -> VariantRole:
    """The role of ``variant_name`` given the endpoint's latest rollout (None: no rollout ever).

    While a rollout shifts, its candidate is the ``candidate`` and the previous variant ``serving``;
    from 100% on, the candidate is ``serving`` and the previous variant ``standby`` (weight 0, one
    change from serving again); once it is rolled back or failed, traffic is back on the previous
    variant and the candidate is ``rolled back``. A fresh baseline is the ``baseline`` throughout.
    """
    if rollout is None:
        return "serving"
    if rollout.fresh_baseline is not None and variant_name == rollout.fresh_baseline.variant_name:
        return "baseline"  # the live version again, compared with the candidate; never a rollback target
    candidate = variant_name == rollout.candidate.variant_name
    previous = rollout.live is not None and variant_name == rollout.live.variant_name
    if rollout.phase in (Phase.PREPARING, Phase.STARTING, Phase.SHIFTING):
        return "candidate" if candidate else "serving" if previous else "other"
    if rollout.phase in (Phase.WATCHING, Phase.RETIRING, Phase.COMPLETED):
        return "serving" if candidate else "standby" if previous else "other"
    # ABORTING, ROLLED_BACK, FAILED: traffic is back on the previous version (or never left it).
    return "rolled back" if candidate else "serving" if previous else "other"
