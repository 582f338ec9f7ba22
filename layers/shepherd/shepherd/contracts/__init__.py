"""Event contracts: the commands Shepherd accepts and the announcements it makes, on the Shepherd bus.

Every announcement has source `shepherd`, a detail-type given by its class, and a snake_case detail
that carries the identifiers it is about. These models are the contract: the README's examples are
checked against them by the tests.

One module per part of Shepherd (:mod:`.registry`, :mod:`.rollouts`, :mod:`.rollback`) and the
catalogue of all of them (:mod:`.catalogue`); this module holds what they share. Every contract can be
imported from here (``from shepherd.contracts import RolloutStarted``): its module is imported on
first use, so a function's cold start creates the classes of the contracts it uses, not of all 25.
"""

import sys
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import StringConstraints, ValidationError

from shepherd.contracts.free_text import SafeText, escape_unsafe
from shepherd.kernel.frozen import Frozen
from shepherd.kernel.sagemaker_names import SageMakerName

if TYPE_CHECKING:  # the names this module lends from the others, for the type checker
    from shepherd.contracts.catalogue import ANNOUNCEMENTS, COMMANDS
    from shepherd.contracts.cost import RolloutCost
    from shepherd.contracts.registry import (
        ModelArtifactIgnored,
        ModelArtifactRejected,
        ModelVersionApprovalRefused,
        ModelVersionApprovalRequested,
        ModelVersionApproved,
        ModelVersionRegistered,
        ModelVersionRejected,
    )
    from shepherd.contracts.rollback import ModelRollbackRequested, RollbackSkipped, RolloutRolledBack
    from shepherd.contracts.rollouts import (
        CanaryAnalysisCompleted,
        GatingAlarmsMissing,
        ModelPromotionRequested,
        ModelRolloutResumeRequested,
        ModelVersionRetired,
        PromotionRejected,
        RolloutAnnouncement,
        RolloutCompleted,
        RolloutFailed,
        RolloutHeld,
        RolloutResumed,
        RolloutResumeRefused,
        RolloutStarted,
        RolloutTrafficShifted,
        TrafficStepDetail,
    )

__all__ = [
    "ANNOUNCEMENTS",
    "COMMANDS",
    "SOURCE",
    "Announcement",
    "CanaryAnalysisCompleted",
    "CommandRefused",
    "Contract",
    "EndpointName",
    "GatingAlarmsMissing",
    "ModelArtifactIgnored",
    "ModelArtifactRejected",
    "ModelPromotionRequested",
    "ModelRollbackRequested",
    "ModelRolloutResumeRequested",
    "ModelVersionApprovalRefused",
    "ModelVersionApprovalRequested",
    "ModelVersionApproved",
    "ModelVersionRegistered",
    "ModelVersionRejected",
    "ModelVersionRetired",
    "PromotionRejected",
    "RollbackSkipped",
    "RolloutAnnouncement",
    "RolloutCompleted",
    "RolloutCost",
    "RolloutFailed",
    "RolloutHeld",
    "RolloutResumeRefused",
    "RolloutResumed",
    "RolloutRolledBack",
    "RolloutStarted",
    "RolloutTrafficShifted",
    "Text",
    "TrafficStepDetail",
    "validation_problems",
]

SOURCE = "shepherd"
Text = Annotated[SafeText, StringConstraints(min_length=1, max_length=1024)]
EndpointName = SageMakerName


def validation_problems(invalid: ValidationError) -> str:
    """Each failing field and what is wrong with it, on one line (`detail.version: ...; ...`): how a
    command that breaks its contract is described, by the functions and by the CLI alike."""
    # A dict key is part of the location: written with its unsafe characters escaped.
    return "; ".join(
        f"{escape_unsafe('.'.join(str(part) for part in error['loc']))}: {error['msg']}" for error in invalid.errors()
    )


class Contract(Frozen):
    DETAIL_TYPE: ClassVar[str]


class Announcement(Contract):
    """Something Shepherd announces, with source `shepherd`."""


class CommandRefused(Announcement):
    """A command whose detail breaks its contract: nothing was done. It answers the command by its
    event id, so a sender waiting for an answer gets one (a damaged envelope, with no id to answer,
    fails the invocation instead and ends in the function's dead-letter queue)."""

    DETAIL_TYPE: ClassVar[str] = "Command Refused"

    command_id: str
    command: str  # the command's detail-type
    source: str  # the event's source: who sent it
    reason: Text  # each failing field with what is wrong with it, on one line


# Where each contract is defined: imported on first use (PEP 562).
_MODULE_OF = {
    **dict.fromkeys(
        (
            "ModelVersionApprovalRequested",
            "ModelVersionRegistered",
            "ModelArtifactRejected",
            "ModelArtifactIgnored",
            "ModelVersionApproved",
            "ModelVersionRejected",
            "ModelVersionApprovalRefused",
        ),
        "registry",
    ),
    **dict.fromkeys(
        (
            "ModelPromotionRequested",
            "TrafficStepDetail",
            "RolloutAnnouncement",
            "RolloutStarted",
            "RolloutTrafficShifted",
            "RolloutCompleted",
            "RolloutFailed",
            "PromotionRejected",
            "ModelVersionRetired",
            "ModelRolloutResumeRequested",
            "CanaryAnalysisCompleted",
            "RolloutHeld",
            "GatingAlarmsMissing",
            "RolloutResumed",
            "RolloutResumeRefused",
        ),
        "rollouts",
    ),
    **dict.fromkeys(("ModelRollbackRequested", "RolloutRolledBack", "RollbackSkipped"), "rollback"),
    "RolloutCost": "cost",
    **dict.fromkeys(("ANNOUNCEMENTS", "COMMANDS"), "catalogue"),
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    qualified = f"{__name__}.{module}"
    __import__(qualified)  # rather than importlib.import_module, which python -X importtime does not report
    return getattr(sys.modules[qualified], name)


def __dir__() -> list[str]:
    """The names defined here and those lent on first use (PEP 562), for `dir()` and completion."""
    return sorted({*globals(), *_MODULE_OF})
