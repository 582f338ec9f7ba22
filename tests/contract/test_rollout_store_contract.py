"""The rollout store's contract, run against DynamoRolloutStore on moto and InMemoryRolloutStore.

The model-based test (tests/model/) drives the services over the in-memory store; it proves
something only if the fake keeps the adapter's conditions: the lock taken only when free, a record
written only at its expected revision, the lock released only by its holder, a version moved only
from an expected status, audit and outbox entries never overwritten, nothing of a commit written
when one condition fails; and the indexes the controller reads: endpoints owed announcements (of
finished rollouts too), finished rollouts awaiting clean-up, endpoints Shepherd manages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shepherd.adapters.dynamodb import DynamoRegistry
from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore
from shepherd.contracts import (
    RolloutFailed,
    RolloutResumed,
    RolloutResumeRefused,
    RolloutStarted,
    RolloutTrafficShifted,
)
from shepherd.registry.model import VersionStatus
from shepherd.rollouts import naming
from shepherd.rollouts.ports import (
    REFUSED_PROMOTION,
    Announce,
    AnswerCommand,
    BaselineIs,
    ChangeRejected,
    EndpointAuditEntry,
    EndpointBusy,
    ForgetAlarms,
    ForgetLive,
    Incident,
    MoveVersion,
    RecordIncident,
    RecordRefusal,
    RegisterAlarms,
    ReleaseLock,
    RolloutRequest,
    SaveRollout,
    SetLive,
    StartRollout,
    StoredRollout,
    endpoint_audit,
    version_move,
)
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout, VariantSpec, new_rollout
from shepherd.rollouts.recorded_scaling import RecordedPolicy, RecordedScaling
from shepherd.rollouts.rollback_cause import RollbackCause
from shepherd.rollouts.strategy import parse_strategy
from tests.fakes import InMemoryRegistry, InMemoryRolloutStore
from tests.integration.test_registry_dynamodb import register

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
REQUEST = RolloutRequest(requested_by="alice", reason="better", event_id="evt-1")
MODEL = "churn"


@pytest.fixture(params=["dynamodb", "in-memory"])
def ports(request, world):
    """(store, registry) with versions 1 (LIVE) and 2 (APPROVED) of `churn` registered."""
    if request.param == "in-memory":
        registry = InMemoryRegistry()
        store = InMemoryRolloutStore(registry)
    else:
        registry = DynamoRegistry(world.dynamodb, world.table, sleep=lambda _: None)
        store = DynamoRolloutStore(world.dynamodb, world.table, sleep=lambda _: None)
    for number in (1, 2):
        register(registry, number, MODEL)
    return store, registry


def live_v1(endpoint: str = "churn-prod") -> LiveDeployment:
    return LiveDeployment(
        model_name=MODEL,
        version=1,
        variant=VariantSpec.for_version(MODEL, 1, instance_type="ml.m5.large", initial_instance_count=1),
        config_name=f"{endpoint}-v1",
    )


def a_rollout(endpoint: str = "churn-prod", event_id: str = "evt-1", at: datetime = AT) -> Rollout:
    return new_rollout(
        rollout_id=naming.rollout_id(event_id, at),
        endpoint_name=endpoint,
        model_name=MODEL,
        version=2,
        strategy=parse_strategy({"type": "canary", "canary_percent": 10, "bake_seconds": 60}),
        candidate=VariantSpec.for_version(MODEL, 2, instance_type="ml.m5.large", initial_instance_count=1),
        live=live_v1(endpoint),
        now=at,
    )


def advanced(rollout: Rollout, **changes) -> Rollout:
    return rollout.model_copy(update={"revision": rollout.revision + 1, **changes})


def started(store, rollout: Rollout) -> None:
    store.commit([StartRollout(rollout, REQUEST), endpoint_audit(rollout, "started", "plan", AT, "evt-1")])


def test_a_start_takes_the_free_lock_and_stores_the_rollout(ports) -> None:
    store, _ = ports
    rollout = a_rollout()

    started(store, rollout)

    assert store.lock_holder("churn-prod") == rollout.rollout_id
    assert store.get_rollout("churn-prod", rollout.rollout_id) == StoredRollout(rollout, REQUEST)
    assert [stored.rollout.rollout_id for stored in store.active_rollouts()] == [rollout.rollout_id]


def test_a_second_start_on_a_held_endpoint_is_busy_and_writes_nothing(ports) -> None:
    store, _ = ports
    first, second = a_rollout(), a_rollout(event_id="evt-2")
    started(store, first)

    with pytest.raises(EndpointBusy) as busy:
        store.commit([StartRollout(second, REQUEST), endpoint_audit(second, "started", "plan", AT, "evt-2")])

    assert busy.value.active_rollout_id == first.rollout_id
    assert store.get_rollout("churn-prod", second.rollout_id) is None
    assert [entry.rollout_id for entry in store.endpoint_audit_trail("churn-prod")] == [first.rollout_id]


def test_the_same_rollout_cannot_start_twice(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)
    store.commit([ReleaseLock("churn-prod", rollout.rollout_id)])

    with pytest.raises(ChangeRejected) as rejected:
        store.commit([StartRollout(rollout, REQUEST)])

    assert isinstance(rejected.value.change, StartRollout)
    assert store.lock_holder("churn-prod") is None


def test_a_save_applies_only_at_the_expected_revision_and_all_or_nothing(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)
    moved = advanced(rollout, updated_at=AT + timedelta(minutes=1))
    store.commit([SaveRollout(moved, REQUEST, 0), endpoint_audit(moved, "progress", "one", moved.updated_at, "t1")])
    stale = advanced(rollout, updated_at=AT + timedelta(minutes=2))

    with pytest.raises(ChangeRejected) as rejected:
        store.commit(
            [
                endpoint_audit(stale, "progress", "two", stale.updated_at, "t2"),
                SaveRollout(stale, REQUEST, 0),
                Announce("churn-prod", f"{rollout.rollout_id}#000001", (started_announcement(rollout),)),
            ]
        )

    assert isinstance(rejected.value.change, SaveRollout)
    assert store.get_rollout("churn-prod", rollout.rollout_id).rollout == moved
    assert [entry.event_id for entry in store.endpoint_audit_trail("churn-prod")] == ["evt-1", "t1"]
    assert store.pending_announcements("churn-prod") == []


def test_a_save_of_a_rollout_never_started_is_rejected(ports) -> None:
    store, _ = ports

    with pytest.raises(ChangeRejected):
        store.commit([SaveRollout(a_rollout(), REQUEST, 0)])


def test_only_the_holder_releases_the_lock_and_releasing_a_free_lock_is_fine(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)

    with pytest.raises(ChangeRejected):
        store.commit([ReleaseLock("churn-prod", "someone-else")])
    assert store.lock_holder("churn-prod") == rollout.rollout_id

    store.commit([ReleaseLock("churn-prod", rollout.rollout_id)])
    store.commit([ReleaseLock("churn-prod", rollout.rollout_id)])
    assert store.lock_holder("churn-prod") is None


def test_a_terminal_rollout_leaves_the_active_list(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)
    ended = advanced(rollout, phase=Phase.FAILED, ended_at=AT, failure_reason="x")

    store.commit([SaveRollout(ended, REQUEST, 0), ReleaseLock("churn-prod", rollout.rollout_id)])

    assert store.active_rollouts() == []
    assert store.rollouts_of("churn-prod")[0].rollout.phase is Phase.FAILED


def test_active_rollouts_come_in_endpoint_order_and_rollouts_newest_first(ports) -> None:
    store, _ = ports
    on_b, on_a = a_rollout("ep-b"), a_rollout("ep-a")
    older = a_rollout("ep-a", event_id="old", at=AT - timedelta(days=1))
    store.commit([StartRollout(older, REQUEST)])
    store.commit([ReleaseLock("ep-a", older.rollout_id)])
    store.commit([SaveRollout(advanced(older, phase=Phase.FAILED, ended_at=AT), REQUEST, 0)])
    for rollout in (on_b, on_a):
        store.commit([StartRollout(rollout, REQUEST)])

    assert [s.rollout.endpoint_name for s in store.active_rollouts()] == ["ep-a", "ep-b"]
    assert [s.rollout.rollout_id for s in store.rollouts_of("ep-a")] == [on_a.rollout_id, older.rollout_id]
    assert [s.rollout.rollout_id for s in store.rollouts_of("ep-a", newest=1)] == [on_a.rollout_id]
    assert store.latest_rollout("ep-a").rollout.rollout_id == on_a.rollout_id
    assert store.latest_rollout("ep-c") is None


def test_a_version_moves_only_from_an_expected_status_with_its_audit_entry(ports) -> None:
    store, registry = ports
    rollout = a_rollout()
    stored = StoredRollout(rollout, REQUEST)
    to_deploying = version_move(rollout, 2, (VersionStatus.REGISTERED,), VersionStatus.DEPLOYING, stored, AT)

    store.commit([to_deploying])

    assert registry.get_version(MODEL, 2).status is VersionStatus.DEPLOYING
    assert [e.to_status for e in registry.model_audit_trail(MODEL) if e.version == 2][-1] is VersionStatus.DEPLOYING
    later = AT + timedelta(seconds=1)
    with pytest.raises(ChangeRejected) as rejected:
        store.commit(
            [
                SetLive("churn-prod", live_v1()),
                version_move(rollout, 2, (VersionStatus.APPROVED,), VersionStatus.LIVE, stored, later),
            ]
        )
    assert isinstance(rejected.value.change, MoveVersion)
    assert registry.get_version(MODEL, 2).status is VersionStatus.DEPLOYING
    assert store.live("churn-prod") is None


def test_an_audit_entry_is_never_overwritten(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)
    entry = endpoint_audit(rollout, "progress", "first", AT + timedelta(minutes=1), "tick-1")
    store.commit([entry])

    with pytest.raises(ChangeRejected):
        store.commit([endpoint_audit(rollout, "progress", "second", AT + timedelta(minutes=1), "tick-1")])

    assert [e.detail for e in store.endpoint_audit_trail("churn-prod")] == ["plan", "first"]


def started_announcement(rollout: Rollout) -> RolloutStarted:
    return RolloutStarted(
        rollout_id=rollout.rollout_id,
        endpoint_name=rollout.endpoint_name,
        model_name=rollout.model_name,
        version=rollout.version,
        previous_version=rollout.previous_version,
        strategy=rollout.strategy.model_dump(mode="json"),
        plan=[],
        post_deploy_watch_seconds=0,
        alarms=[],
        requested_by="alice",
        reason="better",
    )


def test_the_outbox_groups_announcements_per_commit_until_forgotten(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    ids = {"rollout_id": rollout.rollout_id, "endpoint_name": "churn-prod", "model_name": MODEL, "version": 2}
    first = Announce("churn-prod", f"{rollout.rollout_id}#000000", (started_announcement(rollout),))
    second = Announce(
        "churn-prod",
        f"{rollout.rollout_id}#000001",
        (RolloutTrafficShifted(**ids, from_percent=0, to_percent=10), RolloutFailed(**ids, reason="x")),
    )
    store.commit([first])
    store.commit([second])

    assert store.pending_announcements("churn-prod") == [first, second]
    assert store.pending_announcements("other") == []
    with pytest.raises(ChangeRejected):
        store.commit([first])  # an owed announcement is never written twice

    store.forget(first)
    assert store.pending_announcements("churn-prod") == [second]
    store.forget(first)  # forgetting again is harmless
    store.forget(second)
    assert store.pending_announcements("churn-prod") == []


def test_alarm_registrations_live_records_serving_endpoints_and_incidents(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)
    store.commit([RegisterAlarms("churn-prod", rollout.rollout_id, ("a1", "a2")), SetLive("churn-prod", live_v1())])

    assert store.alarm_registration("a1").rollout_id == rollout.rollout_id
    assert store.live("churn-prod") == live_v1()
    assert store.endpoints_serving(rollout.candidate.model_resource_name) == ["churn-prod"]  # active rollout
    assert store.endpoints_serving(live_v1().variant.model_resource_name) == ["churn-prod"]  # baseline
    assert store.endpoints_serving("nobody-v9") == []

    incident = Incident(
        endpoint_name="churn-prod",
        rollout_id=rollout.rollout_id,
        model_name=MODEL,
        version=2,
        restored_version=1,
        trigger="a1",
        alarm_name="a1",
        state_reason="Threshold Crossed",
        state_reason_data=None,
        alarm_changed_at=AT,
        flipped_at=AT + timedelta(seconds=2),
        seconds_to_flip=2.0,
        weights_before={"churn-v1": 0.9, "churn-v2": 0.1},
        weights_after={"churn-v1": 1.0, "churn-v2": 0.0},
        timeline=store.endpoint_audit_trail("churn-prod"),
    )
    store.commit([ForgetAlarms(("a1", "a2")), RecordIncident(incident)])

    assert store.alarm_registration("a1") is None
    assert store.incidents("churn-prod") == [incident]


def test_endpoints_owed_announcements_include_finished_rollouts_until_published(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)
    ids = {"rollout_id": rollout.rollout_id, "endpoint_name": "churn-prod", "model_name": MODEL, "version": 2}
    ended = advanced(rollout, phase=Phase.FAILED, ended_at=AT, failure_reason="x")
    owed = Announce("churn-prod", f"{rollout.rollout_id}#000001", (RolloutFailed(**ids, reason="x"),))
    store.commit([SaveRollout(ended, REQUEST, 0), ReleaseLock("churn-prod", rollout.rollout_id), owed])

    assert store.active_rollouts() == []
    assert store.endpoints_owed_announcements() == ["churn-prod"]

    store.forget(owed)
    assert store.endpoints_owed_announcements() == []


def test_a_finished_rollout_is_listed_for_clean_up_until_cleaned_up(ports) -> None:
    store, _ = ports
    finished, running = a_rollout(), a_rollout("ep-b")
    started(store, finished)
    store.commit([StartRollout(running, REQUEST)])
    ended = advanced(finished, phase=Phase.COMPLETED, ended_at=AT)
    store.commit([SaveRollout(ended, REQUEST, 0), ReleaseLock("churn-prod", finished.rollout_id)])

    assert [s.rollout for s in store.rollouts_to_clean_up()] == [ended]  # never an active one

    store.cleaned_up("churn-prod", finished.rollout_id)
    store.cleaned_up("churn-prod", "no-such-rollout")  # harmless
    assert store.rollouts_to_clean_up() == []
    assert store.get_rollout("churn-prod", finished.rollout_id).rollout == ended  # the record stays
    assert [s.rollout.rollout_id for s in store.active_rollouts()] == [running.rollout_id]


def test_forget_live_drops_the_baseline_and_managed_endpoints_include_rollouts(ports) -> None:
    store, _ = ports
    store.commit([SetLive("churn-prod", live_v1()), SetLive("ep-z", live_v1("ep-z"))])
    store.commit([StartRollout(a_rollout("ep-new"), REQUEST)])

    assert store.endpoint_names() == ["churn-prod", "ep-z"]
    assert store.managed_endpoints() == ["churn-prod", "ep-new", "ep-z"]

    store.commit([ForgetLive("ep-z", live_v1("ep-z").config_name)])
    assert store.live("ep-z") is None
    assert store.endpoint_names() == ["churn-prod"]
    assert store.managed_endpoints() == ["churn-prod", "ep-new"]
    with pytest.raises(ChangeRejected) as gone:  # dropped meanwhile: not the baseline the caller read
        store.commit([ForgetLive("ep-z", live_v1("ep-z").config_name), SetLive("ep-y", live_v1("ep-y"))])
    assert isinstance(gone.value.change, ForgetLive)
    assert store.live("ep-y") is None  # nothing of the commit was written


def test_a_start_holds_only_on_the_baseline_it_read(ports) -> None:
    """A promotion commits its start on the endpoint's baseline as read (none, or a config): a rollout
    that completed in between (a new baseline) makes it decide again rather than overwrite it."""
    store, _ = ports
    first = a_rollout("ep-new")
    store.commit([StartRollout(first, REQUEST), BaselineIs("ep-new", None)])  # no baseline: holds
    store.commit([ReleaseLock("ep-new", first.rollout_id), SetLive("ep-new", live_v1("ep-new"))])

    second = a_rollout("ep-new", event_id="evt-2")
    with pytest.raises(ChangeRejected) as moved:  # read before the first completed: no baseline
        store.commit([StartRollout(second, REQUEST), BaselineIs("ep-new", None)])
    assert isinstance(moved.value.change, BaselineIs)
    with pytest.raises(ChangeRejected):  # another config than the one there now
        store.commit([StartRollout(second, REQUEST), BaselineIs("ep-new", "some-other-config")])
    assert store.lock_holder("ep-new") is None and store.get_rollout("ep-new", second.rollout_id) is None

    store.commit([StartRollout(second, REQUEST), BaselineIs("ep-new", live_v1("ep-new").config_name)])
    assert store.lock_holder("ep-new") == second.rollout_id


def test_a_baseline_replaced_only_if_still_the_one_read(ports) -> None:
    """The clean-up adopting a restore config (clean_up.py) must not overwrite a baseline that moved."""
    store, _ = ports
    store.commit([SetLive("ep-new", live_v1("ep-new"))])
    moved = live_v1("ep-new").model_copy(update={"config_name": "ep-new-restore"})

    with pytest.raises(ChangeRejected):
        store.commit([SetLive("ep-new", moved, only_if_config="some-other-config")])
    assert store.live("ep-new") == live_v1("ep-new")

    store.commit([SetLive("ep-new", moved, only_if_config=live_v1("ep-new").config_name)])
    assert store.live("ep-new") == moved


def test_the_failure_clock_and_the_rollback_cause_are_kept_with_the_record(ports) -> None:
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)
    cause = RollbackCause(
        trigger="a1", alarm_name="a1", reason="Threshold Crossed", requested_at=AT, event_id="alarm-1"
    )
    aborting = advanced(
        rollout,
        phase=Phase.ABORTING,
        abort_outcome=Phase.ROLLED_BACK,
        failing_since=AT + timedelta(seconds=5),
        rollback=cause.flipped(AT + timedelta(seconds=2), "rollback"),
    )

    store.commit([SaveRollout(aborting, REQUEST, 0)])

    stored = store.get_rollout("churn-prod", rollout.rollout_id).rollout
    assert (stored.failing_since, stored.rollback) == (aborting.failing_since, aborting.rollback)
    assert stored.rollback.seconds_to_flip == 2.0


def test_the_retired_scaling_and_the_count_the_old_variant_served_with_are_kept_with_the_record(ports) -> None:
    """What a restore after the retire gives the old variant back (issue 23): its registration and its
    count just before the retire; a record without a count (written before it was kept) reads as before."""
    store, _ = ports
    rollout = a_rollout()
    started(store, rollout)
    policy = RecordedPolicy(
        name="tracking", target_value=70.0, predefined_metric="SageMakerVariantInvocationsPerInstance"
    )
    kept = RecordedScaling(min_capacity=2, max_capacity=8, policies=(policy,), instance_count=5)

    store.commit([SaveRollout(advanced(rollout, retired_scaling=kept), REQUEST, 0)])
    stored = store.get_rollout("churn-prod", rollout.rollout_id).rollout
    store.commit(
        [SaveRollout(advanced(stored, retired_scaling=kept.model_copy(update={"instance_count": None})), REQUEST, 1)]
    )
    uncounted = store.get_rollout("churn-prod", rollout.rollout_id).rollout

    assert stored.retired_scaling == kept and stored.retired_scaling.instance_count == 5
    assert uncounted.retired_scaling is not None and uncounted.retired_scaling.instance_count is None


def refusal(endpoint: str, event_id: str, at: datetime, version: int | None = 2) -> EndpointAuditEntry:
    return EndpointAuditEntry(
        endpoint_name=endpoint,
        rollout_id=naming.rollout_id(event_id, at),
        action=REFUSED_PROMOTION,
        model_name=MODEL,
        version=version,
        detail="churn version 2 is REGISTERED; only APPROVED versions can be promoted",
        actor="ci-bot",
        at=at,
        event_id=event_id,
    )


def test_refusals_are_in_the_endpoint_trail_and_listed_newest_first_and_a_redelivery_rewrites_one(ports) -> None:
    store, _ = ports
    first, second = refusal("churn-prod", "cmd-1", AT), refusal("fraud-prod", "cmd-2", AT + timedelta(minutes=1), None)
    store.commit([RecordRefusal(first)])
    store.commit([RecordRefusal(second)])
    store.commit([RecordRefusal(first)])  # the same command delivered again: the same entry, no error

    assert store.refusals(10) == [second, first]
    assert store.refusals(1) == [second]
    assert store.endpoint_audit_trail("churn-prod") == [first]


def test_a_commands_first_answer_is_kept_and_a_second_one_is_rejected(ports) -> None:
    store, _ = ports
    refused = RolloutResumeRefused(endpoint_name="churn-prod", rollout_id="r1", reason="not held", command_id="c1")
    rollout = a_rollout()
    resumed = RolloutResumed(
        rollout_id=rollout.rollout_id,
        endpoint_name="churn-prod",
        model_name="churn",
        version=2,
        previous_version=1,
        percent=10,
        requested_by="oncall",
        reason="clean",
        command_id="c1",
    )
    assert store.command_answer("churn-prod", "resume", "c1") is None

    store.commit([AnswerCommand("churn-prod", "resume", "c1", refused)])
    with pytest.raises(ChangeRejected):
        store.commit([AnswerCommand("churn-prod", "resume", "c1", resumed)])

    assert store.command_answer("churn-prod", "resume", "c1") == refused
    assert store.command_answer("churn-prod", "promotion", "c1") is None  # answers are per command kind
