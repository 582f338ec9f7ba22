"""IAM's evaluation of one request against identity policies: an explicit Deny wins, then any Allow.

Hand-written because no maintained Python library evaluates a request context against policies with
conditions (see docs/design.md, "IAM"): iam-ape and policyglass compute effective permissions with
the conditions kept as text, and moto's IAM enforcement ignores Resource outside S3 and every
Condition. It covers what Shepherd's policies use and refuses anything else loudly:

- Action/NotAction with `*` and `?` (case-insensitive), Resource/NotResource with them (ARNs are
  compared case-sensitively, as IAM does);
- the condition operators String*, Arn*, Bool, Null, with `IfExists`, and the set qualifiers
  `ForAllValues:`/`ForAnyValue:` over multivalued keys; a key absent from the request fails a
  positive operator, passes a negated one (IAM's rule since 2022) and passes `ForAllValues`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import msgspec

ContextValue = str | bool | tuple[str, ...]


class Request(msgspec.Struct, frozen=True):
    """One authorisation IAM makes for a call: a call may need several (a transaction, a PassRole)."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = {}


class Statement(msgspec.Struct, frozen=True):
    """A statement with its intrinsics resolved; `grant` names it in reports (policy and Sid)."""

    grant: str
    effect: str
    actions: tuple[str, ...]
    not_actions: bool
    resources: tuple[str, ...]
    not_resources: bool
    condition: Mapping[str, Mapping[str, tuple[str, ...]]]


class Decision(msgspec.Struct, frozen=True):
    allowed: bool
    # Each Allow statement that matched, with the action pattern of it that matched: what is used.
    allowed_by: tuple[tuple[str, str], ...]
    denied_by: tuple[str, ...]


class UnsupportedPolicy(Exception):
    """A policy uses what this evaluator does not implement: it must not be guessed at."""


def as_tuple(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in values)


def statement(grant: str, document: Mapping[str, Any]) -> Statement:
    """A policy statement (JSON shape, intrinsics resolved) as a Statement."""
    unknown = set(document) - {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
    if unknown or "Principal" in document:
        raise UnsupportedPolicy(f"{grant}: {sorted(unknown)}")
    condition = {
        operator: {key: as_tuple(values) for key, values in keys.items()}
        for operator, keys in document.get("Condition", {}).items()
    }
    return Statement(
        grant=grant,
        effect=document["Effect"],
        actions=as_tuple(document.get("Action", document.get("NotAction"))),
        not_actions="NotAction" in document,
        resources=as_tuple(document.get("Resource", document.get("NotResource"))),
        not_resources="NotResource" in document,
        condition=condition,
    )


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM's wildcards: `*` any run of characters (`/` and `:` too), `?` one character.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).match(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    # ArnLike compares the six colon-separated parts one by one (the resource part keeps its colons).
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    return len(pattern_parts) == len(value_parts) == 6 and all(
        like(p, v) for p, v in zip(pattern_parts, value_parts, strict=True)
    )


MATCHERS = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": like,
    "ArnEquals": _arn_like,  # IAM treats ArnEquals as ArnLike
    "ArnLike": _arn_like,
    "Bool": lambda p, v: p.lower() == v.lower(),
}
NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _one_value(base: str, policy_values: Sequence[str], value: str) -> bool:
    negated = base in NEGATIONS
    matcher = MATCHERS.get(NEGATIONS.get(base, base))
    if matcher is None:
        raise UnsupportedPolicy(f"condition operator {base}")
    matched = any(matcher(p, value) for p in policy_values)
    return not matched if negated else matched


def condition_holds(operator: str, key: str, policy_values: Sequence[str], context: Mapping[str, ContextValue]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    present = key in context
    if base == "Null":
        return (policy_values[0] == "true") != present
    if not present:
        if qualifier == "ForAllValues" or if_exists:
            return True
        return qualifier == "" and base in NEGATIONS
    raw = context[key]
    values = raw if isinstance(raw, tuple) else (str(raw).lower() if isinstance(raw, bool) else raw,)
    if qualifier == "ForAllValues":
        return all(_one_value(base, policy_values, v) for v in values)
    if qualifier == "ForAnyValue":
        return any(_one_value(base, policy_values, v) for v in values)
    if qualifier:
        raise UnsupportedPolicy(f"condition qualifier {qualifier}")
    if isinstance(raw, tuple):
        raise UnsupportedPolicy(f"{operator} on the multivalued key {key}: it needs ForAllValues or ForAnyValue")
    return _one_value(base, policy_values, values[0])


def _conditions_hold(statement: Statement, context: Mapping[str, ContextValue]) -> bool:
    # Context keys are case-insensitive in IAM; the requests spell them as the policies do.
    return all(
        condition_holds(operator, key, values, context)
        for operator, keys in statement.condition.items()
        for key, values in keys.items()
    )


def matching_action(statement: Statement, action: str) -> str | None:
    """The action pattern of the statement that covers `action` (for NotAction: the statement)."""
    hits = [pattern for pattern in statement.actions if like(pattern, action, ignore_case=True)]
    if statement.not_actions:
        return None if hits else f"NotAction {list(statement.actions)}"
    return hits[0] if hits else None


def applies(statement: Statement, request: Request) -> str | None:
    action = matching_action(statement, request.action)
    if action is None:
        return None
    on_resource = any(like(pattern, request.resource) for pattern in statement.resources)
    if on_resource == statement.not_resources:
        return None
    return action if _conditions_hold(statement, request.context) else None


def evaluate(statements: Iterable[Statement], request: Request) -> Decision:
    allowed_by: list[tuple[str, str]] = []
    denied_by: list[str] = []
    for statement in statements:
        action = applies(statement, request)
        if action is None:
            continue
        if statement.effect == "Deny":
            denied_by.append(statement.grant)
        else:
            allowed_by.append((statement.grant, action))
    return Decision(
        allowed=bool(allowed_by) and not denied_by, allowed_by=tuple(allowed_by), denied_by=tuple(denied_by)
    )
