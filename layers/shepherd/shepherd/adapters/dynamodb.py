"""The registry table: key layout (docs/design.md) and the conditional writes that make it safe."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from msgspec import Struct
from pydantic import BaseModel

from shepherd.adapters.aws_errors import error_code, raise_transient_or_reraise
from shepherd.registry.errors import ArtifactAlreadyRegistered, ConflictError, TransientError, VersionNumberTaken
from shepherd.registry.model import (
    ApprovedArtifact,
    ArtifactRef,
    AuditEntry,
    ModelSummary,
    ModelVersion,
    Rejection,
    VersionStatus,
)
from shepherd.registry.ports import Page

M = TypeVar("M", bound=BaseModel)
KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk", "expires_at")
REJECTIONS_INDEX = "REJECTIONS"  # gsi1 partition of rejected uploads
# A registration that loses a race is decided again at once by the domain, after a little jitter here
# (long exponential sleeps starve the unlucky ones while newcomers win).
BATCH_GET_KEYS = 100  # the most one BatchGetItem reads
BATCH_GET_ATTEMPTS = 8  # asks for unprocessed keys again, backing off, before giving up
RETRYABLE_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def model_pk(model_name: str) -> str:
    return f"MODEL#{model_name}"


def version_sk(version: int) -> str:
    return f"VERSION#{version:010d}"


def artifact_pk(artifact: ArtifactRef | tuple[str, str]) -> str:
    bucket, key = (artifact.bucket, artifact.key) if isinstance(artifact, ArtifactRef) else artifact
    return f"ARTIFACT#s3://{bucket}/{key}"


def audit_key(scope: str, at: datetime, event_id: str, what: str) -> dict[str, str]:
    """Time-ordered within the scope; `what` keeps two entries of one event at one instant apart."""
    return {"pk": f"AUDIT#{scope}", "sk": f"{at.isoformat(timespec='milliseconds')}#{event_id}#{what}"}


def model_audit_item(entry: AuditEntry) -> dict[str, Any]:
    what = f"v{entry.version}#{entry.to_status.value}"  # one event may move two versions, or one twice
    return item_of(entry, **audit_key(f"MODEL#{entry.model_name}", entry.at, entry.event_id, what))


class DynamoTable:
    """Plumbing shared by the table's adapters: typed items, pagination, failure translation."""

    def __init__(self, client: Any, table_name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._call("get_item", Key=key_of(pk, sk), ConsistentRead=True)
        return deserialize(response["Item"]) if "Item" in response else None

    def _get_many(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """The items at `keys` that exist, in the order asked, read consistently 100 a BatchGetItem.

        Keys DynamoDB leaves unprocessed (throttling) are asked for again after a jittered backoff; any
        still left after that are a TransientError (the caller's invocation is retried)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))  # a request may not name a key twice
        for start in range(0, len(unique), BATCH_GET_KEYS):
            pending = [key_of(pk, sk) for pk, sk in unique[start : start + BATCH_GET_KEYS]]
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self._call(
                    "batch_get_item", RequestItems={self._table: {"Keys": pending, "ConsistentRead": True}}
                )
                for item in map(deserialize, response.get("Responses", {}).get(self._table, [])):
                    found[(item["pk"], item["sk"])] = item
                pending = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if not pending:
                    break
                self._sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))  # noqa: S311 - jitter
            else:
                raise TransientError(f"BatchGetItem left {len(pending)} keys unprocessed")
        return [found[key] for key in unique if key in found]

    def _query(self, cursor: str | None, limit: int, **params: Any) -> tuple[list[dict[str, Any]], str | None]:
        if cursor:
            params["ExclusiveStartKey"] = _decode_cursor(cursor)
        response = self._call("query", Limit=limit, **params)
        last_key = response.get("LastEvaluatedKey")
        items = [deserialize(item) for item in response.get("Items", [])]
        return items, _encode_cursor(last_key) if last_key else None

    def _query_all(self, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page, cursor = self._query(cursor, 500, **params)
            items.extend(page)
            if cursor is None:
                return items

    def _transact(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            next(iter(item.values()))["TableName"] = self._table
        self._call("transact_write_items", TransactItems=items)

    def _call(self, operation: str, **params: Any) -> Any:
        if operation not in ("transact_write_items", "batch_get_item"):  # these name the table per item
            params["TableName"] = self._table
        try:
            return getattr(self._client, operation)(**params)
        except ClientError as error:
            if error_code(error) in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise  # the caller decides what a lost condition means
            raise_transient_or_reraise(error)


class DynamoRegistry(DynamoTable):
    """Implements `shepherd.registry.ports.Registry` on one DynamoDB table."""

    def __init__(self, client: Any, table_name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(client, table_name, sleep)
        # The last counter this container saw per model: the first guess of the next registration,
        # so a warm container usually registers with one transaction and no read.
        self._latest_seen: dict[str, int] = {}

    # --- writes ---------------------------------------------------------------------------------

    def latest_version(self, model_name: str, fresh: bool) -> int:
        if not fresh:
            # A guess, no read: a new model registers with one transaction; a stale guess costs one
            # cancelled transaction, whose reasons carry the current counter.
            return self._latest_seen.get(model_name, 0)
        return self._read_counter(model_name)

    def add_version(self, version: ModelVersion, audit: AuditEntry, expected_latest: int) -> None:
        items = self._registration_items(version, audit, expected_latest)
        try:
            self._transact(list(items.values()))
        except self._client.exceptions.TransactionCanceledException as cancelled:
            reasons = cancellation_reasons(cancelled, tuple(items))
            if reasons["claim"].lost:
                raise ArtifactAlreadyRegistered(self._registered_by_claim(reasons["claim"].item)) from cancelled
            if reasons["counter"].lost or reasons["version"].lost:
                counter = reasons["counter"].item
                latest = _counter(counter) if counter else self._read_counter(version.model_name)
                self._sleep(_jitter())
                raise VersionNumberTaken(version.model_name, latest) from cancelled
            if any(reason.code in RETRYABLE_CANCELLATIONS for reason in reasons.values()):
                self._sleep(_jitter())
                raise VersionNumberTaken(version.model_name, None) from cancelled
            raise
        self._latest_seen[version.model_name] = version.version

    def _registration_items(self, version: ModelVersion, audit: AuditEntry, current: int) -> dict[str, dict[str, Any]]:
        """The registration transaction's items, by name (cancellation reasons are read by these names)."""
        artifact = version.artifact
        counter_condition = "attribute_not_exists(pk)" if current == 0 else "latest_version = :current"
        values: dict[str, Any] = {
            ":next": version.version,
            ":name": version.model_name,
            ":models": "MODELS",
            ":now": version.created_at.isoformat(),
        }
        if current:
            values[":current"] = current
        return {
            "counter": {
                "Update": {
                    "Key": key_of(model_pk(version.model_name), "MODEL"),
                    "UpdateExpression": "SET latest_version = :next, model_name = :name, gsi1pk = :models, "
                    "gsi1sk = :name, updated_at = :now, created_at = if_not_exists(created_at, :now)",
                    "ConditionExpression": counter_condition,
                    "ExpressionAttributeValues": serialize_values(values),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            "version": put_new(item_of(version, pk=model_pk(version.model_name), sk=version_sk(version.version))),
            "claim": put_new(
                {
                    "pk": artifact_pk(artifact),
                    "sk": f"CLAIM#{artifact.s3_version_id}",
                    "model_name": version.model_name,
                    "version": version.version,
                },
                return_old=True,
            ),
            "audit": put_new(model_audit_item(audit)),
        }

    def _registered_by_claim(self, claim: Mapping[str, Any] | None) -> ModelVersion:
        if not claim:
            raise ConflictError("artifact claim exists but was not returned")
        found = self.get_version(str(claim["model_name"]), int(claim["version"]))
        if found is None:
            raise ConflictError(f"claimed version {claim['model_name']} v{claim['version']} is missing")
        return found

    def _read_counter(self, model_name: str) -> int:
        item = self._get(model_pk(model_name), "MODEL")
        return _counter(item) if item else 0

    def record_rejection(self, rejection: Rejection) -> None:
        item = item_of(
            rejection,
            pk=artifact_pk(rejection.artifact),
            sk=f"REJECTION#{rejection.artifact.s3_version_id}",
            # Listed newest first by `list_rejections` (a Query on gsi1, never a Scan).
            gsi1pk=REJECTIONS_INDEX,
            gsi1sk=f"{rejection.rejected_at.isoformat()}#{rejection.artifact.s3_version_id}",
        )
        try:
            self._call("put_item", Item=serialize(item), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            # Already recorded by an earlier delivery: the first reason stands.

    def transition(
        self,
        model_name: str,
        version: int,
        expected: VersionStatus,
        audit: AuditEntry,
        changes: Mapping[str, Any],
    ) -> None:
        try:
            self._transact(status_change_items(audit, (expected,), changes))
        except self._client.exceptions.TransactionCanceledException as cancelled:
            if "ConditionalCheckFailed" in cancellation_codes(cancelled):
                raise ConflictError(f"{model_name} v{version} is no longer {expected.value}") from cancelled
            raise TransientError(f"transition of {model_name} v{version} cancelled") from cancelled

    def record_approved_artifact(self, model_name: str, version: int, approved: ApprovedArtifact) -> ModelVersion:
        try:
            response = self._call(
                "update_item",
                Key=key_of(model_pk(model_name), version_sk(version)),
                UpdateExpression="SET approved_artifact = :approved",
                # A version written before any copy holds the attribute as NULL (or not at all).
                ConditionExpression=(
                    "attribute_exists(pk) AND "
                    "(attribute_not_exists(approved_artifact) OR attribute_type(approved_artifact, :null))"
                ),
                ExpressionAttributeValues=serialize_values({":approved": item_of(approved), ":null": "NULL"}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            stored = self.get_version(model_name, version)  # a concurrent promotion recorded its copy first
            if stored is None:
                raise ConflictError(f"{model_name} v{version} does not exist") from error
            return stored
        return model_of(deserialize(response["Attributes"]), ModelVersion)

    # --- reads ----------------------------------------------------------------------------------

    def get_version(self, model_name: str, version: int) -> ModelVersion | None:
        item = self._get(model_pk(model_name), version_sk(version))
        return model_of(item, ModelVersion) if item else None

    def find_registration(self, artifact: ArtifactRef) -> ModelVersion | None:
        claim = self._get(artifact_pk(artifact), f"CLAIM#{artifact.s3_version_id}")
        return self._registered_by_claim(claim) if claim else None

    def list_models(self, limit: int, cursor: str | None) -> Page[ModelSummary]:
        items, next_cursor = self._query(
            cursor,
            limit,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :models",
            ExpressionAttributeValues=serialize_values({":models": "MODELS"}),
        )
        summaries = [
            ModelSummary(
                model_name=item["model_name"],
                latest_version=int(item["latest_version"]),
                created_at=item["created_at"],
                updated_at=item["updated_at"],
            )
            for item in items
        ]
        return Page(summaries, next_cursor)

    def list_versions(self, model_name: str, limit: int, cursor: str | None) -> Page[ModelVersion]:
        items, next_cursor = self._query(
            cursor,
            limit,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialize_values({":pk": model_pk(model_name), ":prefix": "VERSION#"}),
            ScanIndexForward=False,
        )
        return Page([model_of(item, ModelVersion) for item in items], next_cursor)

    def get_rejection(self, bucket: str, key: str) -> Rejection | None:
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialize_values({":pk": artifact_pk((bucket, key)), ":prefix": "REJECTION#"}),
        )
        rejections = [model_of(item, Rejection) for item in items]
        return max(rejections, key=lambda rejection: rejection.rejected_at, default=None)

    def list_rejections(self, model_name: str | None, limit: int) -> list[Rejection]:
        """Rejected uploads, newest first (of one model, when given)."""
        params: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :rejections",
            "ScanIndexForward": False,
        }
        values: dict[str, Any] = {":rejections": REJECTIONS_INDEX}
        if model_name is not None:
            params["FilterExpression"] = "model_name = :model"
            values[":model"] = model_name
        found: list[Rejection] = []
        cursor = None
        while len(found) < limit:
            items, cursor = self._query(cursor, limit, ExpressionAttributeValues=serialize_values(values), **params)
            found.extend(model_of(item, Rejection) for item in items)
            if cursor is None:
                break
        return found[:limit]

    def model_audit_trail(self, model_name: str) -> list[AuditEntry]:
        items = self._query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=serialize_values({":pk": f"AUDIT#MODEL#{model_name}"}),
        )
        return [model_of(item, AuditEntry) for item in items]


def _jitter() -> float:
    return random.uniform(0, 0.01)  # noqa: S311 - jitter, not cryptography


def status_change_items(
    audit: AuditEntry, expected: tuple[VersionStatus, ...], changes: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A version's status change (only from one of `expected`) and its audit entry, for one transaction."""
    names = {"#status": "status"}
    values: dict[str, Any] = {":to": audit.to_status.value}
    for index, status in enumerate(expected):
        values[f":e{index}"] = status.value
    assignments = ["#status = :to"]
    for index, (field, value) in enumerate(changes.items()):
        names[f"#f{index}"] = field
        values[f":v{index}"] = value
        assignments.append(f"#f{index} = :v{index}")
    allowed = ", ".join(f":e{index}" for index in range(len(expected)))
    update = {
        "Update": {
            "Key": key_of(model_pk(audit.model_name), version_sk(audit.version)),
            "UpdateExpression": "SET " + ", ".join(assignments),
            "ConditionExpression": f"attribute_exists(pk) AND #status IN ({allowed})",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize_values(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    return [update, put_new(model_audit_item(audit))]


def put_new(item: dict[str, Any], return_old: bool = False) -> dict[str, Any]:
    put: dict[str, Any] = {"Item": serialize(item), "ConditionExpression": "attribute_not_exists(pk)"}
    if return_old:
        put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Put": put}


class CancellationReason(Struct, frozen=True):
    """Why DynamoDB cancelled one item of a transaction, and the item as it was (if asked for)."""

    code: str  # "None" for an item that did not cause the cancellation
    item: dict[str, Any] | None

    @property
    def lost(self) -> bool:
        return self.code == "ConditionalCheckFailed"


def cancellation_reasons(cancelled: ClientError, names: Sequence[str]) -> dict[str, CancellationReason]:
    """The reasons of a cancelled transaction by the names of its items (DynamoDB returns one reason
    per item, in the order the items were sent)."""
    reasons = cancelled.response.get("CancellationReasons", [])
    if len(reasons) != len(names):
        raise cancelled  # not the transaction we sent: nothing here can be read safely
    return {
        name: CancellationReason(
            str(reason.get("Code", "None")), deserialize(reason["Item"]) if "Item" in reason else None
        )
        for name, reason in zip(names, reasons, strict=True)
    }


def cancellation_codes(cancelled: ClientError) -> list[str]:
    return [str(reason.get("Code", "None")) for reason in cancelled.response.get("CancellationReasons", [])]


def cancellation_items(cancelled: ClientError, *positions: int) -> list[dict[str, Any] | None]:
    """The items DynamoDB returned (ReturnValuesOnConditionCheckFailure) for the given transaction items."""
    reasons = cancelled.response.get("CancellationReasons", [])
    return [
        deserialize(reasons[at]["Item"]) if at < len(reasons) and "Item" in reasons[at] else None for at in positions
    ]


def _counter(item: Mapping[str, Any]) -> int:
    return int(item.get("latest_version", 0))


def key_of(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item_of(record: BaseModel, **keys: str) -> dict[str, Any]:
    # JSON mode turns datetimes into ISO strings and enums into values; floats become Decimals.
    return {**json.loads(record.model_dump_json(), parse_float=Decimal), **keys}


def model_of(item: Mapping[str, Any], model: type[M]) -> M:
    fields = {name: value for name, value in item.items() if name not in KEY_ATTRIBUTES}
    return model.model_validate(json.loads(json.dumps(fields, default=_from_decimal)))


def _from_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def serialize_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _encode_cursor(last_key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode()


def _decode_cursor(cursor: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(cursor.encode())))
