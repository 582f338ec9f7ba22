"""What a promotion checks before it takes the lock, so that a refusal leaves nothing behind.

The version's status (:func:`deployable`), its image against the stack's image rule
(:func:`inference_image`), its approved copy (:func:`secured`, made now at the latest), and the limits
on deployers and operators (:func:`outside_rules`: the endpoint's model, a rollback's version, the
placement rules). Each refusal is a :class:`PromotionRefused`, recorded and announced by promotion.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shepherd.registry.errors import ArtifactNotApprovable
from shepherd.registry.images import image_refusal
from shepherd.registry.model import ModelVersion, VersionStatus
from shepherd.registry.ports import ArtifactVault, Registry
from shepherd.rollouts.live_history import never_live, versions_live_on
from shepherd.rollouts.placement_rules import PlacementRules, other_model, outside_limits
from shepherd.rollouts.ports import RolloutStore
from shepherd.rollouts.record import LiveDeployment, VariantSpec

if TYPE_CHECKING:  # promotion.py imports this module: its values are types here
    from shepherd.rollouts.promotion import PromotionRequest, PromotionSettings


class PromotionRefused(Exception):
    def __init__(self, reason: str, version: int | None = None, active_rollout_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.version = version
        self.active_rollout_id = active_rollout_id


def inference_image(version: ModelVersion, settings: PromotionSettings) -> str:
    """The version's image, if the stack's image rule allows it now."""
    image = version.inference_image or settings.default_inference_image
    if image is None:
        raise PromotionRefused(
            f"{version.model_name} version {version.version} names no inference_image and the stack "
            "has no DefaultInferenceImage",
            version.version,
        )
    refusal = image_refusal(image, settings.image_policy)
    if refusal is not None:
        source = "its manifest's" if version.inference_image else "the stack's DefaultInferenceImage:"
        raise PromotionRefused(f"{version.model_name} version {version.version}: {source} {refusal}", version.version)
    return image


def secured(version: ModelVersion, vault: ArtifactVault, registry: Registry) -> ModelVersion:
    """The version with its approved copy: made now, at the latest, for a version promoted without
    approval (RequireApproval false) or approved before approved copies existed."""
    if version.approved_artifact is not None:
        return version
    try:
        approved = vault.secure(version)
    except ArtifactNotApprovable as unfit:
        raise PromotionRefused(
            f"{version.model_name} version {version.version}: artifact not approvable: {unfit.reason}",
            version.version,
        ) from None
    return registry.record_approved_artifact(version.model_name, version.version, approved)


def outside_rules(
    request: PromotionRequest,
    version: ModelVersion,
    known: LiveDeployment | None,
    candidate: VariantSpec,
    live: LiveDeployment | None,
    rollouts: RolloutStore,
    placement: PlacementRules | None,
) -> str | None:
    """What the stack does not let operators and deployers do (issue 20), or None."""
    if request.is_rollback:
        # A rollback ships only what served this endpoint before, of whichever model (one Query).
        live_before = versions_live_on(rollouts.rollouts_of(request.endpoint_name), known)
        if (version.model_name, version.version) not in live_before:
            return never_live(request.endpoint_name, version.model_name, version.version, live_before)
    elif not request.replace_model:
        refusal = other_model(request.endpoint_name, version.model_name, known)
        if refusal is not None:
            return refusal
    rules = placement
    return None if rules is None else outside_limits(rules, candidate, live.variant if live else None)


def deployable(request: PromotionRequest, settings: PromotionSettings) -> tuple[VersionStatus, ...]:
    """The statuses a version may be promoted from."""
    again = (VersionStatus.ROLLED_BACK,) if request.allow_rolled_back else ()
    if request.is_rollback:
        return (VersionStatus.APPROVED, VersionStatus.RETIRED, *again)
    if settings.require_approval:
        return (VersionStatus.APPROVED, *again)
    return (VersionStatus.APPROVED, VersionStatus.REGISTERED, *again)
