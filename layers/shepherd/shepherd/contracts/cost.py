"""A rollout's cost ledger as its end announcements carry it (`Rollout Completed`, `Rollout Failed`,
`Rollout Rolled Back`, `Model Version Retired`): extra instance-hours and their estimated price."""

from datetime import datetime

from shepherd.contracts import Contract


class RolloutCost(Contract):
    """Extra instance-hours the rollout ran up to ``as_of`` (exact, from the counts each controller
    pass observed) and their estimated price from ``price_table`` (an estimate: approximate on-demand
    prices unless the stack names its own table). ``estimated_cost_usd`` is absent when a type has no
    price (``unpriced_instance_types``): a partial sum would read as the whole. ``final`` is false when
    the extra capacity still runs: at `Rollout Completed` the previous variant waits at weight 0 for
    the watch window, at a rollback's flip the candidate is not yet removed; the closed ledger is on
    the rollout record (`shepherd rollout`) and in `Model Version Retired`."""

    extra_instance_hours: float
    extra_instance_hours_by_role: dict[str, float]
    extra_instance_hours_by_type: dict[str, float]
    estimated_cost_usd: float | None = None  # absent when a type is unpriced
    unpriced_instance_types: list[str]
    price_table: str
    as_of: datetime
    final: bool
