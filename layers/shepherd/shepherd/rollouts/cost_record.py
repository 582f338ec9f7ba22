"""The cost ledger as the rollout record stores it: the pydantic twin of `capacity.cost.CostLedger`.

The ledger itself is a msgspec value (capacity/cost.py: it integrates observations); the record is
validated pydantic, so it keeps this copy, field for field, and converts at the edges (`ledger`,
`of`). Charged by each controller pass (cost_tracking.py) and closed when the rollout ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, Field

from shepherd.capacity.cost import CostLedger, Running, Usage
from shepherd.kernel.frozen import Frozen


class RunningInstances(Frozen):
    """Extra instances seen running at the last observation, charged until the next one."""

    role: str
    instance_type: str
    count: int = Field(ge=0)


class InstanceUsage(Frozen):
    """Instance-seconds charged so far to one (role, instance type)."""

    role: str
    instance_type: str
    instance_seconds: float = Field(ge=0)


class CostRecord(Frozen):
    """The ledger on the rollout record: what was charged, when last observed, and what runs now
    (nothing once closed)."""

    usage: tuple[InstanceUsage, ...] = ()
    last_at: AwareDatetime | None = None
    running: tuple[RunningInstances, ...] = ()

    def ledger(self) -> CostLedger:
        return CostLedger(
            usage=tuple(Usage(u.role, u.instance_type, u.instance_seconds) for u in self.usage),
            last_at=self.last_at,
            running=tuple(Running(r.role, r.instance_type, r.count) for r in self.running),
        )

    @classmethod
    def of(cls, ledger: CostLedger) -> Self:
        return cls(
            usage=tuple(
                InstanceUsage(role=u.role, instance_type=u.instance_type, instance_seconds=u.instance_seconds)
                for u in ledger.usage
            ),
            last_at=ledger.last_at,
            running=tuple(
                RunningInstances(role=r.role, instance_type=r.instance_type, count=r.count) for r in ledger.running
            ),
        )

    def closed(self, at: datetime) -> Self:
        """Charged up to `at`, with nothing running afterwards (the rollout ended)."""
        return self.of(self.ledger().close(at))
