"""Shared set-up for the benchmarks: paths, the functions' environment, tables, and counting AWS calls.

Benchmarks print numbers; they are never run by `make test`. Each is run on its own:
`.venv/bin/python bench/<name>.py`.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "shepherd"
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))
for folder in (ROOT, LAYER, ROOT / "cli"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# The bootstrap builder each handler calls first: what its cold start wires before handling an event.
SERVICE_OF = {
    "decide_approval": "approval_service",
    "register_version": "registration_service",
    "rollback": "rollback_service",
    "rollout_controller": "rollout_service",
    "start_rollout": "promotion_service",
}

# What template.yaml's Globals give every function (prod values), plus what Lambda itself sets.
TEMPLATE_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "shepherd",
    "POWERTOOLS_METRICS_NAMESPACE": "Shepherd",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "LOG_LEVEL": "INFO",
    "REGISTRY_TABLE_NAME": "shepherd-registry",
    "EVENT_BUS_NAME": "shepherd-bench",
    "ARTIFACT_BUCKET_NAME": "acme-model-artifacts",
    "REQUIRE_APPROVAL": "true",
    "DEFAULT_INFERENCE_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve@sha256:" + "5e" * 32,
    "ALLOWED_IMAGE_REGISTRIES": "",
    "REQUIRE_IMAGE_DIGEST": "true",
    "NETWORK_ISOLATION": "true",
    "STACK_ACCOUNT_ID": "123456789012",
    "STACK_REGION": "eu-west-1",
    "SAGEMAKER_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/shepherd-sagemaker",
    "SHEPHERD_NAMESPACE": "shepherd-bench",
    "SHEPHERD_STACK_NAME": "shepherd-bench",
    "ALLOWED_INSTANCE_TYPES": "ml.m5.large,ml.c5.xlarge",
    "MAX_INSTANCE_COUNT": "10",
    "CONTROLLER_CONCURRENCY": "16",
    "INSTANCE_PRICE_TABLE": "",
}
LAMBDA_ENVIRONMENT = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "LAMBDA_TASK_ROOT": "/var/task",  # Powertools' Tracer is active only when this is set, as in Lambda
}


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 1,000 values is the 990th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pasteable into the README), columns padded for the terminal."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def environment(values: dict[str, str]) -> Any:
    """The function's environment while the block runs (local mode's own helper)."""
    from shepherd_cli.local.lambda_runtime import swapped_environment

    return swapped_environment(values)


# --- counting AWS calls -----------------------------------------------------------------------------


@dataclass
class CallLog:
    """Every AWS call the handlers' clients make while `recording`, in order: (service, operation, params).

    Hooked on `before-parameter-build`, which botocore emits once per API call (before any retry) with
    the call's parameters; `before-call` would see the serialised request instead.
    """

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    recording: bool = False

    def on_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if self.recording:
            self.calls.append((model.service_model.service_id.hyphenize(), model.name, params))

    @contextmanager
    def record(self) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
        self.calls = []
        self.recording = True
        try:
            yield self.calls
        finally:
            self.recording = False


def count_calls_on_default_session(log: CallLog) -> None:
    """Hook boto3's default session: clients built from it afterwards (shepherd.bootstrap.client's) are
    counted. A client copies its session's event handlers when it is created."""
    import boto3

    session = boto3._get_default_session()
    session.events.register("before-parameter-build.*.*", log.on_call)


# --- the emulator, made fast enough for a burst ----------------------------------------------------------


def snapshot_only_touched_items_in_moto_transactions() -> None:
    """moto 5.2.5 deep-copies a whole table for every item of a TransactWriteItems (to roll back on
    failure): O(table size) per request, under the atomic_dynamodb lock. A 1,000-registration burst
    would then take hours. This replaces those copies with copies of the items the transaction touches,
    restored if the transaction fails: the same all-or-nothing semantics, at O(items touched).
    Benchmark processes only; tests and local mode keep moto as it is.
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _CopyWithoutWholeTables:
        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = _CopyWithoutWholeTables()  # type: ignore[assignment]
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        touched = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            key = op.get("Key") or op.get("Item") or {}
            if table is None or table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            if table.has_range_key and range_value is None:
                continue
            touched.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(touched):
                holder = table.items[hash_value] if range_value is not None else table.items
                slot = range_value if range_value is not None else hash_value
                if before is None:
                    holder.pop(slot, None)
                else:
                    holder[slot] = before
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def query_only_what_is_asked_in_moto() -> None:
    """moto 5.2.5 answers every DynamoDB Query by sorting the whole table (`Table.all_items`, comparing
    `DynamoType`s) and then filtering it, and every S3 ListObjectVersions by deep-copying every version of
    every key in the bucket before filtering by prefix: O(table) and O(bucket) per request. With one query
    per rollout in a tick (its outbox) and one listing per registration, 1,000 endpoints cost the emulator
    minutes a tick and hours to set up. This hands moto only the candidates it would have kept: the one
    partition a table query names (all items, unsorted, for an index query: moto sorts its matches
    itself), the keys under the listing's prefix. Same answers, in the same order, at O(what is asked).
    Benchmark processes only; tests and local mode keep moto as it is.
    """
    from moto.dynamodb.models.table import Table
    from moto.s3.models import S3Backend
    from moto.s3.utils import _VersionedKeyStore

    class _Only:
        """The table or bucket, with only the given items or keys; everything else is the original's."""

        def __init__(self, original: Any, **only: Any) -> None:
            self._original = original
            self.__dict__.update(only)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._original, name)

    table_query = Table.query

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's backend passes the index name as the eighth argument (after projection_expressions)
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            items = [item for partition in self.items.values() for item in _items_of(self, partition)]
        else:
            items = _items_of(self, self.items.get(hash_key))
        return table_query(_Only(self, all_items=lambda: items), hash_key, *args, **kwargs)  # type: ignore[arg-type]

    def _items_of(table: Table, partition: Any) -> list[Any]:
        if partition is None:
            return []
        return list(partition.values()) if table.range_key_attr else [partition]

    list_versions = S3Backend.list_object_versions

    def list_object_versions(self: S3Backend, bucket_name: str, **kwargs: Any) -> Any:
        # moto's S3 responses pass everything but the bucket by keyword
        prefix = kwargs.get("prefix") or ""
        bucket = self.get_bucket(bucket_name)
        keys = _VersionedKeyStore()
        for name, versions in bucket.keys.iterlists():
            if name.startswith(prefix):
                keys.setlist(name, versions)
        backend = _Only(self, get_bucket=lambda _name: _Only(bucket, keys=keys))
        return list_versions(backend, bucket_name, **kwargs)  # type: ignore[arg-type]

    Table.query = query  # type: ignore[method-assign]
    S3Backend.list_object_versions = list_object_versions  # type: ignore[method-assign,assignment]
