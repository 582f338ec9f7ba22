"""Clean-up of a finished rollout: its alarms, and the configs and models nothing uses any more.

Run by the pass that ends a rollout, and by every tick for the finished rollouts still listed under
``ROLLOUTS_TO_CLEAN_UP`` until it completes. It describes the endpoint, waits while it is changing (a
change under way may land on any of the rollout's configs), and never deletes the config the endpoint
runs, a model in it, or the baseline's config. Found stable on a config of a rollout that ended
without completing, with no rollout holding the endpoint, it first finishes the restore, as the
restore would (the scaling carried back first, the fleet autoscaling runs kept). A rollout that ended
while the endpoint was changing has its scaling settled here once the endpoint is stable
(scaling_handover.settle: the variant that serves carries it).
"""

from __future__ import annotations

from shepherd.capacity.ports import VariantAutoScaling
from shepherd.rollouts import naming
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint
from shepherd.rollouts.ports import AlarmControl, ChangeRejected, EndpointControl, RolloutStore, SetLive
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout
from shepherd.rollouts.restore import restored_baseline, restoring_config
from shepherd.rollouts.scaling_handover import hand_back, settle


def clean_up(
    rollout: Rollout,
    *,
    rollouts: RolloutStore,
    endpoints: EndpointControl,
    alarms: AlarmControl,
    scaling: VariantAutoScaling,
    namespace: str,
) -> str:
    """Delete the per-rollout alarms, and the configs and models nothing uses any more.

    Re-runnable: a finished rollout stays listed by `rollouts_to_clean_up` until this completes,
    so a failure half-way is finished by a later tick. What the endpoint runs now (described, not
    assumed from the outcome) and the endpoint's recorded baseline are never deleted.
    """
    alarms.delete_alarms(naming.rollout_alarm_names(namespace, rollout.endpoint_name, rollout.rollout_id))
    observed = endpoints.describe(rollout.endpoint_name)
    if observed is not None and observed.status not in (EndpointStatus.IN_SERVICE, EndpointStatus.FAILED):
        # A change still under way may land on any of this rollout's configs: delete none yet.
        return f"clean-up waits: endpoint is {observed.status}"
    live = _adopt_restore_config(rollout, observed, rollouts)
    if _left_on_its_configs(rollout, observed, live):
        # The abort ended before the endpoint was back as recorded (its restore gave up, or a
        # change landed after it ended): finish the restore, so endpoint and records agree again.
        # A first deployment that did not complete leaves no endpoint (as its abort deletes one).
        if rollouts.lock_holder(rollout.endpoint_name) is not None:
            # Not while another rollout holds the endpoint; nor done without it: that rollout may
            # end without changing the endpoint (its update rolled back by SageMaker), leaving it
            # here for good. Either it moves the endpoint off these configs, or this finishes then.
            return "clean-up waits: another rollout holds the endpoint, left on this rollout's config"
        if live is None:
            endpoints.delete_endpoint(rollout.endpoint_name)
            return "clean-up finishes the restore"
        assert observed is not None
        # As the restore would: the scaling back first (SageMaker refuses to remove the candidate the
        # retire's hand-over registered), and the fleet autoscaling runs now kept (kept_capacity.py).
        hand_back(scaling, rollout, observed)
        config_name, spec = restoring_config(rollout, observed)
        if spec is not None:
            endpoints.ensure_config(spec)
        endpoints.update_endpoint(rollout.endpoint_name, config_name)
        return "clean-up finishes the restore"
    if (
        rollout.retired_scaling is not None
        and _on_its_configs(rollout, observed)
        and rollouts.lock_holder(rollout.endpoint_name) is None
    ):
        # Ended while the endpoint was changing, the rollout left the scaling where it was; now the
        # endpoint is stable, the rule of an end applies (not once another rollout has it: it hands
        # the scaling over itself, and a later one's end settles it). Nothing to do if nothing was
        # recorded (the live variant was not autoscaled); done already if the end saw it stable.
        settle(scaling, rollout, observed)
    in_use = {observed.config_name if observed else None, live.config_name if live else None}
    configs = {rollout.shift_config, rollout.final_config, rollout.previous_config}
    if rollout.phase is not Phase.COMPLETED:
        configs.add(rollout.restore_config)  # written only by a restore (kept_capacity.py)
    for config in configs - in_use - {None}:
        assert config is not None
        endpoints.delete_config(config)
    retired = rollout.live if rollout.phase is Phase.COMPLETED else rollout.candidate
    running = {variant.name for variant in observed.variants} if observed else set()
    if (
        retired is not None
        and not _variants_running(rollout, retired.model_resource_name) & running
        and not rollouts.endpoints_serving(retired.model_resource_name)
    ):
        endpoints.delete_model(retired.model_resource_name)
    rollouts.cleaned_up(rollout.endpoint_name, rollout.rollout_id)
    return "cleaned up"


def _adopt_restore_config(
    rollout: Rollout, observed: ObservedEndpoint | None, rollouts: RolloutStore
) -> LiveDeployment | None:
    """The endpoint's baseline, made the rollout's restore config if its restore landed there only
    after the rollout ended (the restore gave up while the endpoint was still Updating): the endpoint
    runs the previous version on it, so the records must say so (the restore's own end does the same
    when it sees it land). Not while another rollout holds the endpoint, and only if the baseline is
    still the one read: a rollout that started from it meanwhile decides from what it read."""
    live = rollouts.live(rollout.endpoint_name)
    adopted = restored_baseline(rollout, observed) if observed is not None else None
    if (
        adopted is None
        or live is None
        or live.config_name == adopted.config_name
        or observed is None
        or observed.status is not EndpointStatus.IN_SERVICE
        or rollouts.lock_holder(rollout.endpoint_name) is not None
    ):
        return live
    try:
        rollouts.commit([SetLive(rollout.endpoint_name, adopted, only_if_config=live.config_name)])
    except ChangeRejected:
        return rollouts.live(rollout.endpoint_name)
    return adopted


def _left_on_its_configs(rollout: Rollout, observed: ObservedEndpoint | None, live: LiveDeployment | None) -> bool:
    """The endpoint serves a config of this ended (not completed) rollout instead of its recorded
    baseline (or none, for a first deployment). A restore SageMaker rolled back is tried again at
    the next pass, as the controller's restore is."""
    return (
        rollout.phase is not Phase.COMPLETED
        and observed is not None
        and observed.status is EndpointStatus.IN_SERVICE
        and (live is not None or rollout.is_first_deployment)
        and observed.config_name in {rollout.shift_config, rollout.final_config} - {live and live.config_name}
    )


def _on_its_configs(rollout: Rollout, observed: ObservedEndpoint | None) -> bool:
    """The endpoint runs a config this rollout wrote or started from: no later rollout changed it."""
    configs = {rollout.shift_config, rollout.final_config, rollout.previous_config, rollout.restore_config}
    return observed is not None and observed.config_name in configs - {None}


def _variants_running(rollout: Rollout, model_resource_name: str) -> set[str]:
    """The rollout's variants that run this model: the fresh baseline runs the live variant's."""
    variants = (rollout.candidate, rollout.live, rollout.fresh_baseline)
    return {v.variant_name for v in variants if v is not None and v.model_resource_name == model_resource_name}
