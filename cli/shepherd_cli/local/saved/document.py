"""What every saved document shares: its format and version, strict validation, and the refusal.

A saved document is data, never code: it is parsed as JSON into the models below (every field typed,
no unknown field accepted) and only then written into moto's backends through their own methods. A file
that does not validate is refused as a whole, before anything is restored from it.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shepherd_cli.errors import CliError

FORMAT: Literal["shepherd-local-state"] = "shepherd-local-state"
VERSION: Literal[1] = 1
START_EMPTY = "`shepherd local up --fresh` starts empty (and saves the new format at the next stop)"


class UnreadableState(CliError):
    """A saved state this shepherd cannot or will not restore."""


class Saved(BaseModel):
    """A part of a saved document: exactly these fields, of exactly these types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Document(Saved):
    """The envelope of one service's document."""

    format: Literal["shepherd-local-state"] = FORMAT
    version: Literal[1] = VERSION
    service: str


DocumentType = TypeVar("DocumentType", bound=Document)


def dump(document: Document) -> bytes:
    return document.model_dump_json(exclude_none=False).encode()


def load(kind: type[DocumentType], data: bytes, source: str) -> DocumentType:
    """`data` as a `kind` document, or UnreadableState saying why (another format or version first:
    that message tells what to do)."""
    try:
        envelope: Any = json.loads(data)
    except ValueError as error:
        raise UnreadableState(f"refusing {source}: not JSON ({error}); {START_EMPTY}") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise UnreadableState(f"refusing {source}: not a saved shepherd local state; {START_EMPTY}")
    if envelope.get("version") != VERSION:
        raise UnreadableState(
            f"refusing {source}: written by another version of shepherd (state format "
            f"{envelope.get('version')!r}, this one reads {VERSION}); {START_EMPTY}"
        )
    try:
        return kind.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UnreadableState(
            f"refusing {source}: {first['msg']} at {where} ({error.error_count()} problem(s)); {START_EMPTY}"
        ) from None
