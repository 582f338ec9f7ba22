"""The rollback's contracts: an operator's rollback command, and what a rollback announces."""

from typing import ClassVar

from pydantic import Field

from shepherd.contracts import Announcement, Contract, EndpointName, Text
from shepherd.contracts.cost import RolloutCost
from shepherd.registry.model import VersionNumber


class ModelRollbackRequested(Contract):
    DETAIL_TYPE: ClassVar[str] = "Model Rollback Requested"

    endpoint_name: EndpointName
    reason: Text
    requested_by: Text
    to_version: VersionNumber | None = None  # default: the version live before the current one


class RolloutRolledBack(Announcement):
    DETAIL_TYPE: ClassVar[str] = "Rollout Rolled Back"

    rollout_id: str
    endpoint_name: str
    model_name: str
    version: int  # the version rolled back
    restored_version: int
    trigger: str  # the alarm's name, or who asked
    reason: str
    seconds_to_flip: float | None = None  # from the alarm's state change to the traffic flip
    command_id: str | None = Field(default=None, description="the event id of the command this answers")
    # The ledger at the flip (not final: the candidate is removed after), or closed when the rollout
    # ended without a flip seen (contracts/cost.py).
    cost: RolloutCost | None = None


class RollbackSkipped(Announcement):
    """An alarm or request that did not roll anything back, and why (e.g. after the watch window)."""

    DETAIL_TYPE: ClassVar[str] = "Rollback Skipped"

    endpoint_name: str
    trigger: str
    reason: str
    rollout_id: str | None = None
    model_name: str | None = None
    version: int | None = None
    command_id: str | None = Field(
        default=None, description="the event id of the Model Rollback Requested this answers"
    )
