"""AWS calls per operation, and DynamoDB capacity per registration and per rollout step.

Every operation goes through its real handler (`functions/*/app.py`) on moto with Shepherd's
SageMaker emulator extension, in-process. Calls are counted with a botocore `before-call` hook on
boto3's default session, which the handlers' clients (`shepherd.bootstrap.client`) are built from.

DynamoDB capacity: moto's `ConsumedCapacity` is not size-based (a constant per request, and an empty
list for TransactWriteItems; this script asks for it and prints what came back), so request units are
computed from the items themselves, by DynamoDB's on-demand rules:

* a write costs 1 WRU per started KB of the larger of the item before and after it; in a transaction,
  2 WRU per KB; a global secondary index entry written or removed costs 1 WRU per started KB more
  (standard rate; gsi1 projects ALL attributes, so the entry is the item's size);
* a strongly consistent read costs 1 RRU per started 4 KB (GetItem: of the item, or 1 if there is
  none; Query: of all items read together); eventually consistent reads (every GSI query) half.

Item sizes follow DynamoDB's definition (attribute names plus values; numbers 1 byte per two
significant digits plus 1; maps and lists 3 bytes plus 1 per element).

    .venv/bin/python bench/aws_calls.py
"""

from __future__ import annotations

import contextlib
import gzip
import math
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from _support import (
    LAMBDA_ENVIRONMENT,
    ROOT,
    TEMPLATE_ENVIRONMENT,
    CallLog,
    count_calls_on_default_session,
    environment,
    table,
)

REGISTRATION_GOAL = 3
ROLLBACK_GOAL = 2  # sequential calls before the traffic flip
ENDPOINT = "churn-prod"
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
GSI_KEYS = ("gsi1pk", "gsi1sk")


# --- DynamoDB item sizes and request units ------------------------------------------------------------


def value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = Decimal(inner).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: member}) for member in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def kb_units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


@dataclass
class Capacity:
    wru: float = 0.0
    rru: float = 0.0
    moto_reported: list[Any] = field(default_factory=list)
    largest_item: int = 0

    def add_write(self, before: dict[str, Any] | None, after: dict[str, Any] | None, transactional: bool) -> None:
        size = max(item_size(before), item_size(after))
        self.largest_item = max(self.largest_item, size)
        self.wru += kb_units(size, 1024) * (2 if transactional else 1)
        had, has = (bool(image and all(k in image for k in GSI_KEYS)) for image in (before, after))
        moved = had and has and any(before[k] != after[k] for k in GSI_KEYS)  # type: ignore[index]
        if has:
            self.wru += kb_units(item_size(after), 1024)
        if had and (not has or moved):
            self.wru += kb_units(item_size(before), 1024)

    def add_read(self, items: list[dict[str, Any]], consistent: bool) -> None:
        units = kb_units(sum(item_size(item) for item in items), 4096)
        self.rru += units if consistent else units / 2


class CapacityMeter:
    """Hooks on the handlers' DynamoDB client: item images before and after each write, items read."""

    def __init__(self, probe: Any, table_name: str) -> None:
        self.probe = probe  # a client outside the default session: its reads are neither counted nor hooked
        self.table_name = table_name
        self.capacity = Capacity()
        self.recording = False
        self._pending: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = []
        self._params: dict[str, Any] = {}

    def install(self, session: Any) -> None:
        session.events.register("provide-client-params.dynamodb.*", self._ask_for_capacity)
        session.events.register("before-parameter-build.dynamodb.*", self._before)
        session.events.register("after-call.dynamodb.*", self._after)

    def _ask_for_capacity(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _image(self, key: dict[str, Any]) -> dict[str, Any] | None:
        found = self.probe.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        return found.get("Item")

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self.recording:
            return
        self._pending = []
        self._params = params
        if model.name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((_kind, body),) = entry.items()
                key = body["Key"] if "Key" in body else {k: body["Item"][k] for k in ("pk", "sk")}
                self._pending.append((key, self._image(key), True))
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            key = params["Key"] if "Key" in params else {k: params["Item"][k] for k in ("pk", "sk")}
            self._pending.append((key, self._image(key), False))

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if not self.recording:
            return
        params = self._params
        if "ConsumedCapacity" in parsed:
            self.capacity.moto_reported.append((model.name, parsed["ConsumedCapacity"]))
        if "Error" in parsed:  # a cancelled transaction or failed condition wrote nothing we count
            return
        for key, before, transactional in self._pending:
            self.capacity.add_write(before, self._image(key), transactional)
        self._pending = []
        if model.name == "GetItem":
            item = parsed.get("Item")
            self.capacity.add_read([item] if item else [], bool(params.get("ConsistentRead")))
        elif model.name == "Query":
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            self.capacity.add_read(parsed.get("Items", []), consistent)

    def measure(self) -> Capacity:
        self.capacity = Capacity()
        self.recording = True
        return self.capacity

    def stop(self) -> None:
        self.recording = False


# --- the world: what template.yaml builds, in moto ------------------------------------------------------


def template_resource(logical_id: str) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse((ROOT / "template.yaml").read_text())["Resources"][logical_id]["Properties"])


def build_world(client: Any) -> None:
    env = TEMPLATE_ENVIRONMENT
    s3 = client("s3")
    s3.create_bucket(Bucket=env["ARTIFACT_BUCKET_NAME"], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=env["ARTIFACT_BUCKET_NAME"], VersioningConfiguration={"Status": "Enabled"})
    properties = template_resource("RegistryTable")
    client("dynamodb").create_table(
        TableName=env["REGISTRY_TABLE_NAME"],
        BillingMode=properties["BillingMode"],
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )
    client("events").create_event_bus(Name=env["EVENT_BUS_NAME"])
    role = client("iam").create_role(RoleName="shepherd-sagemaker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    TEMPLATE_ENVIRONMENT["SAGEMAKER_EXECUTION_ROLE_ARN"] = role


def load(function: str) -> Any:
    from shepherd_cli.local.lambda_runtime import load_handler

    return load_handler(ROOT / "functions" / function / "app.py", f"{function}_app")


def lambda_context() -> Any:
    from shepherd_cli.local.lambda_runtime import LambdaContext

    return LambdaContext("bench", "arn:aws:lambda:eu-west-1:123456789012:function:bench")


def eventbridge(detail_type: str, source: str, detail: dict[str, Any], at: datetime) -> dict[str, Any]:
    from shepherd_cli.local.lambda_runtime import eventbridge_event

    return eventbridge_event(source, detail_type, detail, at)


class Lifecycle:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.handlers = {name: load(name) for name in ("register_version", "decide_approval", "start_rollout")}
        self.handlers["rollout_controller"] = load("rollout_controller")
        rollback = ROOT / "functions" / "rollback" / "app.py"
        self.handlers["rollback"] = load("rollback") if rollback.exists() else None

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.handlers[function].lambda_handler(event, lambda_context())

    def upload_event(self, run: int, manifest: bool = False) -> dict[str, Any]:
        bucket = TEMPLATE_ENVIRONMENT["ARTIFACT_BUCKET_NAME"]
        key = f"models/churn-predictor/run-{run}/model.tar.gz"
        s3 = self.client("s3")
        if manifest:
            s3.put_object(
                Bucket=bucket, Key=key.replace("model.tar.gz", "manifest.json"), Body=b'{"metrics": {"auc": 0.9}}'
            )
        version_id = s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(b"weights"), ChecksumAlgorithm="SHA256")[
            "VersionId"
        ]
        detail = {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 7, "etag": "e", "version-id": version_id, "sequencer": "00"},
            "request-id": "R",
            "requester": "123456789012",
            "source-ip-address": "203.0.113.15",
            "reason": "PutObject",
        }
        return eventbridge("Object Created", "aws.s3", detail, START)

    def approval(self, version: int) -> dict[str, Any]:
        detail = {
            "model_name": "churn-predictor",
            "version": version,
            "decision": "approved",
            "requested_by": "alice@example.com",
            "reason": "bench",
        }
        return eventbridge("Model Version Approval Requested", "acme.ml", detail, START)

    def promotion(self, version: int, strategy: dict[str, Any], at: datetime) -> dict[str, Any]:
        detail = {
            "model_name": "churn-predictor",
            "version": version,
            "endpoint_name": ENDPOINT,
            "strategy": strategy,
            "requested_by": "alice@example.com",
            "reason": "bench",
        }
        return eventbridge("Model Promotion Requested", "acme.ml", detail, at)

    def tick(self, at: datetime) -> dict[str, Any]:
        return dict(self.invoke("rollout_controller", eventbridge("Scheduled Event", "aws.events", {}, at)))

    def weights(self) -> dict[str, float]:
        described = self.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
        return {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}


# --- measuring ----------------------------------------------------------------------------------------


@dataclass
class Measured:
    operation: str
    calls: list[tuple[str, str]]
    capacity: Capacity | None = None
    note: str = ""

    def row(self) -> list[str]:
        counted = Counter(f"{service}:{name}" for service, name in self.calls)
        listing = ", ".join(f"{name}" + (f" x{n}" if n > 1 else "") for name, n in counted.items())
        return [self.operation, str(len(self.calls)), listing or "-"]


def run() -> tuple[list[Measured], list[Measured], list[Any]]:
    import boto3
    from moto import mock_aws

    from shepherd import bootstrap
    from shepherd_cli.local import emulator

    log = CallLog()
    results: list[Measured] = []
    steps: list[Measured] = []
    with (
        mock_aws(),
        environment(TEMPLATE_ENVIRONMENT | LAMBDA_ENVIRONMENT | {"POWERTOOLS_TRACE_DISABLED": "true"}),
        contextlib.ExitStack() as containers,
    ):
        emulator.install()
        emulator.reset()
        probe_session = boto3.session.Session(region_name="eu-west-1")
        build_world(probe_session.client)
        count_calls_on_default_session(log)
        meter = CapacityMeter(probe_session.client("dynamodb"), TEMPLATE_ENVIRONMENT["REGISTRY_TABLE_NAME"])
        meter.install(boto3._get_default_session())
        life = Lifecycle(probe_session.client)
        containers.enter_context(bootstrap.wired(bootstrap.Container()))

        def measure(operation: str, function: str, event: dict[str, Any], note: str = "") -> Any:
            capacity = meter.measure()
            with log.record() as calls:
                response = life.invoke(function, event)
            meter.stop()
            results.append(Measured(operation, [(s, n) for s, n, _ in calls], capacity, note))
            return response

        # Registration: a new container (no counter seen yet), then the same container again.
        measure("registration (new model, cold container)", "register_version", life.upload_event(1))
        measure("registration (warm container)", "register_version", life.upload_event(2, manifest=True))
        duplicate = life.upload_event(3)
        life.invoke("register_version", duplicate)
        measure("registration (duplicate delivery)", "register_version", duplicate)
        containers.enter_context(bootstrap.wired(bootstrap.Container()))  # a second one: it has not seen the counter
        measure("registration (existing model, cold container)", "register_version", life.upload_event(4))
        measure("approval", "decide_approval", life.approval(1))
        for version in (2, 3, 4):
            life.invoke("decide_approval", life.approval(version))

        # A first deployment of v1, so that v2 is a real canary with a live variant.
        life.invoke("start_rollout", life.promotion(1, {"type": "all_at_once"}, START))
        for minute in range(5):
            life.tick(START + timedelta(minutes=minute))
        at = START + timedelta(hours=1)
        measure(
            "controller tick, no active rollout",
            "rollout_controller",
            eventbridge("Scheduled Event", "aws.events", {}, at),
        )
        # The judge off here: this rollout shows the steps' own calls; a judged tick is measured below.
        canary = {
            "type": "canary",
            "canary_percent": 10,
            "bake_seconds": 300,
            "post_deploy_watch_seconds": 60,
            "analysis": {"judge": {"enabled": False}},
        }
        measure("promotion start (canary, endpoint live)", "start_rollout", life.promotion(2, canary, at))

        # Every controller tick of that rollout, one a minute, until it is done.
        for minute in range(0, 14):
            now = at + timedelta(minutes=minute)
            capacity = meter.measure()
            with log.record() as calls:
                result = life.tick(now)
            meter.stop()
            what = ", ".join(sorted(set(result["results"].values()))) or "no active rollout"
            shifts = [p for s, n, p in calls if n == "UpdateEndpointWeightsAndCapacities"]
            if shifts:
                what += (
                    " (weights "
                    + ", ".join(
                        f"{w['VariantName'][-2:]}={w['DesiredWeight']}"
                        for w in shifts[0]["DesiredWeightsAndCapacities"]
                    )
                    + ")"
                )
            steps.append(Measured(f"+{minute} min: {what}", [(s, n) for s, n, _ in calls], capacity))
            if not result["results"]:
                break

        # Rollback: v3 as a canary at 10%, then its error-rate alarm goes to ALARM.
        if life.handlers["rollback"] is not None:
            at = START + timedelta(hours=2)
            life.invoke("start_rollout", life.promotion(3, canary, at))
            for minute in range(2):
                life.tick(at + timedelta(minutes=minute))
            lock = probe_session.client("dynamodb").get_item(
                TableName=TEMPLATE_ENVIRONMENT["REGISTRY_TABLE_NAME"],
                Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "LOCK"}},
            )["Item"]["rollout_id"]["S"]
            import json

            alarm = json.loads((ROOT / "events" / "cloudwatch-alarm-state-change.eventbridge.json").read_text())
            alarm["id"] = str(uuid.uuid4())
            alarm["detail"]["alarmName"] = f"shepherd-bench--{ENDPOINT}-{lock}-error-rate"
            stamp = (at + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
            alarm["detail"]["state"]["timestamp"] = stamp
            measure("rollback (alarm during a canary at 10%)", "rollback", alarm)
            for minute in range(2, 8):  # v3's restore ends and frees the endpoint
                life.tick(at + timedelta(minutes=minute))
            measure("controller tick, judging a bake", "rollout_controller", judged_bake(life, canary))
        return results, steps, meter.capacity.moto_reported


def judged_bake(life: Any, canary: dict[str, Any]) -> dict[str, Any]:
    """v4 promoted as the same canary with the judge on, three minutes into its bake: the next tick."""
    at = START + timedelta(hours=3)
    judged = {key: value for key, value in canary.items() if key != "analysis"}
    life.invoke("start_rollout", life.promotion(4, judged, at))
    for minute in range(3):
        life.tick(at + timedelta(minutes=minute))
    return eventbridge("Scheduled Event", "aws.events", {}, at + timedelta(minutes=3))


def main() -> None:
    results, steps, _ = run()
    print("AWS calls per operation, through each handler (moto + Shepherd's SageMaker emulator)\n")
    print(table(["operation", "calls", "which (in order of first use)"], [m.row() for m in results]))

    [registration] = [m for m in results if m.operation == "registration (warm container)"]
    print(
        f"\nRegistration goal: at most {REGISTRATION_GOAL} calls including the announcement; measured "
        f"{len(registration.calls)} (warm) -> {'ok' if len(registration.calls) <= REGISTRATION_GOAL else 'MISSED'}"
    )
    rollback = [m for m in results if m.operation.startswith("rollback")]
    if rollback:
        calls = rollback[0].calls
        flip = next((i for i, (_s, n) in enumerate(calls) if n == "UpdateEndpointWeightsAndCapacities"), None)
        before = calls[:flip] if flip is not None else calls
        verdict = "ok" if len(before) <= ROLLBACK_GOAL else "MISSED"
        print(
            f"Rollback goal: at most {ROLLBACK_GOAL} sequential calls before the traffic flip; measured "
            f"{len(before)} ({', '.join(n for _s, n in before)}) -> {verdict}"
        )
    else:
        print("Rollback: functions/rollback/app.py not present - not measured (placeholder).")

    print("\nA canary rollout (10% for 300 s, then 100%, 60 s watch), one controller tick a minute\n")
    print(table(["tick", "calls", "which"], [m.row() for m in steps]))

    print("\nDynamoDB request units, computed from item sizes (on-demand; see the module docstring)\n")
    rows = []
    for m in [*results, *steps]:
        if m.capacity is not None and (m.capacity.wru or m.capacity.rru):
            rows.append([m.operation, f"{m.capacity.wru:g}", f"{m.capacity.rru:g}", m.capacity.largest_item])
    print(table(["operation", "WRU", "RRU", "largest item written (bytes)"], rows))
    reported = sorted(
        {(name, repr(value)) for m in [*results, *steps] if m.capacity for name, value in m.capacity.moto_reported}
    )
    print("\nWhat moto returned for ReturnConsumedCapacity=TOTAL (not size-based, so not used above):")
    for name, value in reported[:8]:
        print(f"  {name}: {value}")


if __name__ == "__main__":
    main()
