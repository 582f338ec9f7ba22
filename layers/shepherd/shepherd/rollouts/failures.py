"""Failures of a pass, on the record: a refusal for good, and retryable failures timed from the first.

SageMaker refusing a call for good: :func:`refused` is the record that says so (ABORTING, or the end
when the refusal came during a restore). Any other failure of a pass is timed from the first
(:func:`still_failing`; a pass that fails nothing, :func:`recovered`, and every action clear it);
once :func:`failing_too_long`, the rollout gives up as if refused.
"""

from datetime import datetime, timedelta

from shepherd.rollouts.actions import (
    Action,
    RecordProgress,
    Wait,
)
from shepherd.rollouts.decide import stamped
from shepherd.rollouts.record import (
    Phase,
    Rollout,
    require_aware,
    to_aborting,
)
from shepherd.rollouts.restore import finish


def refused(rollout: Rollout, now: datetime, reason: str) -> Action:
    """SageMaker refused a call the rollout needs, for good (``reason``): the record that says so.

    A rollout moving forward starts aborting (its restore comes from the next :func:`decide`); one
    already aborting cannot be restored any further and ends, its reason saying what was refused.
    Only a record write: nothing here calls SageMaker again.
    """
    require_aware(now)
    if rollout.phase.is_terminal:
        return Wait(f"rollout is {rollout.phase}")
    at = max(now, rollout.updated_at)
    if rollout.phase is Phase.ABORTING:
        action: Action = finish(rollout, at, f"could not restore the endpoint: {reason}")
    else:
        action = RecordProgress(f"aborting: {reason}", to_aborting(rollout, reason, Phase.FAILED, at))
    return stamped(rollout, action, at)


def still_failing(rollout: Rollout, now: datetime) -> Rollout:
    """The record after a retryable failure: ``failing_since`` set (kept from the first failure)."""
    return _failing_since(rollout, now, failing=True)


def recovered(rollout: Rollout, now: datetime) -> Rollout:
    """The record after a pass that failed nothing (a :class:`Wait`): ``failing_since`` cleared."""
    return _failing_since(rollout, now, failing=False)


def _failing_since(rollout: Rollout, now: datetime, *, failing: bool) -> Rollout:
    require_aware(now)
    at = max(now, rollout.updated_at)
    since = (rollout.failing_since or at) if failing else None
    return rollout.model_copy(update={"failing_since": since, "revision": rollout.revision + 1, "updated_at": at})


def failing_too_long(rollout: Rollout, now: datetime) -> bool:
    """Retryable failures have lasted the update deadline: the rollout gives up as if refused."""
    since = rollout.failing_since
    return since is not None and now >= since + timedelta(seconds=rollout.update_timeout_seconds)
