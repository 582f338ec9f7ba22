"""The controller's tick reads the records the index lists in batches, not one GetItem a rollout.

Before a tick runs any pass it reads every active rollout again, consistently (the index lags). One
GetItem each, one after another, is 50 s for 1,000 rollouts at 50 ms a call: longer than the passes
themselves once they run concurrently (README, Scale). BatchGetItem reads 100 records a call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from shepherd.adapters.dynamodb_rollouts import DynamoRolloutStore
from shepherd.kernel.errors import TransientError
from shepherd.rollouts import naming
from shepherd.rollouts.ports import RolloutRequest, SaveRollout, SetLive, StartRollout
from shepherd.rollouts.record import LiveDeployment, Phase, Rollout, VariantSpec, new_rollout
from shepherd.rollouts.strategy import parse_strategy

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ROLLOUTS = 150  # more than one BatchGetItem's 100 keys


def started(n: int) -> Rollout:
    endpoint = f"churn-{n:03d}"
    return new_rollout(
        rollout_id=naming.rollout_id(f"event-{n}", T0),
        endpoint_name=endpoint,
        model_name="churn",
        version=2,
        strategy=parse_strategy({"type": "canary", "canary_percent": 10, "bake_seconds": 600}),
        candidate=VariantSpec.for_version("churn", 2, instance_type="ml.m5.large", initial_instance_count=1),
        live=LiveDeployment(
            model_name="churn",
            version=1,
            variant=VariantSpec.for_version("churn", 1, instance_type="ml.m5.large", initial_instance_count=1),
            config_name=f"{endpoint}-previous",
        ),
        now=T0,
    )


REQUEST = RolloutRequest(requested_by="alice@example.com", reason="test", event_id="event")


@pytest.fixture
def calls(world) -> list[str]:
    """The DynamoDB operations the store's client makes, in order."""
    made: list[str] = []
    world.dynamodb.meta.events.register("before-parameter-build.dynamodb.*", lambda model, **_: made.append(model.name))
    return made


def test_active_rollouts_are_read_100_a_call_in_index_order(world, calls) -> None:
    # Given: 150 active rollouts, and one that has ended (still listed until the index catches up
    # here only in principle: moto's index is consistent, so it is ended and kept in the index).
    store = DynamoRolloutStore(world.dynamodb, world.table)
    records = [started(n) for n in range(ROLLOUTS)]
    for record in reversed(records):  # written out of order: the index orders them
        store.commit([StartRollout(record, REQUEST)])
    ended = records[7].model_copy(update={"phase": Phase.FAILED, "revision": records[7].revision + 1})
    store.commit([SaveRollout(ended, REQUEST, records[7].revision)])
    calls.clear()

    # When
    active = store.active_rollouts()

    # Then: each record as stored, in endpoint order, the ended one left out, in 1 query + 2 batches.
    expected = [r for n, r in enumerate(records) if n != 7]
    assert [s.rollout for s in active] == expected
    assert all(s.request == REQUEST for s in active)
    assert calls == ["Query", "BatchGetItem", "BatchGetItem"]


class _Unprocessing:
    """moto's BatchGetItem always reads every key; DynamoDB may return some as UnprocessedKeys (a
    throttled partition), which the caller must ask for again. This client leaves the last key of each
    of the first `times` batches unprocessed."""

    def __init__(self, client: Any, times: int) -> None:
        self._client = client
        self.times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        if self.times == 0:
            return dict(self._client.batch_get_item(**params))
        self.times -= 1
        ((table, request),) = params["RequestItems"].items()
        *asked, left = request["Keys"]
        response: dict[str, Any] = {"Responses": {table: []}}
        if asked:
            response = dict(self._client.batch_get_item(RequestItems={table: {**request, "Keys": asked}}))
        response["UnprocessedKeys"] = {table: {**request, "Keys": [left]}}
        return response


def test_unprocessed_keys_are_asked_for_again(world) -> None:
    store = DynamoRolloutStore(world.dynamodb, world.table)
    records = [started(n) for n in range(3)]
    for record in records:
        store.commit([StartRollout(record, REQUEST)])
    store = DynamoRolloutStore(_Unprocessing(world.dynamodb, times=2), world.table, sleep=lambda _: None)

    assert [s.rollout for s in store.active_rollouts()] == records


def test_keys_left_unprocessed_for_good_fail_the_read(world) -> None:
    store = DynamoRolloutStore(world.dynamodb, world.table)
    store.commit([StartRollout(started(0), REQUEST)])
    store = DynamoRolloutStore(_Unprocessing(world.dynamodb, times=1000), world.table, sleep=lambda _: None)

    with pytest.raises(TransientError, match="unprocessed"):
        store.active_rollouts()


def test_the_batches_read_consistently(world) -> None:
    store = DynamoRolloutStore(world.dynamodb, world.table)
    store.commit([StartRollout(started(0), REQUEST)])
    asked: list[dict[str, Any]] = []
    client = boto3.client("dynamodb")
    client.meta.events.register(
        "before-parameter-build.dynamodb.BatchGetItem", lambda params, **_: asked.append(params)
    )

    DynamoRolloutStore(client, world.table).active_rollouts()

    assert [request["ConsistentRead"] for params in asked for request in params["RequestItems"].values()] == [True]


def test_a_rollout_completing_between_the_two_reads_still_serves_its_model(world) -> None:
    # Given: churn-000 rolling out v2 (its candidate model), which completes while another endpoint's
    # clean-up asks who serves that model (a concurrent pass: README, Scale). Between the reads of
    # the live endpoints and of the active rollouts, it moves from the one to the other.
    store = DynamoRolloutStore(world.dynamodb, world.table)
    record = started(0)
    store.commit([StartRollout(record, REQUEST)])
    model = record.candidate.model_resource_name
    done = Rollout.model_validate(
        {**record.model_dump(), "phase": Phase.COMPLETED, "ended_at": T0, "revision": record.revision + 1}
    )
    live = LiveDeployment(model_name="churn", version=2, variant=record.candidate, config_name=record.final_config)
    queries = 0

    def complete_after_the_first_query(model: Any, **_: Any) -> None:
        nonlocal queries
        queries += 1
        if queries == 1:
            store.commit([SaveRollout(done, REQUEST, record.revision), SetLive(record.endpoint_name, live)])

    world.dynamodb.meta.events.register("after-call.dynamodb.Query", complete_after_the_first_query)

    # When / Then: seen either way (before: active with it as candidate; after: live on it).
    assert store.endpoints_serving(model) == [record.endpoint_name]
