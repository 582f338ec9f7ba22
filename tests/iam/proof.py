"""The two directions of least privilege, over the recorded calls, and the report of them.

1. Every request a recorded call needs is allowed by its function's role (a failure names the call,
   the action, the resource and the context keys). Checked after each handler test.
2. Every grant of a role (an Allow statement's action) is used by some recorded request, unless
   `UNREACHABLE` says why no test can reach it. Checked once the whole handler suite has run
   (a partial run cannot know), with the set operators: ForAllValues/ForAnyValue only on keys the
   calls carry as several values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from tests.iam.evaluator import evaluate
from tests.iam.recorder import Call
from tests.iam.template_roles import FunctionRole, function_roles

# (function folder, grant, action pattern) -> why no handler test makes a call it allows. Keep it
# short: every entry is a permission nothing proves is needed.
UNREACHABLE: dict[tuple[str, str, str], str] = {
    (
        "rollout_controller",
        "RolloutControllerFunctionRole/rollout-controller/DriveTaggedEndpoints",
        "sagemaker:DeleteEndpoint",
    ): (
        "only a first deployment that ends without completing deletes its endpoint (its abort, or the "
        "clean-up finishing it); no handler test ends one so (tests/integration does, unrecorded)"
    ),
}


class Proof:
    """What the recorded calls used and where they were refused; mergeable across xdist workers."""

    def __init__(self) -> None:
        self.used: dict[str, set[tuple[str, str]]] = defaultdict(set)  # folder -> (grant, action pattern)
        self.actions: dict[str, set[str]] = defaultdict(set)  # folder -> actions requested
        self.key_kinds: dict[str, set[tuple[str, str]]] = defaultdict(set)  # folder -> (key, single|multi)
        self.modules: set[str] = set()  # the handler test modules that ran

    def add(self, calls: Iterable[Call], roles: Mapping[str, FunctionRole] | None = None) -> list[str]:
        """Evaluate `calls`; return each refusal (and remember what was used)."""
        roles = roles or function_roles()
        refused = []
        for call in calls:
            role = roles[call.function]
            for request in call.requests:
                self.actions[call.function].add(request.action)
                for key, value in request.context.items():
                    self.key_kinds[call.function].add((key, "multi" if isinstance(value, tuple) else "single"))
                decision = evaluate(role.statements, request)
                self.used[call.function].update(decision.allowed_by)
                if not decision.allowed:
                    why = f"denied by {list(decision.denied_by)}" if decision.denied_by else "no statement allows it"
                    # IAM decides before the service looks: a call on a resource that does not exist
                    # is refused as any other (it has no tags either), not answered "not found".
                    missing = (
                        " (moto: no such resource; AWS refuses it before looking)" if call.on_missing_resource else ""
                    )
                    refused.append(
                        f"{role.logical_id} ({role.role}): {call.operation} needs {request.action} on "
                        f"{request.resource} with {dict(request.context)}: {why}{missing}"
                    )
        return refused

    def as_json(self) -> dict[str, Any]:
        return {
            "used": {f: sorted(map(list, v)) for f, v in self.used.items()},
            "actions": {f: sorted(v) for f, v in self.actions.items()},
            "key_kinds": {f: sorted(map(list, v)) for f, v in self.key_kinds.items()},
            "modules": sorted(self.modules),
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        for f, pairs in data["used"].items():
            self.used[f].update((g, a) for g, a in pairs)
        for f, actions in data["actions"].items():
            self.actions[f].update(actions)
        for f, pairs in data["key_kinds"].items():
            self.key_kinds[f].update((k, kind) for k, kind in pairs)
        self.modules.update(data["modules"])

    def unused(self, roles: Mapping[str, FunctionRole] | None = None) -> list[str]:
        roles = roles or function_roles()
        problems = []
        for folder, role in roles.items():
            for statement in role.statements:
                if statement.effect != "Allow" or statement.not_actions:
                    continue
                for action in statement.actions:
                    if (statement.grant, action) in self.used[folder] or (
                        folder,
                        statement.grant,
                        action,
                    ) in UNREACHABLE:
                        continue
                    problems.append(
                        f"{role.logical_id}: {statement.grant} grants {action}, which no recorded call uses"
                    )
        return problems

    def misused_set_operators(self, roles: Mapping[str, FunctionRole] | None = None) -> list[str]:
        """ForAllValues/ForAnyValue on a key the calls carry as one value: a plain operator is meant
        (and ForAllValues would also pass a request without the key)."""
        roles = roles or function_roles()
        problems = []
        for folder, role in roles.items():
            single = {key for key, kind in self.key_kinds[folder] if kind == "single"}
            for statement in role.statements:
                for operator, keys in statement.condition.items():
                    if operator.startswith(("ForAllValues:", "ForAnyValue:")):
                        problems += [
                            f"{role.logical_id}: {statement.grant} uses {operator} on {key}, a single-valued key"
                            for key in keys
                            if key in single
                        ]
        return problems

    def report(self, roles: Mapping[str, FunctionRole] | None = None) -> list[str]:
        roles = roles or function_roles()
        lines = []
        for folder, role in sorted(roles.items(), key=lambda item: item[1].logical_id):
            actions = sorted(self.actions.get(folder, ()))
            lines.append(f"{role.logical_id} ({len(actions)} actions): {', '.join(actions) or 'no call recorded'}")
        return lines


# What the handler tests' calls used, across this process's tests (tests/conftest.py reports it).
PROOF = Proof()
