"""The live fleet is never shrunk by Shepherd (issue 23, rule 2).

An UpdateEndpoint gives every variant the instance count of its new config, whatever autoscaling has
made of it since: an endpoint scaled out to 12 at peak would drop to the 2 its config says in the
middle of a canary. So every config Shepherd writes (the shift config, the final config, a restore's)
gives the variant already serving the count observed just before (`live_count_to_keep`: the larger of
DescribeEndpoint's current and desired counts). A variant not on the endpoint, or one without counts
(serverless), keeps its configured count: an endpoint without autoscaling is written as before.
A restore after the retire (the old variant no longer on the endpoint) gives it back the count it
served with just before the retire, recorded with its scaling (`as_restored`).
"""

from shepherd.capacity.sizing import live_count_to_keep
from shepherd.rollouts.observed import ObservedEndpoint
from shepherd.rollouts.record import Rollout, VariantSpec


def as_observed(spec: VariantSpec, observed: ObservedEndpoint) -> VariantSpec:
    """``spec`` with the instance count its variant runs now, if it runs on the endpoint."""
    variant = observed.variant(spec.variant_name)
    if variant is None:
        return spec
    # A reported count below 1 is no fleet to keep (nothing serves on it): the configured count stands.
    current = variant.current_instances if (variant.current_instances or 0) >= 1 else None
    desired = variant.desired_instances if (variant.desired_instances or 0) >= 1 else None
    count = live_count_to_keep(current, desired, spec.initial_instance_count)
    if count == spec.initial_instance_count:
        return spec
    return spec.model_copy(update={"initial_instance_count": count})


def as_restored(rollout: Rollout, observed: ObservedEndpoint) -> VariantSpec:
    """The old live variant as a restore writes it: at its observed count while it is on the endpoint;
    once the retire has removed it, at the count it served with just before (recorded with its scaling:
    scaling_handover.py); else (not autoscaled: nothing moved it) at its configured count."""
    live, retired = rollout.live, rollout.retired_scaling
    assert live is not None
    if observed.variant(live.variant_name) is not None or retired is None or retired.instance_count is None:
        spec = as_observed(live, observed)
    elif retired.instance_count == live.initial_instance_count:
        spec = live
    else:
        spec = live.model_copy(update={"initial_instance_count": retired.instance_count})
    return _at_least_as_it_started(rollout, spec)


def _at_least_as_it_started(rollout: Rollout, spec: VariantSpec) -> VariantSpec:
    """A sized rollout's old variant may have been scaled in by its own policy as its share fell; the
    version it restores takes all the traffic back, so it gets at least the fleet that served the
    whole load before the rollout began (autoscaling scales it in again if the load is gone)."""
    started = rollout.sizing.live_count_at_start if rollout.sizing is not None else None
    if started is None or spec.initial_instance_count >= started:
        return spec
    return spec.model_copy(update={"initial_instance_count": started})
