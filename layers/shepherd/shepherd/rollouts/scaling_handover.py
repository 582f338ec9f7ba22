"""Auto scaling carried to the variant that serves next (issue 23, rule 4).

SageMaker refuses an UpdateEndpoint that removes a variant registered with Application Auto Scaling.
So before the retire (the final config, which drops the old live variant) the old variant's scalable
target and policies are registered for the candidate (`carried_scaling`: same limits, same suspended
state, same target-tracking policies), and only then is the old variant deregistered (which deletes
its policies): at no moment is the serving fleet without its scaling. A restore does the same the
other way, when the candidate was already given the scaling (a retire refused or overtaken by an
abort), so the previous version serves with its own scaling again.

Idempotent, read first: a variant not registered hands nothing over (an endpoint without autoscaling
costs one DescribeScalableTargets); a crash half-way is finished by the next pass, which finds the
old variant still registered and registers (updates) the new one again.
"""

from shepherd.capacity.ports import VariantAutoScaling
from shepherd.capacity.scaling import VariantCapacity, VariantScaling
from shepherd.capacity.sizing import carried_scaling


def hand_over(scaling: VariantAutoScaling, endpoint_name: str, from_variant: str, to_variant: str) -> bool:
    """Move ``from_variant``'s registration and policies to ``to_variant``; False if it had none.

    Raises `TransientError` (ask again next pass), `ScalingRequestRefused` or `ScalingNotCarried`
    (step scaling or metric math, which Shepherd does not copy: refused rather than dropped).
    """
    target = scaling.scalable_target(endpoint_name, from_variant)
    if target is None:
        return False
    policies = scaling.scaling_policies(endpoint_name, from_variant)
    old = VariantScaling(from_variant, VariantCapacity(None, None), target, policies)
    new = carried_scaling(old, to_variant)
    assert new.target is not None  # carried from a registered variant
    scaling.register(new.target)
    for policy in new.policies:
        assert policy.target_tracking is not None  # carried_scaling refuses any other kind
        scaling.put_target_tracking_policy(endpoint_name, to_variant, policy.name, policy.target_tracking)
    scaling.deregister(endpoint_name, from_variant)
    return True
