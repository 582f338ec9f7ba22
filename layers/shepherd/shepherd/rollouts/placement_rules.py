"""The stack's limits on what a promotion may put on an endpoint (issue 20): the model it is bound to,
the instance types allowed and the most instances a variant may ask for.

Pure checks, each returning the refusal's reason or None. IAM holds the instance types too (the
controller may create endpoint configs only of `AllowedInstanceTypes`); nothing in IAM can see an
instance count, so the count is held here alone.
"""

from __future__ import annotations

from msgspec import Struct

from shepherd.rollouts.record import LiveDeployment, VariantSpec


class PlacementRules(Struct, frozen=True):
    """The stack parameters AllowedInstanceTypes and MaxInstanceCount."""

    allowed_instance_types: tuple[str, ...]
    max_instance_count: int


def other_model(endpoint_name: str, model_name: str, bound: LiveDeployment | None) -> str | None:
    """A promotion of another model than the one the endpoint serves, without `replace_model`.

    The endpoint is bound to the model of its baseline: the model first deployed on it, until a
    promotion with `replace_model` puts another there (and binds the endpoint to that one)."""
    if bound is None or bound.model_name == model_name:
        return None
    return (
        f"endpoint {endpoint_name} is bound to {bound.model_name} (version {bound.version} live): "
        f"promoting {model_name} onto it needs replace_model: true in the command (shepherd promote --replace-model)"
    )


def outside_limits(rules: PlacementRules, candidate: VariantSpec, live: VariantSpec | None) -> str | None:
    """The candidate's instances beyond the stack's limits, or a live variant that the rollout's configs
    (which hold it beside the candidate) could not be created with."""
    allowed = ", ".join(rules.allowed_instance_types) or "none"
    if candidate.instance_type not in rules.allowed_instance_types:
        return f"instance type {candidate.instance_type} is not allowed on this stack (AllowedInstanceTypes: {allowed})"
    if candidate.initial_instance_count > rules.max_instance_count:
        return (
            f"{candidate.initial_instance_count} instances is more than the {rules.max_instance_count} "
            "allowed per variant on this stack (MaxInstanceCount)"
        )
    if live is not None and live.instance_type not in rules.allowed_instance_types:
        return (
            f"the live variant {live.variant_name} runs on {live.instance_type}, which is no longer allowed "
            f"on this stack (AllowedInstanceTypes: {allowed}): no config holding it can be created; "
            "add the type back to AllowedInstanceTypes for this rollout"
        )
    return None
