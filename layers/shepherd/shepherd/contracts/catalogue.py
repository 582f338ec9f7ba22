"""Every contract, in the order the README documents them: the tests check the README against these,
and the rollouts' outbox reads stored announcements back by their detail-type."""

from shepherd.contracts import Announcement, CommandRefused, Contract
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
    RolloutCompleted,
    RolloutFailed,
    RolloutHeld,
    RolloutResumed,
    RolloutResumeRefused,
    RolloutStarted,
    RolloutTrafficShifted,
)

ANNOUNCEMENTS: tuple[type[Announcement], ...] = (
    ModelVersionRegistered,
    ModelArtifactRejected,
    ModelArtifactIgnored,
    ModelVersionApproved,
    ModelVersionRejected,
    ModelVersionApprovalRefused,
    RolloutStarted,
    RolloutTrafficShifted,
    RolloutCompleted,
    RolloutFailed,
    PromotionRejected,
    ModelVersionRetired,
    RolloutRolledBack,
    RollbackSkipped,
    CommandRefused,
    CanaryAnalysisCompleted,
    RolloutHeld,
    GatingAlarmsMissing,
    RolloutResumed,
    RolloutResumeRefused,
)
COMMANDS: tuple[type[Contract], ...] = (
    ModelVersionApprovalRequested,
    ModelPromotionRequested,
    ModelRollbackRequested,
    ModelRolloutResumeRequested,
)
