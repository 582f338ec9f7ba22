"""The rollback's flip and what an observed flip owes, over a scripted endpoint (no AWS).

The scripted endpoint answers DescribeEndpoint and UpdateEndpointWeightsAndCapacities as SageMaker
would in states moto cannot hold still long enough to test (Updating for longer than a wait, a
describe that lags behind the call that refuses). The end-to-end behaviour is in
tests/integration/test_rollback_races.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from shepherd.capacity.prices import built_in
from shepherd.kernel.errors import ConflictError, TransientError
from shepherd.rollouts.actions import FinishRollback, RecordProgress, ShiftTraffic, UpdateEndpoint
from shepherd.rollouts.errors import EndpointRequestRefused
from shepherd.rollouts.flip import (
    BUSY_WAIT_SECONDS,
    FLIP_ATTEMPTS,
    Traffic,
    TrafficFlip,
    moves_forward,
    observe_flip,
    rollback_consequences,
    traffic,
)
from shepherd.rollouts.observed import EndpointStatus, ObservedEndpoint
from shepherd.rollouts.ports import AuditEndpoint, RecordIncident
from shepherd.rollouts.record import Phase, Rollout, request_abort
from shepherd.rollouts.rollback_cause import RollbackCause
from tests.fakes import FakeClock
from tests.unit.test_controller import (
    CANDIDATE,
    LIVE,
    PREVIOUS,
    SHIFT,
    T0,
    UPDATING,
    at,
    on_final,
    on_previous,
    retiring,
    rollout,
    shifting,
    watching,
)

REFUSED = ConflictError("Cannot update in-progress endpoint")
WEIGHTS = {LIVE.variant_name: 1.0, CANDIDATE.variant_name: 0.0}


@dataclass
class ScriptedEndpoint:
    """DescribeEndpoint answers in turn (the last one repeats); set_weights raises the scripted errors."""

    described: list[ObservedEndpoint | None]
    refusals: list[Exception] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def describe(self, endpoint_name: str) -> ObservedEndpoint | None:
        self.calls.append("describe")
        return self.described.pop(0) if len(self.described) > 1 else self.described[0]

    def set_weights(self, endpoint_name: str, weights: dict[str, float]) -> None:
        self.calls.append("set_weights")
        assert weights == WEIGHTS
        if self.refusals:
            raise self.refusals.pop(0)


@dataclass
class Sleeps:
    slept: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def flip(endpoint: ScriptedEndpoint, sleeps: Sleeps) -> TrafficFlip:
    return TrafficFlip(endpoint, FakeClock(), sleeps)  # type: ignore[arg-type]  # only describe/set_weights


@pytest.fixture
def sleeps() -> Iterator[Sleeps]:
    yield Sleeps()


# --- the flip ---------------------------------------------------------------------------------------


def test_an_in_service_canary_is_flipped_with_one_call_and_no_read(sleeps):
    endpoint = ScriptedEndpoint([at(10)])

    assert flip(endpoint, sleeps).back(shifting(0)) is not None
    assert endpoint.calls == ["set_weights"]
    assert sleeps.slept == []


def test_a_refused_flip_is_retried_once_the_endpoint_is_in_service(sleeps):
    endpoint = ScriptedEndpoint([at(10, status=UPDATING), at(10, status=UPDATING), at(100)], [REFUSED])

    assert flip(endpoint, sleeps).back(shifting(0)) is not None
    assert endpoint.calls == ["set_weights", "describe", "describe", "describe", "set_weights"]
    assert sum(sleeps.slept) == 2


def test_an_endpoint_busy_beyond_the_wait_leaves_the_flip_to_the_controller(sleeps):
    endpoint = ScriptedEndpoint([at(10, status=UPDATING)], [REFUSED])

    assert flip(endpoint, sleeps).back(shifting(0)) is None
    assert sum(sleeps.slept) == BUSY_WAIT_SECONDS
    assert endpoint.calls.count("set_weights") == 1


def test_a_describe_lagging_behind_the_refusals_cannot_make_the_flip_spin(sleeps):
    # InService to DescribeEndpoint, "in progress" to every call: bounded by the same wait.
    endpoint = ScriptedEndpoint([at(10)], [REFUSED] * 1000)

    assert flip(endpoint, sleeps).back(shifting(0)) is None
    assert sum(sleeps.slept) == BUSY_WAIT_SECONDS
    assert endpoint.calls.count("set_weights") <= BUSY_WAIT_SECONDS + 2


def test_throttling_is_retried_with_backoff_then_raised(sleeps):
    endpoint = ScriptedEndpoint([at(10)], [TransientError("Throttling")] * FLIP_ATTEMPTS)

    with pytest.raises(TransientError):
        flip(endpoint, sleeps).back(shifting(0))
    assert endpoint.calls == ["set_weights"] * FLIP_ATTEMPTS
    assert sleeps.slept == [0.2, 0.4, 0.8]


@pytest.mark.parametrize(
    ("refusal", "observed", "flipped"),
    [
        # The endpoint deleted outside Shepherd: nothing to flip, the controller records what it finds.
        ("Could not find endpoint", None, False),
        # A permission taken away: the candidate keeps its traffic, the controller fails the rollout.
        ("not authorized to perform: sagemaker:UpdateEndpointWeightsAndCapacities", "on", False),
        # Refused, but the candidate has no traffic anyway: that is an observed flip.
        ("The variant name(s) are not present", "off", True),
    ],
)
def test_a_flip_refused_for_good_is_left_to_the_controller_after_one_look(sleeps, refusal, observed, flipped):
    seen = {None: None, "on": at(10), "off": at(0)}[observed]
    endpoint = ScriptedEndpoint([seen], [EndpointRequestRefused("ValidationException", refusal)])

    assert (flip(endpoint, sleeps).back(shifting(0)) is not None) is flipped
    assert endpoint.calls == ["set_weights", "describe"]  # asking again would get the same answer
    assert sleeps.slept == []


def test_before_its_first_step_a_candidate_without_traffic_needs_no_call(sleeps):
    for observed in (on_previous(), on_previous(UPDATING), at(0)):
        endpoint = ScriptedEndpoint([observed])
        if observed.status is UPDATING:  # the update adding the candidate at weight 0: wait for it
            endpoint = ScriptedEndpoint([observed, at(0)])
        assert flip(endpoint, sleeps).back(rollout()) is not None
        assert "set_weights" not in endpoint.calls


def test_an_aborting_rollout_on_a_config_without_its_live_variant_is_left_to_the_controllers_restore(sleeps):
    endpoint = ScriptedEndpoint([on_final()])  # e.g. a retire that landed: only an endpoint update helps
    assert flip(endpoint, sleeps).back(rolling_back(retiring())) is None
    assert endpoint.calls == ["describe"] and sleeps.slept == []


def test_an_aborting_rollout_already_flipped_needs_no_call(sleeps):
    endpoint = ScriptedEndpoint([at(0)])
    assert flip(endpoint, sleeps).back(rolling_back()) is not None
    assert endpoint.calls == ["describe"]


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (None, Traffic.STUCK),
        (at(10, status=UPDATING), Traffic.BUSY),
        (at(10), Traffic.ON),
        (at(0), Traffic.OFF),
        (on_previous(), Traffic.OFF),
        (on_final(), Traffic.STUCK),
        (ObservedEndpoint(EndpointStatus.FAILED, SHIFT), Traffic.STUCK),
    ],
)
def test_what_an_observed_endpoint_means_for_the_flip(observed, expected):
    assert traffic(shifting(0), observed) is expected


# --- what an observed flip owes -------------------------------------------------------------------------


def cause(**changes) -> RollbackCause:
    fields = {
        "trigger": "fraud-5xx",
        "alarm_name": "fraud-5xx",
        "reason": "Threshold Crossed",
        "requested_at": T0,
        "event_id": "alarm-1",
    }
    return RollbackCause(**(fields | changes))


def rolling_back(base: Rollout | None = None, flipped: bool = False) -> Rollout:
    record = request_abort(base or shifting(0), reason="fraud-5xx: Threshold Crossed", now=T0)
    return record.model_copy(update={"rollback": cause(flipped_at=T0 + timedelta(seconds=1) if flipped else None)})


def revert(record: Rollout, from_percent: int = 10) -> ShiftTraffic:
    return ShiftTraffic(
        record.endpoint_name, CANDIDATE.variant_name, 0.0, LIVE.variant_name, 1.0, from_percent, 0, record
    )


def restore(record: Rollout) -> UpdateEndpoint:
    return UpdateEndpoint(record.endpoint_name, PREVIOUS, None, "restore", record)


def test_the_controllers_revert_of_an_unflipped_rollback_is_its_flip():
    record = rolling_back()
    clock = FakeClock()

    stamped = observe_flip(revert(record), at(10), clock)

    assert stamped.next.rollback is not None and stamped.next.rollback.flipped_at == clock.now


def test_a_flip_someone_else_made_is_stamped_when_the_controller_sees_it():
    record = rolling_back()
    assert observe_flip(restore(record), at(0), FakeClock()).next.rollback.flipped_at is not None
    finished = FinishRollback("done", record)
    assert observe_flip(finished, on_previous(), FakeClock()).next.rollback.flipped_at is not None


def test_nothing_is_stamped_without_a_flip_or_twice_or_for_a_failure():
    assert observe_flip(restore(rolling_back()), on_final(), FakeClock()).next.rollback.flipped_at is None
    flipped = rolling_back(flipped=True)
    assert observe_flip(revert(flipped), at(10), FakeClock()).next == flipped
    failing = request_abort(shifting(0), reason="update failed", now=T0, outcome=Phase.FAILED)
    assert observe_flip(revert(failing), at(10), FakeClock()).next.rollback is None


def test_the_first_record_of_a_flip_owes_the_incident_an_audit_entry_and_the_announcement():
    before = rolling_back()
    after = observe_flip(revert(before), at(10), FakeClock())

    changes, announced = rollback_consequences(before, after, lambda endpoint: [], T0, "tick-1", built_in)

    assert [type(change) for change in changes] == [RecordIncident, AuditEndpoint]
    incident = changes[0].incident
    assert incident.flipped_at == after.next.rollback.flipped_at and incident.seconds_to_flip > 0
    assert incident.weights_before == {LIVE.variant_name: 0.9, CANDIDATE.variant_name: 0.1}
    [rolled_back] = announced
    assert (rolled_back.trigger, rolled_back.seconds_to_flip) == ("fraud-5xx", incident.seconds_to_flip)


def test_a_rollback_ending_without_a_flip_seen_is_announced_without_seconds_to_flip():
    before = rolling_back()
    changes, announced = rollback_consequences(
        before, FinishRollback("gone", before), lambda e: [], T0, "tick-1", built_in
    )
    assert changes == [] and [a.seconds_to_flip for a in announced] == [None]
    flipped = rolling_back(flipped=True)
    assert rollback_consequences(flipped, FinishRollback("done", flipped), lambda e: [], T0, "tick-1", built_in) == (
        [],
        [],
    )


def test_seconds_to_flip_is_never_negative():
    assert cause(flipped_at=T0 - timedelta(hours=2)).seconds_to_flip == 0.0
    assert cause(flipped_at=T0 + timedelta(milliseconds=1500)).seconds_to_flip == 1.5
    assert cause().seconds_to_flip is None


def test_forward_changes_are_the_ones_a_tick_rechecks():
    record = shifting(0)
    assert moves_forward(ShiftTraffic(record.endpoint_name, "c", 1.0, "l", 0.0, 10, 100, record))
    assert not moves_forward(revert(record))
    assert moves_forward(UpdateEndpoint(record.endpoint_name, SHIFT, None, "start", record))
    assert moves_forward(UpdateEndpoint(record.endpoint_name, "final", None, "retire", watching()))
    assert not moves_forward(restore(record))
    assert not moves_forward(RecordProgress("reached", record))
