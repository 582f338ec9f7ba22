"""DynamoDB's saved part: every item of every table (the registry, the rollouts, the audit trail).

Items are kept in DynamoDB's JSON (`{"S": ...}`, `{"N": "12"}`, binary as base64, as the API writes
it) and put back with the table's own `put_item`. Tables come from the template, deployed again before
the restore; items of a table it no longer creates are refused rather than dropped in silence.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Literal

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from pydantic import JsonValue, field_validator

from shepherd_cli.local.saved.document import Document, Saved, UnreadableState


class SavedTable(Saved):
    name: str
    items: list[dict[str, JsonValue]]

    @field_validator("items")
    @classmethod
    def _attribute_values(cls, items: list[dict[str, JsonValue]]) -> list[dict[str, JsonValue]]:
        for item in items:
            for value in item.values():
                _check_attribute_value(value)
        return items


def _check_attribute_value(value: JsonValue) -> None:
    """One DynamoDB attribute value: a one-key object naming its type (maps and lists checked within)."""
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in SHAPES:
        raise ValueError(f"not a DynamoDB attribute value: {str(value)[:80]}")
    kind, inner = next(iter(value.items()))
    if not SHAPES[kind](inner):
        raise ValueError(f"a {kind} attribute cannot hold {str(inner)[:80]}")
    members = inner.values() if isinstance(inner, dict) else inner if isinstance(inner, list) else []
    for member in members if kind in ("M", "L") else []:
        _check_attribute_value(member)


def _strings(inner: JsonValue) -> bool:
    return isinstance(inner, list) and all(isinstance(member, str) for member in inner)


SHAPES: dict[str, Callable[[JsonValue], bool]] = {
    "S": lambda inner: isinstance(inner, str),
    "N": lambda inner: isinstance(inner, str),
    "B": lambda inner: isinstance(inner, str),  # base64
    "SS": _strings,
    "NS": _strings,
    "BS": _strings,
    "M": lambda inner: isinstance(inner, dict),
    "L": lambda inner: isinstance(inner, list),
    "BOOL": lambda inner: isinstance(inner, bool),
    "NULL": lambda inner: inner is True,
}


class Region(Saved):
    account: str
    region: str
    tables: list[SavedTable]


class DynamoDBDocument(Document):
    service: Literal["dynamodb"] = "dynamodb"
    regions: list[Region]


def capture() -> DynamoDBDocument:
    regions = []
    for account, by_region in dynamodb_backends.items():
        for region, backend in by_region.items():
            tables = [
                SavedTable(name=name, items=[_item(item.attrs) for item in table.all_items()])
                for name, table in list(backend.tables.items())
            ]
            if tables:
                regions.append(Region(account=account, region=region, tables=tables))
    return DynamoDBDocument(regions=regions)


def apply(document: DynamoDBDocument) -> None:
    # Every table is checked before any item is put: a refused state leaves the tables as deployed.
    tables = [
        (_table(saved.account, saved.region, table.name), table) for saved in document.regions for table in saved.tables
    ]
    for table, saved_table in tables:
        for item in saved_table.items:
            table.put_item({name: _value(value) for name, value in item.items()})


def _table(account: str, region: str, name: str) -> Any:
    table = dynamodb_backends[account][region].tables.get(name)
    if table is None:
        raise UnreadableState(
            f"the saved state has items of table {name}, which the template no longer creates; "
            "`shepherd local up --fresh` starts empty"
        )
    return table


def _item(attributes: dict[str, DynamoType]) -> dict[str, JsonValue]:
    return {name: _json(value) for name, value in attributes.items()}


def _json(value: DynamoType) -> JsonValue:
    """One attribute value as DynamoDB's JSON (moto holds binaries as bytes, nested values as DynamoType)."""
    if value.type == "M":
        return {"M": _item(value.value)}
    if value.type == "L":
        return {"L": [_json(member) for member in value.value]}
    if value.type == "B":
        return {"B": _base64(value.value)}
    if value.type == "BS":
        return {"BS": [_base64(member) for member in value.value]}
    return {value.type: value.value}


def _base64(binary: bytes | str) -> str:
    return base64.b64encode(binary if isinstance(binary, bytes) else binary.encode()).decode()


def _value(saved: JsonValue) -> dict[str, Any]:
    """The inverse of `_json`, in the form moto's `put_item` stores (binaries as bytes)."""
    assert isinstance(saved, dict)  # checked by SavedTable
    kind, inner = next(iter(saved.items()))
    if kind == "M":
        assert isinstance(inner, dict)
        return {"M": {name: _value(member) for name, member in inner.items()}}
    if kind == "L":
        assert isinstance(inner, list)
        return {"L": [_value(member) for member in inner]}
    if kind == "B":
        return {"B": base64.b64decode(str(inner), validate=True)}
    if kind == "BS":
        assert isinstance(inner, list)
        return {"BS": [base64.b64decode(str(member), validate=True) for member in inner]}
    return {kind: inner}
