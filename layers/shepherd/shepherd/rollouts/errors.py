"""What can go wrong while a rollout talks to SageMaker or its store, named by what happened.

`ConflictError` used to stand for three different things; each now has its own name. The older
names stay importable (`EndpointBusy`, `ChangeRejected` from `rollouts.ports`) so callers keep working.
"""

from __future__ import annotations

from shepherd.registry.errors import ConflictError, ShepherdError
from shepherd.rollouts.ports import ChangeRejected, EndpointBusy

# A conditional write lost: another writer changed the record since it was read.
LostCondition = ChangeRejected
# The endpoint's lock is held by another rollout.
EndpointLocked = EndpointBusy


class EndpointStillUpdating(ConflictError):
    """SageMaker refused a change because another change of the endpoint is in progress: decide again later."""


class EndpointRequestRefused(ShepherdError):
    """SageMaker refused a request for good (a quota, an invalid request, a missing permission).

    Asking again gives the same answer, so the rollout that needs it fails with `reason`.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = f"{code}: {reason}"


class AlarmRequestRefused(ShepherdError):
    """CloudWatch refused to create a rollout's own alarm for good (a quota, a missing permission, an
    invalid alarm): a rollout without them must not run, so its promotion is refused with `reason`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = f"{code}: {reason}"
