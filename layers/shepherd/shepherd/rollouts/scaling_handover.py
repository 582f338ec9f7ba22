"""Auto scaling carried to the variant that serves next (issue 23, rule 4).

SageMaker refuses an UpdateEndpoint that removes a variant registered with Application Auto Scaling,
and refuses to register a variant its endpoint does not run. So:

- Before the retire (the final config drops the old live variant), its registration is read and kept
  on the record (`record`, `Rollout.retired_scaling`) with the count it serves with (a restore after the
  retire gives it that fleet back); reconcile.py writes that record before anything is deregistered,
  because deregistering deletes the policies and nothing in AWS keeps them.
- The retire then registers the candidate with it (`carry_to`: same policies and suspended state, the
  promotion's min/max override if any) before deregistering the old variant: at no moment is the
  serving fleet without its scaling.
- A restore deregisters the candidate before the UpdateEndpoint that removes it, and registers the
  recorded scaling (its own limits, never the override) for the old variant once that variant is on
  the endpoint: at once if it still is (a restore from the shift config), else when the restore is
  observed done, before the rollout ends, or by the clean-up for a rollout that ended without it.
- Whatever ends a rollout, the variant serving afterwards carries the scaling (`settle`): at the end
  if the endpoint is stable, else by the clean-up once it is (clean_up.py).

Level-triggered and read first: a variant already registered keeps its registration (ours from an
earlier pass, or its owner's since), only missing policies are put, and deregistering what is absent
is done; so a crash between any two calls is finished by the next pass.
"""

from shepherd.capacity.ports import VariantAutoScaling
from shepherd.capacity.scaling import VariantCapacity, VariantScaling
from shepherd.capacity.sizing import ScalingOverrides, carried_scaling
from shepherd.rollouts.kept_capacity import as_observed
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint
from shepherd.rollouts.record import Rollout
from shepherd.rollouts.recorded_scaling import RecordedScaling


def overrides(rollout: Rollout) -> ScalingOverrides:
    """The promotion's min/max for the new live variant (none: the old variant's)."""
    limits = rollout.scaling_limits
    if limits is None:
        return ScalingOverrides()
    return ScalingOverrides(limits.min_capacity, limits.max_capacity)


def record(scaling: VariantAutoScaling, rollout: Rollout, observed: ObservedEndpoint) -> RecordedScaling | None:
    """The live variant's registration to keep on the record before the retire, with the count it
    serves with now; None if not registered.

    Refuses now (`ScalingNotCarried`) what the candidate could not be given: step scaling, metric math,
    an override outside 1 <= min <= max, before anything is changed.
    """
    assert rollout.live is not None
    endpoint, live = rollout.endpoint_name, rollout.live.variant_name
    target = scaling.scalable_target(endpoint, live)
    if target is None:
        return None
    policies = scaling.scaling_policies(endpoint, live)
    old = VariantScaling(live, VariantCapacity(None, None), target, policies)
    carried_scaling(old, rollout.candidate.variant_name, overrides(rollout))
    return RecordedScaling.of(target, policies, as_observed(rollout.live, observed).initial_instance_count)


def recounted(rollout: Rollout, observed: ObservedEndpoint) -> RecordedScaling | None:
    """The recorded scaling with the count the live variant serves with now, if autoscaling moved it
    since it was recorded (a retire tried again after failing half-way); None if nothing changed."""
    recorded, live = rollout.retired_scaling, rollout.live
    if recorded is None or live is None or observed.variant(live.variant_name) is None:
        return None
    count = as_observed(live, observed).initial_instance_count
    return None if recorded.instance_count == count else recorded.model_copy(update={"instance_count": count})


def carry_to(scaling: VariantAutoScaling, rollout: Rollout, keeper: str | None) -> None:
    """``keeper`` (the rollout's live or candidate variant, or None) carries the recorded scaling; then
    the rollout's other variants are deregistered. Nothing to do if nothing was recorded (the live
    variant was not registered, or its scaling was never handed over).

    Raises `TransientError` (ask again next pass), `ScalingRequestRefused` or `ScalingNotCarried`.
    """
    recorded = rollout.retired_scaling
    if recorded is None:
        return
    assert rollout.live is not None
    endpoint, live, candidate = rollout.endpoint_name, rollout.live.variant_name, rollout.candidate.variant_name
    if keeper is not None:
        own = recorded.scaling_of(endpoint, live)
        _ensure(scaling, endpoint, own if keeper == live else carried_scaling(own, keeper, overrides(rollout)))
    for variant in (live, candidate):
        if variant != keeper:
            scaling.deregister(endpoint, variant)


def hand_back(scaling: VariantAutoScaling, rollout: Rollout, observed: ObservedEndpoint | None) -> None:
    """Before a restore's UpdateEndpoint removes the candidate: the candidate is deregistered, and the
    old variant gets its recorded scaling back if it is on the endpoint (else once it is: `settle`)."""
    assert rollout.live is not None
    on_endpoint = observed is not None and observed.variant(rollout.live.variant_name) is not None
    carry_to(scaling, rollout, rollout.live.variant_name if on_endpoint else None)


def settle(scaling: VariantAutoScaling, rollout: Rollout, observed: ObservedEndpoint | None) -> None:
    """Once a rollout has ended on a stable endpoint: the variant that serves carries the scaling, and
    none of the rollout's that left the endpoint stays registered. Nothing while the endpoint is
    changing: the pass that ends the rollout, else its clean-up, does it once it is stable."""
    if observed is None or observed.status is not EndpointStatus.IN_SERVICE or rollout.live is None:
        return
    serving = frozenset(variant.name for variant in observed.variants)
    carry_to(scaling, rollout, keeper_of(rollout, serving))


def keeper_of(rollout: Rollout, serving: frozenset[str]) -> str | None:
    """The variant that keeps the scaling once a rollout ends: the old live one if it serves (a restore,
    or one left half-way), else the candidate if it serves, else none of the rollout's."""
    assert rollout.live is not None
    for variant in (rollout.live.variant_name, rollout.candidate.variant_name):
        if variant in serving:
            return variant
    return None


def _ensure(scaling: VariantAutoScaling, endpoint: str, wanted: VariantScaling) -> None:
    """Register ``wanted`` unless its variant is registered, and put the policies it lacks (by name)."""
    assert wanted.target is not None
    variant = wanted.variant_name
    if scaling.scalable_target(endpoint, variant) is None:
        scaling.register(wanted.target)
        present: set[str] = set()
    else:
        present = {policy.name for policy in scaling.scaling_policies(endpoint, variant)}
    for policy in wanted.policies:
        if policy.name not in present:
            assert policy.target_tracking is not None  # recorded ones are all target tracking
            scaling.put_target_tracking_policy(endpoint, variant, policy.name, policy.target_tracking)
