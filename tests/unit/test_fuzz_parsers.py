"""Fuzzing the edge: every parser of untrusted input ends in a typed validation error, never another exception.

The parsers are the first code an event, a manifest or a strategy reaches. Whatever arrives - random
bytes, random text, any JSON value, or a real sample event from `events/` with fields deleted, replaced
or added - a parser either returns its typed result or raises the error its caller handles:

| parser | typed error | what the caller does with it |
|---|---|---|
| `shepherd.inbound.parse_uploads`, `parse_approval`, `parse_promotion`, `parse_tick`, `parse_rollback_trigger` | `ValueError` (pydantic's `ValidationError` is one) | the invocation fails: Lambda retries, then the dead-letter queue keeps the event |
| `shepherd.registry.manifest.parse_manifest` | `ArtifactRejected` | the upload is rejected with the reason |
| `shepherd.rollouts.strategy.parse_strategy` | `InvalidStrategy` | `Promotion Rejected` with the reason |

Anything else (`TypeError`, `AttributeError`, a library's own exception) would be a parser bug: the
event still fails and is kept, but for no stated reason.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shepherd.inbound import parse_approval, parse_promotion, parse_rollback_trigger, parse_tick, parse_uploads
from shepherd.registry.approval import ApprovalDecision
from shepherd.registry.errors import ArtifactRejected
from shepherd.registry.manifest import Manifest, parse_manifest
from shepherd.registry.registration import ArtifactUploaded
from shepherd.rollouts.promotion import PromotionRequest
from shepherd.rollouts.strategy import InvalidStrategy, parse_strategy

EVENTS = Path(__file__).resolve().parents[2] / "events"

# Fast enough for CI on two cores (the whole file runs in well under 30 s), still hundreds of inputs
# per parser and shape. No deadline: a slow first example (pydantic building a schema) is not a bug.
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EVENT_ERRORS: tuple[type[Exception], ...] = (ValidationError, ValueError)


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


UPLOAD_EVENTBRIDGE = sample("s3-object-created.eventbridge.json")
UPLOAD_NOTIFICATION = sample("s3-object-created.notification.json")
UPLOAD_SNS = sample("s3-object-created.sns.json")
UPLOAD_SNS_IN_SQS = sample("s3-object-created.sns-in-sqs.json")
NOT_CREATED = sample("s3-not-created.notification.json")
APPROVAL = sample("model-version-approval-requested.json")
ALARM_STATE_CHANGE = sample("cloudwatch-alarm-state-change.eventbridge.json")
# The README's promotion example, in the EventBridge envelope the Shepherd bus delivers.
PROMOTION = {
    **copy.deepcopy(APPROVAL),
    "id": "0d9c3a52-6c1e-4a2b-9f3e-1f2a3b4c5d6e",
    "detail-type": "Model Promotion Requested",
    "detail": {
        "model_name": "churn-predictor",
        "version": 4,
        "endpoint_name": "churn-prod",
        "strategy": {"type": "canary", "canary_percent": 10, "bake_seconds": 3600, "post_deploy_watch_seconds": 900},
        "alarms": ["churn-accuracy-below-90"],
        "instance_type": "ml.m5.large",
        "initial_instance_count": 1,
        "requested_by": "alice@example.com",
        "reason": "v4 beats v3 offline",
    },
}
SCHEDULED_TICK = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-20T10:00:00Z",
    "region": "eu-west-1",
    "resources": ["arn:aws:events:eu-west-1:123456789012:rule/shepherd-dev-every-minute"],
    "detail": {},
}
MANIFEST = {
    "description": "Gradient-boosted churn model, November retrain",
    "framework": "xgboost",
    "framework_version": "2.1.1",
    "inference_image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-serving:2.1.1",
    "metrics": {"auc": 0.912, "logloss": 0.231},
    "training_data": {"uri": "s3://acme-datasets/churn/2026-11-01/", "version": "2026-11-01"},
    "source": {"repository": "https://git.example.com/ml/churn", "commit": "9f2c1e4"},
    "tags": {"team": "growth"},
    "parent_version": 3,
}
STRATEGIES = [
    {"type": "canary", "canary_percent": 10, "bake_seconds": 600},
    {"type": "linear", "step_percent": 20, "interval_seconds": 300, "post_deploy_watch_seconds": 60},
    {
        "type": "steps",
        "steps": [{"percent": 5, "bake_seconds": 300}, {"percent": 50, "bake_seconds": 600}, {"percent": 100}],
        "analysis": {"max_error_rate_percent": 2.5, "max_latency_p99_ms": 250, "period_seconds": 60},
    },
    {"type": "all_at_once", "analysis": {"evaluation_periods": 5}},
]


def sqs_wrapped(notification: Any) -> dict[str, Any]:
    return {"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": json.dumps(notification)}]}


def sns_wrapped(notification: Any) -> dict[str, Any]:
    return {
        "Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": json.dumps(notification)}}]
    }


# --- inputs -------------------------------------------------------------------------------------------

# Values a field might plausibly (or implausibly) hold: boundaries, wrong types, hostile strings.
# Copied on each draw: a mutation must never change a value shared with later examples.
TRICKY = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        1,
        100,
        101,
        2**63,
        -(2**63) - 1,
        10**40,
        0.5,
        -0.0,
        1e308,
        float("inf"),
        float("nan"),
        "",
        " ",
        "null",
        "0",
        "10",
        "true",
        "%",
        "%ZZ",
        "+",
        "\x00",
        "\ud800",  # a lone surrogate: valid in a Python str, not in UTF-8
        "../..",
        "models//model.tar.gz",
        "models/churn/v1/model.tar.gz",
        "models/Churn_Predictor/v1/model.tar.gz",
        "ObjectCreated:Put",
        "ObjectRemoved:Delete",
        "aws:sqs",
        "aws:sns",
        "aws:s3",
        "s3:TestEvent",
        "Object Created",
        "Model Promotion Requested",
        "Model Version Approval Requested",
        "latest-approved",
        "2026-11-20T09:14:03Z",
        "2026-11-20T09:14:03",
        "2026-13-45T99:99:99Z",
        "9999-12-31T23:59:59.999999+14:00",
        "1970-01-01",
        "x" * 5000,
        [],
        {},
        [None],
        {"Records": []},
        {"Records": None},
        {"Message": "{}"},
    ]
).map(copy.deepcopy)
JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS | TRICKY,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _slots(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `document` (dict keys and list indexes), the root excluded."""
    slots = []
    if isinstance(document, dict):
        for key, value in document.items():
            slots.append((*path, key))
            slots.extend(_slots(value, (*path, key)))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            slots.append((*path, index))
            slots.extend(_slots(value, (*path, index)))
    return slots


@st.composite
def mutated(draw: st.DrawFn, original: Any, max_changes: int = 3) -> Any:
    """A deep copy of `original` with 1..max_changes fields replaced, deleted or added (unknown names)."""
    document = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, max_changes))):
        slots = _slots(document)
        if not slots:
            return draw(JSON_VALUES)
        *parents, last = draw(st.sampled_from(slots))
        container = document
        for part in parents:
            container = container[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            container[last] = draw(TRICKY | JSON_VALUES)
        elif action == "delete":
            del container[last]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=12) | st.sampled_from(["detail", "Records", "s3", "object", "type"]))] = (
                draw(JSON_VALUES)
            )
        else:
            container.append(draw(JSON_VALUES))
    return document


def must_end_typed(parse: Callable[[Any], Any], raw: Any, allowed: tuple[type[Exception], ...]) -> Any:
    """Call `parse`; anything but a result or one of `allowed` fails the test (pytest shows which)."""
    try:
        return parse(raw)
    except allowed:
        return None


# --- S3 uploads -----------------------------------------------------------------------------------------

UPLOAD_SHAPES = st.one_of(
    mutated(UPLOAD_EVENTBRIDGE),
    mutated(UPLOAD_NOTIFICATION),
    mutated(UPLOAD_NOTIFICATION).map(sqs_wrapped),
    mutated(UPLOAD_NOTIFICATION).map(sns_wrapped),
    mutated(UPLOAD_EVENTBRIDGE).map(sqs_wrapped),
    mutated(sqs_wrapped(UPLOAD_NOTIFICATION)),  # the wrapper itself damaged
    mutated(sns_wrapped(UPLOAD_NOTIFICATION)),
    mutated(UPLOAD_SNS_IN_SQS),
    mutated(json.loads(UPLOAD_SNS_IN_SQS["Records"][0]["body"])).map(
        lambda envelope: {"Records": [{"eventSource": "aws:sqs", "body": json.dumps(envelope)}]}
    ),
    mutated(NOT_CREATED),
)


@FUZZ
@given(event=UPLOAD_SHAPES)
def test_damaged_upload_events_end_in_a_validation_error(event: Any) -> None:
    uploads = must_end_typed(parse_uploads, event, EVENT_ERRORS)
    assert uploads is None or all(isinstance(upload, ArtifactUploaded) for upload in uploads)


@FUZZ
@given(event=JSON_VALUES | st.text() | st.dictionaries(st.sampled_from(["Records", "Event", "detail"]), JSON_VALUES))
def test_any_json_value_as_an_upload_event_ends_in_a_validation_error(event: Any) -> None:
    must_end_typed(parse_uploads, event, EVENT_ERRORS)


@pytest.mark.parametrize(
    "event",
    [
        None,
        "",
        [],
        {"Records": None},
        {"Records": " "},
        {"Records": [{"eventSource": "aws:sns", "Sns": "x"}]},
        {"Records": [{"eventName": None, "s3": {"object": {"size": 1, "eTag": "e"}}}]},
    ],
    ids=["null", "text", "list", "records-null", "records-text", "sns-text", "event-name-null"],
)
def test_the_upload_inputs_fuzzing_found_end_in_a_validation_error(event: Any) -> None:
    # Each raised TypeError, AttributeError or Powertools' InvalidModelTypeError before the fix in inbound.py.
    with pytest.raises(EVENT_ERRORS):
        parse_uploads(event)


@pytest.mark.parametrize(
    "event",
    [
        UPLOAD_EVENTBRIDGE,
        UPLOAD_NOTIFICATION,
        sqs_wrapped(UPLOAD_NOTIFICATION),
        sns_wrapped(UPLOAD_NOTIFICATION),
        UPLOAD_SNS,
        UPLOAD_SNS_IN_SQS,
    ],
    ids=["eventbridge", "notification", "sqs", "sns", "sns-sample", "sns-in-sqs-sample"],
)
def test_the_undamaged_samples_parse(event: dict[str, Any]) -> None:
    # The fuzzing above starts from these: they must be valid, or every mutation would be too.
    [upload] = parse_uploads(copy.deepcopy(event))
    assert upload.artifact.key.startswith("models/churn-predictor/")


# --- commands and ticks -------------------------------------------------------------------------------


@FUZZ
@given(event=mutated(APPROVAL))
def test_damaged_approval_commands_end_in_a_validation_error(event: Any) -> None:
    decision = must_end_typed(parse_approval, event, EVENT_ERRORS)
    assert decision is None or isinstance(decision, ApprovalDecision)


@FUZZ
@given(event=mutated(PROMOTION))
def test_damaged_promotion_commands_end_in_a_validation_error(event: Any) -> None:
    request = must_end_typed(parse_promotion, event, EVENT_ERRORS)
    if request is not None:
        assert isinstance(request, PromotionRequest)
        # The strategy stays raw JSON in the command; the service parses it next, with its own error.
        must_end_typed(parse_strategy, request.strategy, (InvalidStrategy,))


@FUZZ
@given(event=mutated(SCHEDULED_TICK) | mutated(ALARM_STATE_CHANGE))
def test_damaged_ticks_end_in_a_validation_error(event: Any) -> None:
    tick = must_end_typed(parse_tick, event, EVENT_ERRORS)
    assert tick is None or isinstance(tick[1], str)


@FUZZ
@given(event=JSON_VALUES | st.text())
@pytest.mark.parametrize("parse", [parse_approval, parse_promotion, parse_tick], ids=lambda f: f.__name__)
def test_any_json_value_as_a_command_ends_in_a_validation_error(parse: Callable[[Any], Any], event: Any) -> None:
    must_end_typed(parse, event, EVENT_ERRORS)


@pytest.mark.parametrize(
    ("parse", "event"),
    [(parse_approval, APPROVAL), (parse_promotion, PROMOTION), (parse_tick, SCHEDULED_TICK)],
    ids=["approval", "promotion", "tick"],
)
def test_the_undamaged_commands_parse(parse: Callable[[Any], Any], event: dict[str, Any]) -> None:
    assert parse(copy.deepcopy(event)) is not None


# --- rollback triggers ----------------------------------------------------------------------------

ALARM_ACTION = sample("cloudwatch-alarm-lambda-action.json")
ALARM_SNS = sample("cloudwatch-alarm.sns.json")
ALARM_METRIC_MATH_SNS = sample("cloudwatch-alarm-metric-math.sns.json")


def sns_alarm_with(message: Any) -> dict[str, Any]:
    event = copy.deepcopy(ALARM_SNS)
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


ROLLBACK_TRIGGERS = st.one_of(
    mutated(ALARM_ACTION),
    mutated(ALARM_STATE_CHANGE),
    mutated(ALARM_SNS),
    mutated(json.loads(ALARM_SNS["Records"][0]["Sns"]["Message"])).map(sns_alarm_with),
    mutated(json.loads(ALARM_METRIC_MATH_SNS["Records"][0]["Sns"]["Message"])).map(sns_alarm_with),
    JSON_VALUES,
)


@FUZZ
@given(event=ROLLBACK_TRIGGERS)
def test_damaged_rollback_triggers_end_in_a_validation_error(event: Any) -> None:
    must_end_typed(parse_rollback_trigger, event, EVENT_ERRORS)


def _with_dimensions(value: Any) -> dict[str, Any]:
    event = copy.deepcopy(ALARM_ACTION)
    event["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = value
    return event


@pytest.mark.parametrize(
    "event",
    [None, [], "x", {"Records": [{"EventSource": "aws:sns", "Sns": None}]}, _with_dimensions(["x"])],
    ids=["null", "list", "text", "sns-null", "dimensions-list"],
)
def test_the_rollback_trigger_inputs_fuzzing_found_end_in_a_validation_error(event: Any) -> None:
    # Each raised TypeError or AttributeError before the fix in inbound.py.
    with pytest.raises(EVENT_ERRORS):
        parse_rollback_trigger(event)


# --- the manifest -------------------------------------------------------------------------------------


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_random_bytes_as_a_manifest_are_rejected_with_a_reason(raw: bytes) -> None:
    manifest = must_end_typed(parse_manifest, raw, (ArtifactRejected,))
    assert manifest is None or isinstance(manifest, Manifest)


@FUZZ
@given(document=mutated(MANIFEST) | JSON_VALUES)
def test_damaged_manifests_are_rejected_with_a_reason(document: Any) -> None:
    raw = json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")
    try:
        parse_manifest(raw)
    except ArtifactRejected as rejected:
        assert rejected.code == "INVALID_MANIFEST" and rejected.reason.startswith("manifest.json")


@FUZZ
@given(raw=st.data())
def test_a_manifest_with_damaged_bytes_is_rejected_with_a_reason(raw: st.DataObject) -> None:
    valid = bytearray(json.dumps(MANIFEST).encode())
    for _ in range(raw.draw(st.integers(1, 4))):
        at = raw.draw(st.integers(0, len(valid) - 1))
        valid[at] = raw.draw(st.integers(0, 255))
    must_end_typed(parse_manifest, bytes(valid), (ArtifactRejected,))


def test_the_undamaged_manifest_parses() -> None:
    assert parse_manifest(json.dumps(MANIFEST).encode()).parent_version == 3


# --- strategies ---------------------------------------------------------------------------------------


@FUZZ
@given(raw=st.sampled_from(STRATEGIES).flatmap(mutated) | JSON_VALUES)
def test_damaged_strategies_are_invalid_with_a_reason(raw: Any) -> None:
    try:
        strategy = parse_strategy(raw)
    except InvalidStrategy as invalid:
        assert invalid.reason
    else:
        plan = strategy.plan()
        assert plan[-1].percent == 100 and all(a.percent < b.percent for a, b in itertools.pairwise(plan))


@pytest.mark.parametrize("raw", STRATEGIES, ids=[s["type"] for s in STRATEGIES])
def test_the_undamaged_strategies_parse(raw: dict[str, Any]) -> None:
    assert parse_strategy(copy.deepcopy(raw)).plan()[-1].percent == 100
