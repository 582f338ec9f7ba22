"""What is observed: the endpoint as DescribeEndpoint reports it, and how it reads against a record.

Observed weights are floats: a step counts as reached when the candidate's (and the fresh baseline's)
share is within :data:`PERCENT_TOLERANCE` of the record's target on the record's target config.
Statuses in :data:`TRANSITIONAL` end by themselves; anything else but ``InService`` fails a rollout.
"""

from enum import StrEnum

from msgspec import Struct

from shepherd.rollouts.record import (
    Phase,
    Rollout,
)

# Observed weights are floats; a step is reached when the candidate's share is within this many
# percentage points of it (plans are whole percents, so neighbours are a full point apart).
PERCENT_TOLERANCE = 0.01


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
TRANSITIONAL = frozenset(
    {
        EndpointStatus.CREATING,
        EndpointStatus.UPDATING,
        EndpointStatus.SYSTEM_UPDATING,
        EndpointStatus.ROLLING_BACK,
    }
)


class ObservedVariant(Struct, frozen=True):
    """A production variant as DescribeEndpoint reports it. The instance counts are None when not
    reported (a serverless variant); autoscaling moves them without Shepherd (kept_capacity.py)."""

    name: str
    current_weight: float
    current_instances: int | None = None
    desired_instances: int | None = None


class ObservedEndpoint(Struct, frozen=True):
    """DescribeEndpoint, reduced: pass ``None`` to :func:`decide` when the endpoint does not exist."""

    status: EndpointStatus
    config_name: str
    variants: tuple[ObservedVariant, ...] = ()
    failure_reason: str | None = None

    def weight_of(self, variant: str) -> float | None:
        return next((v.current_weight for v in self.variants if v.name == variant), None)

    def variant(self, name: str) -> ObservedVariant | None:
        return next((v for v in self.variants if v.name == name), None)


def target_config(rollout: Rollout) -> str:
    if rollout.phase is Phase.RETIRING or rollout.is_first_deployment:
        return rollout.final_config
    assert rollout.shift_config is not None
    return rollout.shift_config


def at_target(rollout: Rollout, observed: ObservedEndpoint) -> bool:
    if observed.config_name != target_config(rollout):
        return False
    if observed.config_name == rollout.final_config:
        return True  # the candidate alone: its weight is all the traffic
    shares = _shares(rollout, observed)
    return (
        shares is not None
        and abs(shares[0] - rollout.target_percent) <= PERCENT_TOLERANCE
        and abs(shares[1] - rollout.fresh_percent) <= PERCENT_TOLERANCE
    )


def serves_live(rollout: Rollout, observed: ObservedEndpoint) -> bool:
    return rollout.live is not None and observed.weight_of(rollout.live.variant_name) is not None


def candidate_percent(rollout: Rollout, observed: ObservedEndpoint) -> float | None:
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


def describe(rollout: Rollout, observed: ObservedEndpoint) -> str:
    percent = candidate_percent(rollout, observed) if observed.config_name == rollout.shift_config else None
    share = f" with the candidate at {percent:g}%" if percent is not None else ""
    return f"{observed.status} on config {observed.config_name}{share}"


def describe_target(rollout: Rollout) -> str:
    config = target_config(rollout)
    if config == rollout.final_config:
        return f"config {config}"
    return f"config {config} with the candidate at {rollout.target_percent}%"


def because(observed: ObservedEndpoint) -> str:
    return f" (FailureReason: {observed.failure_reason})" if observed.failure_reason else ""
