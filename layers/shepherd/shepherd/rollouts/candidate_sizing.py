"""The candidate sized to its share (issue 23, rule 3), as the decision applies it. Pure.

A sized rollout (``Rollout.sizing``, set by the promotion: promotion_capacity.py; absent for a first
deployment, a count or another instance type the promotion named, or an endpoint without autoscaling
unless the promotion gave ``headroom``) gives the candidate ``ceil(full fleet x share x headroom)``
instances at each step, and the full fleet at 100% (`capacity.sizing.candidate_count`). Its count
only grows, and always *before* the weights that need it move: the shift config starts it at the first step's count, a
`ResizeVariants` (one UpdateEndpointWeightsAndCapacities with counts only) grows it before each next
step, and grows it during a bake if the live fleet grew meanwhile. A fresh baseline (the judge's
comparison variant) is sized the same way for its own share, so both start cold on equal footing.

"Full fleet" is the larger of the live variant's count before any weight moved
(``CandidateSizing.live_count_at_start``) and its count now (kept_capacity.py). The assumption,
stated: the load the whole fleet serves is at least what it served when the rollout started; if it
grows, the live variant scales out for its own share and the candidate follows that. Autoscaling
scaling the live variant *in* as its share falls does not shrink what the candidate is sized for.

A variant whose counts SageMaker does not report (serverless) is never resized.
"""

from shepherd.capacity.sizing import candidate_count
from shepherd.rollouts.kept_capacity import as_observed
from shepherd.rollouts.observed import ObservedEndpoint, ObservedVariant
from shepherd.rollouts.record import Rollout, VariantSpec


def started(rollout: Rollout, observed: ObservedEndpoint) -> Rollout:
    """The record at its start: the live fleet's count remembered, candidate (and fresh baseline)
    sized for the first step. Unchanged for a rollout that is not sized."""
    if rollout.sizing is None or rollout.live is None:
        return rollout
    live_now = as_observed(rollout.live, observed).initial_instance_count
    # A start tried again (its update failed) has still moved no weight: the larger count stands.
    at_start = max(live_now, rollout.sizing.live_count_at_start or 0)
    sized = rollout.model_copy(update={"sizing": rollout.sizing.model_copy(update={"live_count_at_start": at_start})})
    return with_counts(sized, counts_for_step(sized, observed, 0))


def counts_for_step(rollout: Rollout, observed: ObservedEndpoint, index: int) -> dict[str, int]:
    """Each sized variant's count for step ``index`` (the candidate's share, the fresh baseline's)."""
    sizing, live = rollout.sizing, rollout.live
    if sizing is None or live is None:
        return {}
    full = max(as_observed(live, observed).initial_instance_count, sizing.live_count_at_start or 0)
    percent = rollout.plan[index].percent
    counts = {rollout.candidate.variant_name: candidate_count(full, percent, sizing.headroom)}
    fresh = rollout.fresh_baseline
    if fresh is not None:
        # Without a share at this step (not judged) it waits at weight 0: one instance until a judged step.
        share = _fresh_share(rollout, index)
        counts[fresh.variant_name] = candidate_count(full, share, sizing.headroom) if share else 1
    return counts


def growth(rollout: Rollout, observed: ObservedEndpoint, index: int) -> dict[str, int]:
    """The variants that must grow before step ``index`` takes (or keeps) its traffic, and to what:
    each one running (or asked for: the smaller of CurrentInstanceCount and DesiredInstanceCount) fewer
    than its count for the step. The smaller, because a resize asked for by a pass that died may not
    have been provisioned: its desired count alone would let the weights move onto instances that do
    not run. Never a shrink; empty when nothing needs to grow or SageMaker reports no counts."""
    grow: dict[str, int] = {}
    for name, wanted in counts_for_step(rollout, observed, index).items():
        running = _running(observed.variant(name))
        if running is not None and wanted > running:
            grow[name] = wanted
    return grow


def with_counts(rollout: Rollout, counts: dict[str, int]) -> Rollout:
    """``rollout`` whose candidate and fresh baseline ask for ``counts`` (variants not named keep theirs)."""
    update: dict[str, object] = {"candidate": _counted(rollout.candidate, counts)}
    if rollout.fresh_baseline is not None:
        update["fresh_baseline"] = _counted(rollout.fresh_baseline, counts)
    return rollout.model_copy(update=update)


def provisioned(rollout: Rollout, observed: ObservedEndpoint) -> bool:
    """The candidate (and fresh baseline) run at least the counts the record asked for on the shift
    config: a resize, or the config's counts, took effect. True where SageMaker reports no counts, and
    on any other config: after the retire the candidate is autoscaled (its scaling was handed over
    before the update), so its count is autoscaling's to choose, not the record's to check."""
    return observed.config_name != rollout.shift_config or not _short(rollout, observed)


def caught_up(rollout: Rollout, observed: ObservedEndpoint) -> Rollout | None:
    """A sized rollout whose start landed but whose record write was lost (it has no
    ``live_count_at_start``): the record as the start would have written it, with the counts the
    candidate (and fresh baseline) run, so no step waits for instances nobody asked for. None when
    there is nothing to catch up."""
    sizing, live = rollout.sizing, rollout.live
    if sizing is None or live is None or sizing.live_count_at_start is not None:
        return None
    if observed.config_name != rollout.shift_config:
        return None
    at_start = as_observed(live, observed).initial_instance_count
    running = {
        spec.variant_name: variant.desired_instances
        for spec in (rollout.candidate, rollout.fresh_baseline)
        if spec is not None
        and (variant := observed.variant(spec.variant_name)) is not None
        and variant.desired_instances is not None
    }
    sized = rollout.model_copy(update={"sizing": sizing.model_copy(update={"live_count_at_start": at_start})})
    return with_counts(sized, running)


def shortfall(rollout: Rollout, observed: ObservedEndpoint) -> str:
    """What an operator reads when a resize did not land: which variant runs fewer instances than asked."""
    return "; ".join(
        f"{spec.variant_name} runs {variant.current_instances} instance(s) "
        f"(desired {variant.desired_instances}) of the {spec.initial_instance_count} asked for"
        for spec, variant in _short(rollout, observed)
    )


def _short(rollout: Rollout, observed: ObservedEndpoint) -> list[tuple[VariantSpec, ObservedVariant]]:
    short = []
    for spec in (rollout.candidate, rollout.fresh_baseline):
        variant = observed.variant(spec.variant_name) if spec is not None else None
        if spec is None or variant is None:
            continue
        running = _running(variant)
        if running is not None and running < spec.initial_instance_count:
            short.append((spec, variant))
    return short


def _running(variant: ObservedVariant | None) -> int | None:
    """The instances a variant surely runs: the smaller of its current and desired counts (a resize
    asked for is not running until provisioned); None when SageMaker reports neither."""
    reported = [] if variant is None else [variant.current_instances, variant.desired_instances]
    counts = [count for count in reported if count is not None]
    return min(counts) if counts else None


def _counted(spec: VariantSpec, counts: dict[str, int]) -> VariantSpec:
    count = counts.get(spec.variant_name)
    if count is None or count == spec.initial_instance_count:
        return spec
    return spec.model_copy(update={"initial_instance_count": count})


def _fresh_share(rollout: Rollout, index: int) -> int:
    """The fresh baseline's share at step ``index`` (Rollout.fresh_percent, for any step)."""
    at = rollout.model_copy(update={"step_index": index})
    return at.fresh_percent
