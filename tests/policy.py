"""IAM policy evaluation, small enough to read, for template.yaml's resource and identity policies.

moto enforces no resource policy (EMULATOR-NOTES), so the template's bus, bucket and topic policies
are judged here, for a deployment with given parameters, as AWS documents the evaluation: an
explicit Deny anywhere wins; in the resource's own account an Allow in either the identity policy or
the resource policy is enough; from another account both are needed. Only the condition operators
the template uses are known: any other raises, so a new one cannot pass unjudged.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

ACCOUNT = "111122223333"
REGION = "eu-west-1"
STACK = "shepherd-prod"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Deployment:
    """The template resolved for one set of parameters (an Fn::If picks its branch, a Ref its value)."""

    template: dict[str, Any]
    parameters: Mapping[str, Any]

    def condition(self, name: str) -> bool:
        return bool(self._condition(self.template["Conditions"][name]))

    def _condition(self, expression: Any) -> Any:
        if not isinstance(expression, dict):
            return expression
        [(function, arguments)] = expression.items()
        if function == "Condition":
            return self.condition(arguments)
        if function == "Ref":
            return self.resolve(expression)
        values = [self._condition(argument) for argument in as_list(arguments)]
        return {
            "Fn::Equals": lambda: values[0] == values[1],
            "Fn::Or": lambda: any(values),
            "Fn::And": lambda: all(values),
            "Fn::Not": lambda: not values[0],
            "Fn::Join": lambda: str(values[0]).join(values[1]),
        }[function]()

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function this test needs resolved; AWS::NoValue drops out."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, argument)] = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return arn_of(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(self.resolve(items))
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template["Parameters"]:
            parameter = self.template["Parameters"][name]
            value = self.parameters.get(name, parameter.get("Default"))
            if parameter["Type"] == "CommaDelimitedList" and isinstance(value, str):
                return value.split(",")
            return value
        return arn_of(name, "Ref")

    def _sub(self, argument: Any) -> str:
        text = argument if isinstance(argument, str) else argument[0]
        while "${" in text:
            start = text.index("${")
            end = text.index("}", start)
            name = text[start + 2 : end]
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                value = arn_of(logical_id, attribute)
            else:
                value = self._ref(name)
            text = text[:start] + str(value) + text[end + 1 :]
        return text

    def statements(self, logical_id: str) -> list[dict[str, Any]]:
        """The statements a resource's policy holds in this deployment (none if it is not created)."""
        resource = self.template["Resources"][logical_id]
        if "Condition" in resource and not self.condition(resource["Condition"]):
            return []
        properties = resource["Properties"]
        if resource["Type"] == "AWS::Events::EventBusPolicy":
            return [self.resolve(properties["Statement"])]
        return list(self.resolve(properties["PolicyDocument"])["Statement"])

    def resources_of(self, kind: str) -> list[str]:
        return [name for name, r in self.template["Resources"].items() if r["Type"] == kind]


class _NoValue:
    pass


_NO_VALUE = _NoValue()


def arn_of(logical_id: str, attribute: str) -> str:
    """A stand-in for a resource's ARN (or name): stable, and telling which resource it is."""
    if logical_id.endswith("Role"):
        return f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{logical_id}"
    if attribute == "Name":
        return f"{logical_id}-name"
    return f"arn:aws:{logical_id}:{REGION}:{ACCOUNT}:{logical_id}"


@dataclass(frozen=True)
class Request:
    """One call as IAM sees it: who, what, on which resource, with which condition keys."""

    principal_arn: str
    action: str
    resource: str
    keys: Mapping[str, Any] = field(default_factory=dict)
    service: str | None = None  # a service principal (cloudwatch.amazonaws.com) instead of an IAM one
    # A batch authorised entry by entry (PutEvents): each entry's own keys, each a request of its own.
    entries: tuple[Mapping[str, Any], ...] = ()

    @property
    def account(self) -> str:
        return self.principal_arn.split(":")[4] if self.service is None else ""

    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = {"aws:PrincipalArn": self.principal_arn, **self.keys}
        if self.service is None:
            context["aws:PrincipalAccount"] = self.account
        else:
            context["aws:PrincipalServiceName"] = self.service
        return context

    def each(self) -> list[Request]:
        """What IAM authorises: the request, or each entry of a batch on its own."""
        return [replace(self, keys={**self.keys, **entry}, entries=()) for entry in self.entries] or [self]


def put_events(principal_arn: str, bus: str, *entries: tuple[str, str]) -> Request:
    """PutEvents of (source, detail-type) entries, one batch. EventBridge authorises each entry on its
    own, with its one events:source and events:detail-type (an entry refused fails alone, with
    NotAuthorizedForSourceException or NotAuthorizedForDetailTypeException: PutEventsResultEntry)."""
    return Request(
        principal_arn,
        "events:PutEvents",
        bus,
        entries=tuple({"events:source": s, "events:detail-type": d} for s, d in entries),
    )


def allowed(request: Request, resource_policy: Iterable[dict[str, Any]], identity_allows: bool) -> bool:
    """IAM's answer for `request` (for a batch: whether every entry gets through), given the resource's
    policy and whether the caller's identity policies allow the call (an administrator's do)."""
    policy = list(resource_policy)
    return all(_allowed(one, policy, identity_allows) for one in request.each())


def _allowed(request: Request, resource_policy: list[dict[str, Any]], identity_allows: bool) -> bool:
    statements = [s for s in resource_policy if _applies(s, request)]
    if any(s["Effect"] == "Deny" for s in statements):
        return False
    # An Allow naming an account (or its root) delegates to that account's identity policies: it
    # lets no principal in by itself.
    resource_allows = any(s["Effect"] == "Allow" and not _names_the_account(s, request) for s in statements)
    delegated = any(s["Effect"] == "Allow" and _names_the_account(s, request) for s in statements)
    if request.service is not None:
        return resource_allows
    same_account = request.account == ACCOUNT
    if same_account:
        return identity_allows or resource_allows
    return identity_allows and (resource_allows or delegated)


def identity_allows(request: Request, statements: Iterable[dict[str, Any]]) -> bool:
    """An identity policy's answer alone (its own Denies win); for a batch, for every entry."""
    statements = list(statements)

    def one(request: Request) -> bool:
        matching = [s for s in statements if _matches_action(s, request) and _conditions_hold(s, request)]
        return any(s["Effect"] == "Allow" for s in matching) and not any(s["Effect"] == "Deny" for s in matching)

    return all(one(entry) for entry in request.each())


def _applies(statement: dict[str, Any], request: Request) -> bool:
    return (
        _principal_matches(statement.get("Principal"), request)
        and _matches_action(statement, request)
        and _conditions_hold(statement, request)
    )


def _matches_action(statement: dict[str, Any], request: Request) -> bool:
    actions = as_list(statement["Action"])
    resources = as_list(statement.get("Resource", "*"))
    return any(fnmatch.fnmatchcase(request.action, a) for a in actions) and any(
        fnmatch.fnmatchcase(request.resource, r) for r in resources
    )


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        raise ValueError(f"unknown principal {principal!r}")
    if request.service is not None:
        return request.service in as_list(principal.get("Service", []))
    return _names_the_account({"Principal": principal}, request) or request.principal_arn in as_list(
        principal.get("AWS", [])
    )


def _names_the_account(statement: dict[str, Any], request: Request) -> bool:
    principal = statement.get("Principal")
    if not isinstance(principal, dict) or request.service is not None:
        return False
    return any(
        v in (request.account, f"arn:aws:iam::{request.account}:root") for v in as_list(principal.get("AWS", []))
    )


def _conditions_hold(statement: dict[str, Any], request: Request) -> bool:
    context = request.context()
    return all(
        _holds(operator, key, as_list(values), context.get(key))
        for operator, block in statement.get("Condition", {}).items()
        for key, values in block.items()
    )


def _holds(operator: str, key: str, wanted: list[Any], present: Any) -> bool:
    qualifier, _, test = operator.rpartition(":")
    if qualifier:
        values = as_list(present) if present is not None else []
        if qualifier == "ForAllValues":
            return all(_single(test, wanted, value) for value in values)
        if qualifier == "ForAnyValue":
            return any(_single(test, wanted, value) for value in values)
        raise ValueError(f"unknown qualifier {qualifier}")
    if present is None:  # a missing key: a negated operator holds, any other does not (IAM's rule)
        return "Not" in test
    return _single(test, wanted, present)


def _single(test: str, wanted: list[Any], value: str) -> bool:
    like = {
        "StringEquals": lambda: value in wanted,
        "StringNotEquals": lambda: value not in wanted,
        "ArnEquals": lambda: value in wanted,
        "ArnNotEquals": lambda: value not in wanted,
        "ArnLike": lambda: any(fnmatch.fnmatchcase(value, w) for w in wanted),
        "ArnNotLike": lambda: not any(fnmatch.fnmatchcase(value, w) for w in wanted),
        "StringLike": lambda: any(fnmatch.fnmatchcase(value, w) for w in wanted),
    }
    if test not in like:
        raise ValueError(f"unknown condition operator {test}")
    return bool(like[test]())
