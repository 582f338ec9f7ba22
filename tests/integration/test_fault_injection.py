"""Fault injection: AWS throttling and 5xx from every dependency in turn, crashes between steps, events
repeated, reordered or stale. Nothing may be lost and nothing may happen twice.

"Nothing lost" means an upload ends registered (once), rejected with a reason, or the invocation fails -
so Lambda retries it and then the dead-letter queue keeps it - and handling it again later registers
exactly one version. A rollout step is taken exactly once however often a tick fails or repeats.

Faults are injected where the network would produce them: a `before-send` hook on the handler's own
boto3 client (`shepherd.bootstrap.client`, what the Lambda uses) answers chosen attempts with an HTTP
error response in the service's protocol, before moto sees the request. The SDK's standard retry mode
(`CLIENT_CONFIG`: 5 retries, 6 attempts) then behaves as it does against AWS: it retries throttling and
5xx, and raises once every attempt of a call has failed. Backoff sleeps are zero to keep the tests fast.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff
from moto.core.botocore_stubber import MockRawResponse

from shepherd import bootstrap
from shepherd.adapters.aws_errors import CLIENT_CONFIG
from shepherd.registry.errors import TransientError
from tests.handlers import conftest as handler_fixtures
from tests.handlers.conftest import load_handler, sample_event
from tests.handlers.lifecycle import (
    ENDPOINT,
    START,
    approve,
    promote,
    promotion,
    register,
    registered_version,
    settled_weights,
    status,
    tick,
)
from tests.handlers.test_register_version import eventbridge_upload

# The handler tests' fixtures, shared: a Lambda context, the SageMaker emulator, v1 live on the endpoint.
lambda_context = handler_fixtures.lambda_context
sagemaker = handler_fixtures.sagemaker
first_deployment = handler_fixtures.first_deployment

# Attempts the SDK makes per call, the first included. botocore reads CLIENT_CONFIG's `max_attempts` as
# retries (5 -> 6 attempts); ask a client built with it rather than assume (no request is made).
SDK_ATTEMPTS = int(
    boto3.session.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    .client("s3", config=CLIENT_CONFIG)
    .meta.config.retries["total_max_attempts"]
)
LAMBDA_ATTEMPTS = 3  # an asynchronous invocation: the first try and two retries, then the dead-letter queue
KEY = "models/churn-predictor/2026-11-20T0912Z/model.tar.gz"


# --- injecting faults -----------------------------------------------------------------------------------

# (HTTP status, error code) per kind of fault, as each service reports it.
FAULTS = {
    "throttling": {"s3": (503, "SlowDown"), "default": (400, "ThrottlingException")},
    "5xx": {"s3": (500, "InternalError"), "default": (500, "InternalServerError")},
}
# Where a service's requests go: anything moto does not serve, so moto never applies a faulted request.
NOWHERE = "http://fault-injected.invalid/"


@dataclass
class Fault:
    """Answer the next `times` attempts of one operation with an error (or a custom response)."""

    service: str  # the handler's client, as `bootstrap.client` names it: s3, dynamodb, events, sagemaker
    operation: str  # e.g. "HeadObject"
    kind: str = "throttling"
    times: int = 1
    respond: Callable[[], tuple[int, dict[str, Any]]] | None = None  # a custom (status, JSON body)
    # No answer at all: the request fails on the way (a connection error the SDK retries, then raises).
    raises: Callable[[], Exception] | None = None
    armed: Callable[[], bool] = lambda: True  # inject only while this holds (e.g. after another call)
    on_first: Callable[[], None] | None = None  # called when the first fault is injected
    about: str | None = None  # inject only into requests naming this (an endpoint, say)
    holding: str | None = None  # inject only into requests whose body holds this text (a key prefix, say)
    attempts: int = 0  # every attempt the SDK made, faulted or not
    injected: int = 0

    def install(self) -> Fault:
        client = bootstrap.client(self.service)
        service_id = client.meta.service_model.service_id.hyphenize()
        # First: moto answers in its own before-send hook, which must not see a faulted request.
        client.meta.events.register_first(f"before-send.{service_id}.{self.operation}", self._before_send)
        return self

    @property
    def passed(self) -> int:
        """Attempts that reached the emulator (and took effect there)."""
        return self.attempts - self.injected

    def _names_it(self, request: Any) -> bool:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        named = self.about is None or f'"{self.about}"'.encode() in body
        return named and (self.holding is None or self.holding.encode() in body)

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.injected >= self.times or not self.armed() or not self._names_it(request):
            return None
        if self.injected == 0 and self.on_first is not None:
            self.on_first()
        self.injected += 1
        if self.raises is not None:
            raise self.raises()
        if self.respond is not None:
            status, document = self.respond()
            body = json.dumps(document).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1"}
        else:
            status, code = FAULTS[self.kind].get(self.service, FAULTS[self.kind]["default"])
            body, headers = _error_body(self.service, request.method, code)
        request.url = NOWHERE
        return AWSResponse(NOWHERE, status, headers, MockRawResponse(body))


def _error_body(service: str, method: str, code: str) -> tuple[bytes, dict[str, str]]:
    if service == "s3":  # REST-XML; a HEAD response has no body (the SDK names the error by its status)
        body = b"" if method == "HEAD" else f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        return body, {"Content-Type": "application/xml"}
    return json.dumps({"__type": code, "message": "injected fault"}).encode(), {
        "Content-Type": "application/x-amz-json-1.0"
    }


@pytest.fixture
def faults(world, monkeypatch) -> Iterator[Callable[..., Fault]]:
    """`faults(service, operation, kind=..., times=...)` installs a Fault on the handlers' client."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)

    def install(service: str, operation: str, **options: Any) -> Fault:
        return Fault(service, operation, **options).install()

    yield install


def lambda_async(handler: Any, event: dict[str, Any], context: Any) -> tuple[str, Any]:
    """Lambda's asynchronous invocation: up to three attempts; then the event is dead-lettered."""
    error: Exception | None = None
    for _ in range(LAMBDA_ATTEMPTS):
        try:
            return "ok", handler.lambda_handler(copy.deepcopy(event), context)
        except TransientError as failed:
            error = failed
    return "dead-letter", error


# --- what the registry holds ------------------------------------------------------------------------


def items(world, pk: str) -> list[dict[str, Any]]:
    return list(
        world.dynamodb.query(
            TableName=world.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )["Items"]
    )


def versions(world, model: str = "churn-predictor") -> dict[int, str]:
    """version number -> artifact key."""
    return {
        int(item["version"]["N"]): item["artifact"]["M"]["key"]["S"]
        for item in items(world, f"MODEL#{model}")
        if item["sk"]["S"].startswith("VERSION#")
    }


def counter(world, model: str = "churn-predictor") -> int:
    model_items = [item for item in items(world, f"MODEL#{model}") if item["sk"]["S"] == "MODEL"]
    return int(model_items[0]["latest_version"]["N"]) if model_items else 0


def claims(world, key: str = KEY) -> list[dict[str, Any]]:
    return [
        item for item in items(world, f"ARTIFACT#s3://{world.bucket}/{key}") if item["sk"]["S"].startswith("CLAIM#")
    ]


def registered_announcements(world) -> list[tuple[str, int]]:
    return [(a["model_name"], a["version"]) for a in world.announcements("Model Version Registered")]


def assert_exactly_one_version(world, key: str = KEY) -> None:
    assert versions(world) == {1: key}
    assert counter(world) == 1
    assert len(claims(world, key)) == 1
    assert world.announcements("Model Artifact Rejected") == []


# --- registration: each dependency failing in turn ----------------------------------------------------

REGISTRATION_CALLS = [
    ("s3", "HeadObject"),
    ("s3", "ListObjectVersions"),  # the manifest as of the upload, looked up on every registration (none here)
    ("dynamodb", "TransactWriteItems"),
    ("events", "PutEvents"),
]
KINDS = ["throttling", "5xx"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("service", "operation"), REGISTRATION_CALLS)
def test_faults_within_the_sdk_retries_still_register_one_version(
    world, lambda_context, faults, service, operation, kind
):
    fault = faults(service, operation, kind=kind, times=SDK_ATTEMPTS - 1)

    response = register.lambda_handler(eventbridge_upload(world), lambda_context)

    assert response["results"] == [{"key": KEY, "result": "registered", "version": 1}]
    assert fault.injected == SDK_ATTEMPTS - 1 and fault.passed == 1  # retried by the SDK, applied once
    assert_exactly_one_version(world)
    assert registered_announcements(world) == [("churn-predictor", 1)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("service", "operation"), REGISTRATION_CALLS)
def test_a_fault_outlasting_the_sdk_retries_fails_the_invocation_and_the_retry_registers_once(
    world, lambda_context, faults, service, operation, kind
):
    event = eventbridge_upload(world)
    faults(service, operation, kind=kind, times=SDK_ATTEMPTS)  # every attempt of one call

    with pytest.raises(TransientError):
        register.lambda_handler(copy.deepcopy(event), lambda_context)
    written_before_the_fault = versions(world)

    retried = register.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]

    # Only PutEvents comes after the transaction: then the version exists and the retry is a duplicate.
    expected = "duplicate" if operation == "PutEvents" else "registered"
    assert written_before_the_fault == ({1: KEY} if operation == "PutEvents" else {})
    assert (retried["result"], retried["version"]) == (expected, 1)
    assert_exactly_one_version(world)
    assert registered_announcements(world) == [("churn-predictor", 1)]  # announced once, by the retry


@pytest.mark.parametrize(("service", "operation"), REGISTRATION_CALLS)
def test_an_outage_longer_than_lambdas_retries_dead_letters_the_event_and_a_redrive_registers_once(
    world, lambda_context, faults, service, operation
):
    event = eventbridge_upload(world)
    faults(service, operation, kind="5xx", times=SDK_ATTEMPTS * LAMBDA_ATTEMPTS)

    outcome, error = lambda_async(register, event, lambda_context)
    assert outcome == "dead-letter" and isinstance(error, TransientError)

    # The outage is over; the event is redriven from the dead-letter queue (twice, for good measure).
    for _ in range(2):
        assert lambda_async(register, event, lambda_context)[0] == "ok"
    assert_exactly_one_version(world)
    assert set(registered_announcements(world)) == {("churn-predictor", 1)}


def test_a_short_outage_is_absorbed_by_lambdas_own_retries(world, lambda_context, faults):
    event = eventbridge_upload(world)
    faults("dynamodb", "TransactWriteItems", kind="throttling", times=SDK_ATTEMPTS * (LAMBDA_ATTEMPTS - 1))

    outcome, response = lambda_async(register, event, lambda_context)

    assert outcome == "ok" and response["results"][0]["version"] == 1
    assert_exactly_one_version(world)


@pytest.mark.parametrize("times", [1, 3])
def test_put_events_accepting_the_request_but_failing_the_entry_is_resent(world, lambda_context, faults, times):
    # PutEvents can answer 200 and still fail entries; the publisher re-sends those (4 attempts).
    def entry_throttled() -> tuple[int, dict[str, Any]]:
        return 200, {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "x"}]}

    fault = faults("events", "PutEvents", times=times, respond=entry_throttled)

    assert register.lambda_handler(eventbridge_upload(world), lambda_context)["results"][0]["result"] == "registered"
    assert fault.passed == 1
    assert registered_announcements(world) == [("churn-predictor", 1)]


def test_put_events_failing_the_entry_every_time_fails_the_invocation(world, lambda_context, faults):
    def entry_failed() -> tuple[int, dict[str, Any]]:
        return 200, {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}

    event = eventbridge_upload(world)
    faults("events", "PutEvents", times=4, respond=entry_failed)

    with pytest.raises(TransientError):
        register.lambda_handler(copy.deepcopy(event), lambda_context)
    assert register.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]["result"] == "duplicate"
    assert_exactly_one_version(world)
    assert registered_announcements(world) == [("churn-predictor", 1)]


@pytest.mark.parametrize("kind", KINDS)
def test_get_item_failing_on_a_duplicate_delivery_is_retried_and_stays_one_version(world, lambda_context, faults, kind):
    # GetItem is on the duplicate path: the claim exists, so the version it names is read back.
    event = eventbridge_upload(world)
    register.lambda_handler(copy.deepcopy(event), lambda_context)
    world.announcements()
    faults("dynamodb", "GetItem", kind=kind, times=SDK_ATTEMPTS)

    with pytest.raises(TransientError):
        register.lambda_handler(copy.deepcopy(event), lambda_context)
    retried = register.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]

    assert (retried["result"], retried["version"]) == ("duplicate", 1)
    assert_exactly_one_version(world)


def test_get_item_failing_after_the_artifact_was_deleted_never_turns_the_version_into_a_rejection(
    world, lambda_context, faults
):
    # A redelivery after the object was deleted looks the claim up (GetItem) before deciding "missing".
    event = eventbridge_upload(world)
    register.lambda_handler(copy.deepcopy(event), lambda_context)
    world.s3.delete_object(Bucket=world.bucket, Key=KEY, VersionId=event["detail"]["object"]["version-id"])
    faults("dynamodb", "GetItem", kind="5xx", times=SDK_ATTEMPTS)

    with pytest.raises(TransientError):
        register.lambda_handler(copy.deepcopy(event), lambda_context)
    assert register.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]["result"] == "duplicate"
    assert_exactly_one_version(world)


def test_a_crash_after_the_transaction_is_repaired_by_the_retry(world, lambda_context, monkeypatch):
    # The process dies between TransactWriteItems and PutEvents (a timeout, out of memory).
    from shepherd.adapters.eventbridge import EventBridgePublisher

    event = eventbridge_upload(world)
    real_publish = EventBridgePublisher.publish

    def crash(self, *announcements):
        raise RuntimeError("Lambda timed out")

    monkeypatch.setattr(EventBridgePublisher, "publish", crash)
    with pytest.raises(RuntimeError):
        register.lambda_handler(copy.deepcopy(event), lambda_context)
    monkeypatch.setattr(EventBridgePublisher, "publish", real_publish)

    assert register.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]["result"] == "duplicate"
    assert_exactly_one_version(world)
    assert registered_announcements(world) == [("churn-predictor", 1)]


# --- duplicate and out-of-order events ------------------------------------------------------------------


def test_two_uploads_delivered_in_reverse_order_and_repeated_get_gapless_versions(world, lambda_context):
    first_key, second_key = (f"models/churn-predictor/run-{n}/model.tar.gz" for n in (1, 2))
    first = eventbridge_upload(world, key=first_key)
    second = eventbridge_upload(world, key=second_key)
    second["time"] = "2026-11-20T09:20:00Z"  # uploaded later, delivered first

    outcomes = [
        register.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]
        for event in (second, first, second, first, first)
    ]

    # Numbers follow registration order, not upload time; every artifact has exactly one.
    assert [(o["key"], o["result"], o["version"]) for o in outcomes] == [
        (second_key, "registered", 1),
        (first_key, "registered", 2),
        (second_key, "duplicate", 1),
        (first_key, "duplicate", 2),
        (first_key, "duplicate", 2),
    ]
    assert versions(world) == {1: second_key, 2: first_key}
    assert counter(world) == 2


def test_the_same_upload_delivered_concurrently_is_one_version(world, lambda_context):
    event = eventbridge_upload(world)
    bootstrap.registration_service()  # one container's clients, shared by the threads as Lambda would not

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda _: register.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0], range(8))
        )

    assert sorted(r["result"] for r in results) == ["duplicate"] * 7 + ["registered"]
    assert {r["version"] for r in results} == {1}
    assert_exactly_one_version(world)


def approval(version: int, decision: str = "approved", event_id: str | None = None) -> dict[str, Any]:
    command = sample_event("model-version-approval-requested.json")
    command["id"] = event_id or str(uuid.uuid4())
    command["detail"].update(version=version, decision=decision)
    return command


def test_an_approval_arriving_before_the_version_exists_is_refused_and_changes_nothing(world, lambda_context):
    refused = approve.lambda_handler(approval(1), lambda_context)
    assert refused["result"] == "refused" and "has no version 1" in refused["reason"]
    [announced] = world.announcements("Model Version Approval Refused")
    assert "current_status" not in announced  # there is no version to have a status

    register.lambda_handler(eventbridge_upload(world), lambda_context)
    assert status(world, 1) == "REGISTERED"  # the early command did not stick to the new version
    assert approve.lambda_handler(approval(1), lambda_context)["result"] == "approved"
    assert status(world, 1) == "APPROVED"


def test_an_approval_before_the_registrations_announcement_survives_the_registration_retry(
    world, lambda_context, faults
):
    # The version is written but its announcement fails; someone approves it from the table meanwhile.
    event = eventbridge_upload(world)
    faults("events", "PutEvents", kind="5xx", times=SDK_ATTEMPTS)
    with pytest.raises(TransientError):
        register.lambda_handler(copy.deepcopy(event), lambda_context)

    assert approve.lambda_handler(approval(1), lambda_context)["result"] == "approved"
    retried = register.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]

    assert (retried["result"], retried["version"]) == ("duplicate", 1)
    assert status(world, 1) == "APPROVED"  # the late registration retry does not reset the status
    assert_exactly_one_version(world)
    kinds = [kind for kind, _ in world.seen]
    assert kinds == ["Model Version Approved", "Model Version Registered"]  # out of order, both present


def test_a_redelivered_approval_after_a_later_rejection_attempt_stays_one_decision(world, lambda_context):
    register.lambda_handler(eventbridge_upload(world), lambda_context)
    command = approval(1, event_id="approve-1")
    assert approve.lambda_handler(copy.deepcopy(command), lambda_context)["result"] == "approved"
    assert approve.lambda_handler(approval(1, "rejected"), lambda_context)["result"] == "refused"

    assert approve.lambda_handler(copy.deepcopy(command), lambda_context)["result"] == "duplicate"
    assert status(world, 1) == "APPROVED"


# --- rollouts: faults during a controller tick ------------------------------------------------------------

CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 300, "post_deploy_watch_seconds": 60}
AT = START + timedelta(hours=1)
V1, V2 = "churn-predictor-v1", "churn-predictor-v2"


def rollout_record(world) -> dict[str, Any]:
    [active] = [item for item in items(world, f"ENDPOINT#{ENDPOINT}") if item["sk"]["S"].startswith("ROLLOUT#")][-1:]
    return active


def _progress(item: dict[str, Any]) -> dict[str, Any]:
    """A rollout item without its failure bookkeeping (`failing_since`, and the revision/time it takes)."""
    record = dict(item["rollout"]["M"])
    for bookkeeping in ("failing_since", "revision", "updated_at"):
        record.pop(bookkeeping, None)
    return record


def shifted(world) -> list[tuple[int, int]]:
    return [(s["from_percent"], s["to_percent"]) for s in world.announcements("Rollout Traffic Shifted")]


@pytest.fixture
def candidate_joined(world, sagemaker, lambda_context, first_deployment):
    """v2 promoted as a 10% canary; the first tick added it at weight 0: the next tick shifts traffic."""
    v2 = registered_version(world, lambda_context, 2)
    assert promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)["result"] == "started"
    tick(lambda_context, AT)
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    world.announcements()
    world.seen.clear()
    return v2


def test_throttled_weight_changes_within_the_sdk_retries_shift_once(
    world, sagemaker, lambda_context, faults, candidate_joined
):
    fault = faults("sagemaker", "UpdateEndpointWeightsAndCapacities", kind="throttling", times=SDK_ATTEMPTS - 1)

    tick(lambda_context, AT + timedelta(minutes=1))

    assert fault.passed == 1
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    assert shifted(world) == [(0, 10)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_throttled_tick_reports_the_error_changes_nothing_and_the_next_tick_takes_the_step_once(
    world, sagemaker, lambda_context, faults, candidate_joined, kind
):
    # The tick first records that the candidate joined (a decision of its own), then asks for 10%:
    # the record as it stood when SageMaker refused is what must still be there after the tick (but for
    # the time the failures started, which bounds how long they may last). The failure is the rollout's
    # own: the tick reports it (RolloutErrors) instead of failing for every rollout.
    seen_at_fault: list[dict[str, Any]] = []
    fault = faults(
        "sagemaker",
        "UpdateEndpointWeightsAndCapacities",
        kind=kind,
        times=SDK_ATTEMPTS,
        on_first=lambda: seen_at_fault.append(rollout_record(world)),
    )

    assert tick(lambda_context, AT + timedelta(minutes=1))["errors"] == 1

    assert fault.passed == 0
    after = rollout_record(world)
    assert after["rollout"]["M"].pop("failing_since") == {"S": "2026-11-20T11:01:00Z"}
    assert seen_at_fault[0]["rollout"]["M"].pop("failing_since") == {"NULL": True}
    assert _progress(after) == _progress(seen_at_fault[0])
    assert rollout_record(world)["rollout"]["M"]["current_percent"] == {"N": "0"}
    assert rollout_record(world)["rollout"]["M"]["pending_since"] == {"NULL": True}
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    assert shifted(world) == []

    tick(lambda_context, AT + timedelta(minutes=2))
    assert fault.passed == 1
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    for minute in range(3, 16):  # bake 300 s, then 100%, then the 60 s watch window and clean-up
        tick(lambda_context, AT + timedelta(minutes=minute))
    assert fault.passed == 2  # 10%, then 100%: no step skipped, none repeated
    assert shifted(world) == [(0, 10), (10, 100)]
    assert settled_weights(sagemaker) == {V2: 1.0}
    assert status(world, candidate_joined) == "LIVE"


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("sagemaker", "DescribeEndpoint"),
        ("dynamodb", "GetItem"),
        ("dynamodb", "Query"),
        ("cloudwatch", "DescribeAlarms"),
    ],
)
def test_a_tick_that_cannot_observe_reports_the_error_and_changes_nothing(
    world, sagemaker, lambda_context, faults, candidate_joined, service, operation
):
    before = rollout_record(world)
    faults(service, operation, kind="5xx", times=SDK_ATTEMPTS)

    if (service, operation) == ("dynamodb", "GetItem"):
        with pytest.raises(TransientError):  # the list of rollouts itself: Lambda retries the tick
            tick(lambda_context, AT + timedelta(minutes=1))
    elif (service, operation) == ("dynamodb", "Query"):
        # The tick's first Query lists the outbox: reported, and never in the way of a decision.
        assert tick(lambda_context, AT + timedelta(minutes=1))["errors"] == 1
        assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
        assert shifted(world) == [(0, 10)]
        return
    else:  # one rollout's observation: isolated and reported
        assert tick(lambda_context, AT + timedelta(minutes=1))["errors"] == 1

    assert _progress(rollout_record(world)) == _progress(before)
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    tick(lambda_context, AT + timedelta(minutes=2))
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    assert shifted(world) == [(0, 10)]


def test_a_record_write_failing_after_the_weight_change_is_repaired_without_a_second_shift(
    world, sagemaker, lambda_context, faults, candidate_joined
):
    # A crash between steps: SageMaker applied the shift, then the record's TransactWriteItems failed.
    weights_changed = faults("sagemaker", "UpdateEndpointWeightsAndCapacities", times=0)
    faults("dynamodb", "TransactWriteItems", kind="5xx", times=SDK_ATTEMPTS, armed=lambda: weights_changed.passed > 0)

    assert tick(lambda_context, AT + timedelta(minutes=1))["errors"] == 1
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    assert rollout_record(world)["rollout"]["M"]["current_percent"] == {"N": "0"}  # the record lags

    tick(lambda_context, AT + timedelta(minutes=2))
    assert weights_changed.passed == 1  # caught up from what the endpoint shows: no second call
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    assert rollout_record(world)["rollout"]["M"]["current_percent"] == {"N": "10"}


def test_put_events_failing_after_a_step_is_recorded_loses_no_announcement(
    world, sagemaker, lambda_context, faults, candidate_joined
):
    faults("events", "PutEvents", kind="5xx", times=SDK_ATTEMPTS)

    assert tick(lambda_context, AT + timedelta(minutes=1))["errors"] == 1
    tick(lambda_context, AT + timedelta(minutes=2))

    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    assert shifted(world) == [(0, 10)]


def test_put_events_failing_after_a_promotion_is_recorded_loses_no_rollout_started(
    world, sagemaker, lambda_context, faults, first_deployment
):
    v2 = registered_version(world, lambda_context, 2)
    world.announcements()
    world.seen.clear()
    event = promotion(v2, CANARY, at=AT)
    faults("events", "PutEvents", kind="5xx", times=SDK_ATTEMPTS)

    with pytest.raises(TransientError):
        promote.lambda_handler(copy.deepcopy(event), lambda_context)
    retried = promote.lambda_handler(copy.deepcopy(event), lambda_context)

    assert retried["result"] == "duplicate"
    assert len(world.announcements("Rollout Started")) == 1


# --- stale and repeated ticks -------------------------------------------------------------------------


def test_stale_ticks_change_nothing(world, sagemaker, lambda_context, candidate_joined):
    tick(lambda_context, AT + timedelta(minutes=1))  # 10%, baking until about AT+6m
    settled_weights(sagemaker)
    tick(lambda_context, AT + timedelta(minutes=2))  # records the step as reached
    before, weights_before = rollout_record(world), settled_weights(sagemaker)
    world.announcements()

    # Ticks from before the record's last change: an old schedule event delivered late, or replayed -
    # including one past the bake, but earlier than the last tick.
    for stale in (AT - timedelta(hours=1), AT, AT + timedelta(minutes=1), AT + timedelta(seconds=90)):
        tick(lambda_context, stale)

    assert rollout_record(world) == before
    assert settled_weights(sagemaker) == weights_before == {V1: 0.9, V2: 0.1}
    assert shifted(world) == [(0, 10)]


def test_a_tick_replayed_after_the_rollout_moved_on_changes_nothing(world, sagemaker, lambda_context, candidate_joined):
    for minute in range(1, 10):  # 10%, bake, 100%
        tick(lambda_context, AT + timedelta(minutes=minute))
    settled_weights(sagemaker)
    before = rollout_record(world)
    world.announcements()

    tick(lambda_context, AT + timedelta(minutes=4))  # a tick from inside the finished bake, delivered late

    assert rollout_record(world) == before
    assert settled_weights(sagemaker)[V2] == 1.0
    assert shifted(world) == [(0, 10), (10, 100)]


def test_fault_hooks_touch_only_the_handlers_clients(world, faults):
    # The tests' own probes (world.*) are separate clients: injected faults never hide what they see.
    faults("dynamodb", "Query", kind="5xx", times=100)
    assert items(world, "MODEL#nothing") == []
    assert boto3.client("dynamodb").list_tables()["TableNames"] == [world.table]


# --- rollback: faults on the flip, the record and the announcement ---------------------------------------

rollback = load_handler("rollback")


@pytest.fixture
def canary_at_10(world, sagemaker, lambda_context, candidate_joined):
    tick(lambda_context, AT + timedelta(minutes=1))
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    bootstrap.rollback_service().sleep = lambda seconds: None  # its own backoff between flip attempts
    world.announcements()
    world.seen.clear()
    return candidate_joined


def alarm(world, at=AT + timedelta(minutes=2)) -> dict[str, Any]:
    """The per-rollout error-rate alarm going to ALARM, as EventBridge delivers it."""
    lock = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "LOCK"}}, ConsistentRead=True
    )
    event = sample_event("cloudwatch-alarm-state-change.eventbridge.json")
    event["id"] = str(uuid.uuid4())
    event["detail"]["alarmName"] = f"shepherd-test--{ENDPOINT}-{lock['Item']['rollout_id']['S']}-error-rate"
    event["detail"]["state"]["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["EndpointName"] = ENDPOINT
    return event


def finish(lambda_context, sagemaker, minutes: range) -> dict[str, float]:
    for minute in minutes:
        tick(lambda_context, AT + timedelta(minutes=minute))
    return settled_weights(sagemaker)


def test_a_throttled_flip_is_retried_and_rolls_back_once(world, sagemaker, lambda_context, faults, canary_at_10):
    flip = faults("sagemaker", "UpdateEndpointWeightsAndCapacities", kind="throttling", times=SDK_ATTEMPTS + 2)

    result = rollback.lambda_handler(alarm(world), lambda_context)["results"][0]

    assert result["result"] == "rolled_back"
    assert flip.passed == 1  # the SDK's retries, then the service's own: one flip landed
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    assert status(world, canary_at_10) == "ROLLED_BACK"
    assert len(world.announcements("Rollout Rolled Back")) == 1


def test_a_flip_that_never_lands_fails_the_invocation_and_claims_no_flip(
    world, sagemaker, lambda_context, faults, canary_at_10
):
    from shepherd.rollouts.flip import FLIP_ATTEMPTS

    event = alarm(world)
    faults("sagemaker", "UpdateEndpointWeightsAndCapacities", kind="5xx", times=SDK_ATTEMPTS * FLIP_ATTEMPTS)

    with pytest.raises(TransientError):
        rollback.lambda_handler(copy.deepcopy(event), lambda_context)
    # The abort was recorded before the flip (no tick moves the candidate on); no flip is claimed.
    assert rollout_record(world)["rollout"]["M"]["phase"] == {"S": "ABORTING"}
    assert settled_weights(sagemaker) == {V1: 0.9, V2: 0.1}
    assert world.announcements("Rollout Rolled Back") == []
    assert bootstrap.rollout_store().incidents(ENDPOINT) == []

    assert rollback.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]["result"] == "rolled_back"
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    assert finish(lambda_context, sagemaker, range(3, 6)) == {V1: 1.0}
    assert status(world, canary_at_10) == "ROLLED_BACK"
    assert len(world.announcements("Rollout Rolled Back")) == 1


@pytest.mark.parametrize("tick_before_the_retry", [True, False], ids=["tick-first", "retry-first"])
def test_a_record_write_failing_after_the_flip_still_ends_rolled_back_with_its_incident(
    world, sagemaker, lambda_context, faults, canary_at_10, tick_before_the_retry
):
    # The flip lands, the write that records it fails; a controller tick may run before Lambda's retry.
    event = alarm(world)
    flip = faults("sagemaker", "UpdateEndpointWeightsAndCapacities", times=0)
    faults("dynamodb", "TransactWriteItems", kind="5xx", times=SDK_ATTEMPTS, armed=lambda: flip.passed > 0)

    with pytest.raises(TransientError):
        rollback.lambda_handler(copy.deepcopy(event), lambda_context)
    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    if tick_before_the_retry:
        tick(lambda_context, AT + timedelta(minutes=3))
    retried = rollback.lambda_handler(copy.deepcopy(event), lambda_context)["results"][0]

    # Whoever sees the flip first records it (the tick, or the retry): once, with its incident.
    assert retried["result"] == ("duplicate" if tick_before_the_retry else "rolled_back")
    assert finish(lambda_context, sagemaker, range(4, 8)) == {V1: 1.0}  # never back on the candidate
    assert (status(world, 1), status(world, canary_at_10)) == ("LIVE", "ROLLED_BACK")
    assert world.announcements("Rollout Failed") == []
    [announced] = world.announcements("Rollout Rolled Back")
    [incident] = bootstrap.rollout_store().incidents(ENDPOINT)
    assert incident.seconds_to_flip == announced["seconds_to_flip"] and incident.seconds_to_flip is not None


def test_put_events_failing_after_the_rollback_is_recorded_loses_no_announcement(
    world, sagemaker, lambda_context, faults, canary_at_10
):
    event = alarm(world)
    faults("events", "PutEvents", kind="5xx", times=SDK_ATTEMPTS)

    with pytest.raises(TransientError):
        rollback.lambda_handler(copy.deepcopy(event), lambda_context)
    rollback.lambda_handler(copy.deepcopy(event), lambda_context)

    assert settled_weights(sagemaker) == {V1: 1.0, V2: 0.0}
    assert len(world.announcements("Rollout Rolled Back")) == 1


@pytest.mark.parametrize("delay_minutes", [0, 1])
def test_a_late_or_stale_tick_after_a_rollback_never_shifts_traffic_back(
    world, sagemaker, lambda_context, canary_at_10, delay_minutes
):
    assert rollback.lambda_handler(alarm(world), lambda_context)["results"][0]["result"] == "rolled_back"

    # A schedule tick from before the alarm, delivered late; then the schedule goes on.
    tick(lambda_context, AT + timedelta(minutes=1, seconds=30))
    assert settled_weights(sagemaker)[V2] == 0.0
    assert finish(lambda_context, sagemaker, range(2 + delay_minutes, 8)) == {V1: 1.0}
    assert status(world, canary_at_10) == "ROLLED_BACK"


def test_an_alarm_before_the_first_tick_rolls_back(world, sagemaker, lambda_context, first_deployment):
    # The candidate's alarm fires at the promotion's own time, before any controller tick: nothing to
    # flip yet, but the rollout must still end rolled back (and the version not stay DEPLOYING).
    v2 = registered_version(world, lambda_context, 2)
    promote.lambda_handler(promotion(v2, CANARY, at=AT), lambda_context)
    bootstrap.rollback_service().sleep = lambda seconds: None

    result = rollback.lambda_handler(alarm(world, at=AT), lambda_context)["results"][0]

    assert result["result"] == "rolled_back"
    assert status(world, v2) == "ROLLED_BACK"
    assert finish(lambda_context, sagemaker, range(1, 4)) == {V1: 1.0}
