"""Parsing at the edge: raw Lambda events into typed domain inputs, one module per function.

An event that does not parse raises `ValueError` (pydantic's `ValidationError` is one): the invocation
fails, so Lambda's retries and the dead-letter queue keep it. A command whose envelope is sound but whose
detail breaks its contract raises `MalformedCommand` instead, which the handler answers with
`Command Refused` (`inbound/refusal.py`).

Each handler imports its own module (`shepherd.inbound.uploads`, ...), so a cold start pays only for
the parser it uses. The names below stay importable from `shepherd.inbound`, loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shepherd.inbound.approval import parse_approval
    from shepherd.inbound.promotion import parse_promotion
    from shepherd.inbound.resume import parse_resume
    from shepherd.inbound.rollback import parse_rollback_trigger
    from shepherd.inbound.tick import parse_tick
    from shepherd.inbound.uploads import parse_uploads

_MODULE_OF = {
    "parse_uploads": "uploads",
    "parse_approval": "approval",
    "parse_promotion": "promotion",
    "parse_tick": "tick",
    "parse_rollback_trigger": "rollback",
    "parse_resume": "resume",
}
__all__ = ["parse_approval", "parse_promotion", "parse_resume", "parse_rollback_trigger", "parse_tick", "parse_uploads"]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
