"""The cost ledger kept on the rollout record (issue 23, rule 5): what each controller pass charges.

A rollout driven through its steps with known instance counts and times gives the exact extra
instance-hours; a terminal record's ledger is closed; a record stored before the ledger reads and
writes as before; the announcements' view of it is priced from the table it names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shepherd.capacity.prices import BUILT_IN, PriceTable
from shepherd.rollouts import naming
from shepherd.rollouts.actions import Action, CreateEndpoint, ShiftTraffic, UpdateEndpoint, Wait
from shepherd.rollouts.cost_tracking import charge, charged, cost_report
from shepherd.rollouts.decide import decide
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint, ObservedVariant
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout, VariantSpec, new_rollout, to_ended
from shepherd.rollouts.strategy import parse_strategy

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ENDPOINT = "churn-prod"
RID = naming.rollout_id("6a7e8f2b-1c2d-4e5f-8a9b-0c1d2e3f4a5b", T0)
SHIFT = naming.endpoint_config_name(ENDPOINT, RID, "shift")
FINAL = naming.endpoint_config_name(ENDPOINT, RID, "final")
PREVIOUS = "churn-prod-previous"
CANDIDATE = VariantSpec.for_version("churn", 2, instance_type="ml.g5.xlarge", initial_instance_count=2)
LIVE = VariantSpec.for_version("churn", 1, instance_type="ml.m5.xlarge", initial_instance_count=3)
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 600, "post_deploy_watch_seconds": 900}


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def rollout(strategy: dict[str, Any] | None = None, judged: bool = False, first: bool = False) -> Rollout:
    analysis = {"analysis": {"judge": {"baseline": "fresh"} if judged else {"enabled": False}}}
    return new_rollout(
        rollout_id=RID,
        endpoint_name=ENDPOINT,
        model_name="churn",
        version=2,
        strategy=parse_strategy({**(strategy or CANARY), **analysis}),
        candidate=CANDIDATE,
        live=None if first else LiveDeployment(model_name="churn", version=1, variant=LIVE, config_name=PREVIOUS),
        now=T0,
    )


def endpoint(config: str, **counts: tuple[float, int]) -> ObservedEndpoint:
    """The endpoint InService on `config`, each variant at (weight, instances)."""
    variants = tuple(ObservedVariant(name, weight, count, count) for name, (weight, count) in counts.items())
    return ObservedEndpoint(EndpointStatus.IN_SERVICE, config, variants)


def only_live(count: int = 3) -> ObservedEndpoint:
    return endpoint(PREVIOUS, **{LIVE.variant_name: (1.0, count)})


def beside_live(candidate_weight: float, candidate_count: int, live_count: int = 3) -> ObservedEndpoint:
    return endpoint(
        SHIFT,
        **{
            LIVE.variant_name: (1 - candidate_weight, live_count),
            CANDIDATE.variant_name: (candidate_weight, candidate_count),
        },
    )


def candidate_alone(count: int) -> ObservedEndpoint:
    return endpoint(FINAL, **{CANDIDATE.variant_name: (1.0, count)})


def test_each_pass_charges_the_counts_it_saw_until_the_next_and_the_end_closes_the_ledger():
    # Given a canary whose candidate is seen with 1, then 2, then 4 instances beside the live fleet
    record = rollout()
    passes = [
        (minutes(0), only_live(), Phase.STARTING),  # the shift config asked for: no candidate yet
        (minutes(5), beside_live(0.0, 1), Phase.SHIFTING),  # deployed at weight 0
        (minutes(10), beside_live(0.1, 2), Phase.SHIFTING),  # 10% (grown to its share)
        (minutes(70), beside_live(1.0, 4), Phase.WATCHING),  # 100%, the old variant at weight 0
        (minutes(100), beside_live(1.0, 4), Phase.RETIRING),  # the retire asked for
    ]
    for now, seen, phase in passes:
        record = charged(record.model_copy(update={"phase": phase}), seen, now)
    # When it completes, seen with the candidate alone
    ended = charged(
        to_ended(record, Phase.COMPLETED, minutes(105), current_percent=100), candidate_alone(4), minutes(105)
    )

    # Then the candidate is charged 1 x 5 min + 2 x 60 min + 4 x 35 min, and nothing runs after the end
    assert ended.cost is not None
    ledger = ended.cost.ledger()
    assert ledger.instance_hours() == pytest.approx((1 * 5 + 2 * 60 + 4 * 35) / 60)
    assert ledger.instance_hours("candidate") == pytest.approx((1 * 5 + 2 * 60 + 4 * 35) / 60)
    assert ledger.instance_hours("live-held") == 0  # Shepherd holds no live capacity above autoscaling
    assert ledger.running == ()
    assert ended.cost.last_at == minutes(105)


def test_the_end_closes_the_ledger_on_every_path_that_ends_a_rollout():
    # A record ended by any path (to_ended: completion, restore, refusal) charges up to its end and stops.
    record = charged(rollout(), beside_live(0.1, 2), minutes(0))
    ended = to_ended(record, Phase.FAILED, minutes(30), current_percent=0)

    assert ended.cost is not None
    assert ended.cost.ledger().instance_hours() == pytest.approx(1.0)
    assert ended.cost.running == ()


def test_a_fresh_baseline_is_charged_to_its_own_role():
    record = rollout(judged=True)
    fresh = record.fresh_baseline
    assert fresh is not None
    seen = endpoint(
        SHIFT, **{LIVE.variant_name: (0.8, 3), CANDIDATE.variant_name: (0.1, 2), fresh.variant_name: (0.1, 2)}
    )

    record = charged(charged(record, seen, minutes(0)), seen, minutes(30))

    assert record.cost is not None
    assert record.cost.ledger().instance_hours("fresh-baseline") == pytest.approx(1.0)
    assert record.cost.ledger().instance_hours("candidate") == pytest.approx(1.0)


def test_a_first_deployment_adds_nothing():
    record = rollout(first=True)
    record = charged(record, None, minutes(0))
    record = charged(record, candidate_alone(2), minutes(10))
    ended = charged(
        to_ended(record, Phase.COMPLETED, minutes(20), current_percent=100), candidate_alone(2), minutes(20)
    )

    assert ended.cost is not None
    assert ended.cost.ledger().instance_hours() == 0


def test_a_scale_out_asked_for_is_charged_from_the_pass_that_asked():
    # Desired 4, current still 2: the larger count runs (as kept_capacity.py reads a variant).
    growing = ObservedEndpoint(
        EndpointStatus.UPDATING,
        SHIFT,
        (ObservedVariant(LIVE.variant_name, 0.9, 3, 3), ObservedVariant(CANDIDATE.variant_name, 0.1, 2, 4)),
    )
    record = charged(charged(rollout(), growing, minutes(0)), growing, minutes(15))

    assert record.cost is not None
    assert record.cost.ledger().instance_hours() == pytest.approx(1.0)


def test_an_older_pass_cannot_charge_backwards():
    record = charged(charged(rollout(), beside_live(0.1, 2), minutes(0)), beside_live(0.1, 2), minutes(30))
    stale = charged(record, beside_live(0.1, 9), minutes(10))

    assert stale.cost == record.cost


def test_a_record_stored_before_the_ledger_reads_and_writes_as_before():
    old = rollout().model_dump(mode="json")
    assert "cost" not in old
    assert "cost" not in Rollout.model_validate(old).model_dump(mode="json")

    record = charged(Rollout.model_validate(old), beside_live(0.1, 2), minutes(0))
    stored = record.model_dump(mode="json")
    assert Rollout.model_validate(stored) == record


def test_a_wait_charges_nothing_and_every_other_action_charges_its_next_record():
    assert charge(Wait("baking"), beside_live(0.1, 2), minutes(0)) == Wait("baking")


# --- a whole rollout, decided and charged pass by pass ---------------------------------------------------


class FakeEndpoint:
    """The endpoint as the actions leave it, changed at once; each variant runs its config's count."""

    def __init__(self) -> None:
        self.config = PREVIOUS
        self.variants: dict[str, list[float]] = {LIVE.variant_name: [1.0, 3]}

    def describe(self) -> ObservedEndpoint:
        variants = tuple(ObservedVariant(name, w, int(n), int(n)) for name, (w, n) in self.variants.items())
        return ObservedEndpoint(EndpointStatus.IN_SERVICE, self.config, variants)

    def apply(self, action: Action) -> None:
        if isinstance(action, (UpdateEndpoint, CreateEndpoint)):
            spec = action.config if isinstance(action, CreateEndpoint) else action.create_config
            assert spec is not None
            self.config = spec.name
            self.variants = {
                v.variant.variant_name: [v.initial_weight, v.variant.initial_instance_count] for v in spec.variants
            }
        elif isinstance(action, ShiftTraffic):
            for name, weight in action.weights().items():
                self.variants[name][0] = weight


def test_a_canary_decided_tick_by_tick_charges_the_candidate_from_its_deployment_to_its_retirement():
    # Given a canary (10% for 10 min, then 100% watched 15 min), the candidate on 2 instances; a tick a minute
    fake, record, now = FakeEndpoint(), rollout(), T0
    while not record.phase.is_terminal:
        for _ in range(6):  # as reconcile: up to six decisions a tick, each on a fresh describe
            observed = fake.describe()
            action = charge(decide(record, observed, frozenset(), now), observed, now)
            if isinstance(action, Wait):
                break
            fake.apply(action)
            record = action.next
        now += timedelta(minutes=1)
        assert now < minutes(60), record.phase

    # Then: deployed beside the live variant and seen there in the first tick (00:00; the fake changes at
    # once), charged until the pass that saw it alone after the retire (10 min of bake + 15 of watch later)
    assert record.cost is not None and record.ended_at == minutes(25)
    assert record.cost.ledger().instance_hours() == pytest.approx(2 * 25 / 60)
    assert record.cost.running == ()


# --- what the announcements carry -----------------------------------------------------------------------


def test_the_announced_cost_is_priced_from_the_named_table_and_projected_to_its_time():
    record = charged(rollout(), beside_live(0.1, 2), minutes(0))

    cost = cost_report(record, BUILT_IN, minutes(90))

    assert cost is not None
    assert cost.extra_instance_hours == 3.0  # the counts last seen, taken to run until the announcement
    assert cost.extra_instance_hours_by_role == {"candidate": 3.0, "live-held": 0.0}
    assert cost.extra_instance_hours_by_type == {"ml.g5.xlarge": 3.0}
    assert cost.estimated_cost_usd == round(3.0 * BUILT_IN.prices["ml.g5.xlarge"], 2)
    assert cost.unpriced_instance_types == []
    assert cost.price_table == BUILT_IN.source
    assert cost.as_of == minutes(90) and cost.final is False


def test_an_unpriced_type_gives_no_estimate_and_is_named():
    record = to_ended(charged(rollout(), beside_live(0.1, 2), minutes(0)), Phase.FAILED, minutes(30), 0)

    cost = cost_report(record, PriceTable({"ml.m5.xlarge": 0.2}, "SSM parameter /acme/prices"), minutes(45))

    assert cost is not None
    assert cost.estimated_cost_usd is None
    assert cost.unpriced_instance_types == ["ml.g5.xlarge"]
    assert cost.extra_instance_hours == 1.0  # closed at the end: later announcements add nothing
    assert cost.as_of == minutes(30) and cost.final is True


def test_a_rollout_without_a_ledger_announces_no_cost():
    assert cost_report(rollout(), BUILT_IN, minutes(1)) is None


def test_a_resize_is_charged_from_the_pass_that_asks_for_it() -> None:
    """Found in review: the asking pass charged the counts seen before it asked, so the grown candidate
    was charged only from the next written record, once provisioned (minutes later)."""
    from shepherd.rollouts.actions import ResizeVariants
    from shepherd.rollouts.cost_tracking import charge
    from shepherd.rollouts.decide import decide
    from tests.unit.test_candidate_sizing_decisions import T0 as AT0
    from tests.unit.test_candidate_sizing_decisions import at_step, baked_at
    from tests.unit.test_candidate_sizing_decisions import s as secs

    action = decide(at_step(0, 2), baked_at(10, 2), frozenset(), AT0 + secs(601))
    assert isinstance(action, ResizeVariants)

    charged = charge(action, baked_at(10, 2), AT0 + secs(601)).next

    assert charged.cost is not None
    assert [(item.role, item.count) for item in charged.cost.running if item.role == "candidate"] == [("candidate", 6)]
