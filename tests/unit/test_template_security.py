"""The security properties of template.yaml, read from the template itself.

Nothing here can be checked in local mode: moto enforces no IAM, bus, key or bucket policy (see
EMULATOR-NOTES). So each property is a check over the parsed template, and each check is shown to
fail on a copy of the template with that one property removed (`MUTATIONS`): a check that passes on
a template without its property would prove nothing.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from shepherd.adapters.sagemaker import STACK_TAG
from shepherd.contracts import (
    ModelPromotionRequested,
    ModelRollbackRequested,
    ModelRolloutResumeRequested,
    ModelVersionApprovalRequested,
)
from shepherd.rollouts.naming import model_resource_name, rollout_alarm_names

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())

STACK_NAME = {"Ref": "AWS::StackName"}
# The command roles: stack parameter -> the only detail-type its principals may put on the bus.
ROLES = {
    "ApproverPrincipals": (ModelVersionApprovalRequested.DETAIL_TYPE,),
    "DeployerPrincipals": (ModelPromotionRequested.DETAIL_TYPE,),
    # Operators roll back, and resume a rollout the canary judge held.
    "OperatorPrincipals": (ModelRollbackRequested.DETAIL_TYPE, ModelRolloutResumeRequested.DETAIL_TYPE),
}
# Key prefixes each function may touch in the table (dynamodb:LeadingKeys), per docs/design.md.
LEADING_KEYS = {
    "RegisterVersionFunction": {"MODEL#*", "ARTIFACT#*", "AUDIT#MODEL#*"},
    "DecideApprovalFunction": {"MODEL#*", "AUDIT#MODEL#*"},
    "StartRolloutFunction": {"MODEL#*", "ENDPOINT#*", "ALARM#*", "AUDIT#*"},
    "RolloutControllerFunction": {"MODEL#*", "ENDPOINT#*", "ALARM#*", "AUDIT#*"},
    "RollbackFunction": {"MODEL#*", "ENDPOINT#*", "ALARM#*", "AUDIT#*"},
}
# The functions that query the sparse index (active rollouts): the controller's pass, and the rollback
# matching an alarm named in a promotion to its rollout. Registration and approval never read it.
INDEX_READERS = ("RolloutControllerFunction", "RollbackFunction")
WRITE_SERVICES = ("sagemaker", "dynamodb", "s3", "cloudwatch")
READ_VERBS = ("Describe", "Get", "List", "Query", "Scan", "BatchGet")


# --- reading the template ----------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def function_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The statements of the role the function names (each function has its own, `<function>Role`)."""
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template["Resources"][role]["Properties"].get("Policies", [])
    return [s for policy in policies for s in policy["PolicyDocument"].get("Statement", [])]


def all_iam_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement


def bus_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [policy["Properties"]["Statement"] for policy in resources(template, "AWS::Events::EventBusPolicy").values()]


def is_write(action: str) -> bool:
    service, _, verb = action.partition(":")
    return service in WRITE_SERVICES and not verb.startswith(READ_VERBS)


def sub_text(value: Any) -> str:
    """The pattern of a `!Sub` ARN (or a plain string); anything else (a GetAtt) is not a wildcard."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        return str(value["Fn::Sub"])
    return ""


# --- the checks: each returns what is wrong (empty when the property holds) ----------------------------


def check_forged_announcements_denied(template: dict[str, Any]) -> list[str]:
    """An explicit Deny of source "shepherd" for every principal but Shepherd's own function roles."""
    roles = {f"{function}Role" for function in resources(template, "AWS::Serverless::Function")}
    for statement in bus_statements(template):
        condition = statement.get("Condition", {})
        excepted = condition.get("ArnNotEquals", {}).get("aws:PrincipalArn", [])
        if (
            statement.get("Effect") == "Deny"
            and statement.get("Principal") == "*"
            and "events:PutEvents" in as_list(statement.get("Action"))
            # any entry of a batch with source "shepherd" (a plain StringEquals would be undefined on
            # the multivalued key)
            and as_list(condition.get("ForAnyValue:StringEquals", {}).get("events:source")) == ["shepherd"]
            and {ref["Fn::GetAtt"][0] for ref in excepted if isinstance(ref, dict) and "Fn::GetAtt" in ref} == roles
            and len(excepted) == len(roles)
        ):
            return []
    return ["no bus policy statement denies source 'shepherd' to all but exactly the function roles"]


def check_sagemaker_writes_need_the_stack_tag(template: dict[str, Any]) -> list[str]:
    """Create* (and the AddTags it implies) only with the tag; every other write only on tagged resources."""
    problems = []
    for function in resources(template, "AWS::Serverless::Function"):
        for statement in function_statements(template, function):
            writes = [a for a in as_list(statement["Action"]) if a.startswith("sagemaker:") and is_write(a)]
            if not writes:
                continue
            condition = statement.get("Condition", {})
            equals = condition.get("StringEquals", {})
            creates = all(a.startswith(("sagemaker:Create", "sagemaker:AddTags")) for a in writes)
            if creates:
                keys = set(as_list(condition.get("ForAllValues:StringEquals", {}).get("aws:TagKeys", [])))
                if equals.get(f"aws:RequestTag/{STACK_TAG}") != STACK_NAME or STACK_TAG not in keys:
                    problems.append(f"{function} {statement.get('Sid')}: creates without requiring the stack tag")
            elif any(a.startswith(("sagemaker:Create", "sagemaker:AddTags")) for a in writes):
                problems.append(f"{function} {statement.get('Sid')}: mixes creates with changes")
            elif equals.get(f"aws:ResourceTag/{STACK_TAG}") != STACK_NAME:
                problems.append(f"{function} {statement.get('Sid')}: changes resources without the stack tag")
    return problems


def check_tag_is_set_by_the_rollout_functions(template: dict[str, Any]) -> list[str]:
    """The functions that create SageMaker resources know the stack name the tag conditions expect."""
    problems = []
    for function in ("StartRolloutFunction", "RolloutControllerFunction", "RollbackFunction"):
        variables = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
        if variables.get("SHEPHERD_STACK_NAME") != STACK_NAME:
            problems.append(f"{function}: SHEPHERD_STACK_NAME is not the stack name")
    return problems


def check_no_wildcard_resource_for_writes(template: dict[str, Any]) -> list[str]:
    """No sagemaker, dynamodb, s3 or cloudwatch write on Resource "*", and no action wildcards."""
    problems = []
    for owner, statement in all_iam_statements(template):
        actions = as_list(statement["Action"])
        if any("*" in action for action in actions):
            problems.append(f"{owner} {statement.get('Sid')}: action wildcard {actions}")
        if any(is_write(a) for a in actions) and any(sub_text(r) == "*" for r in as_list(statement["Resource"])):
            problems.append(f"{owner} {statement.get('Sid')}: write on Resource '*'")
    return problems


def check_logs_only_on_own_log_group(template: dict[str, Any]) -> list[str]:
    """Each function's role writes logs to the function's own log group only, and creates none (the
    template does): not SAM's AWSLambdaBasicExecutionRole, which allows every log group."""
    problems = []
    for function, resource in resources(template, "AWS::Serverless::Function").items():
        properties = resource["Properties"]
        role = template["Resources"].get(properties.get("Role", {}).get("Fn::GetAtt", [""])[0], {})
        if role.get("Type") != "AWS::IAM::Role" or role["Properties"].get("ManagedPolicyArns"):
            problems.append(f"{function}: not its own role without managed policies")
            continue
        own = {"Fn::GetAtt": [properties["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}
        for statement in function_statements(template, function):
            actions = [a for a in as_list(statement["Action"]) if a.startswith("logs:")]
            if set(actions) - {"logs:CreateLogStream", "logs:PutLogEvents"}:
                problems.append(f"{function} {statement.get('Sid')}: {actions}")
            if actions and as_list(statement["Resource"]) != [own]:
                problems.append(f"{function} {statement.get('Sid')}: logs on {statement['Resource']}")
    return problems


def check_table_access_limited_to_own_keys(template: dict[str, Any]) -> list[str]:
    """Every statement on the table itself carries the function's dynamodb:LeadingKeys."""
    problems = []
    table = {"Fn::GetAtt": ["RegistryTable", "Arn"]}
    for function, prefixes in LEADING_KEYS.items():
        on_table = [s for s in function_statements(template, function) if table in as_list(s["Resource"])]
        if not on_table:
            problems.append(f"{function}: no statement on the table")
        for statement in on_table:
            keys = statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            if set(as_list(keys or [])) != prefixes:
                problems.append(f"{function} {statement.get('Sid')}: leading keys {keys}, expected {sorted(prefixes)}")
        index_actions = {
            a
            for s in function_statements(template, function)
            if any("/index/" in sub_text(r) for r in as_list(s["Resource"]))
            for a in as_list(s["Action"])
        }
        if index_actions - {"dynamodb:Query"} or (index_actions and function not in INDEX_READERS):
            problems.append(f"{function}: index access {sorted(index_actions)}")
    return problems


# What target tracking names its alarms for a SageMaker variant: TargetTracking-endpoint/<e>/variant/<v>-...
TARGET_TRACKING_ALARMS = "TargetTracking-endpoint/*"


def check_alarm_writes_scoped_to_the_namespace(template: dict[str, Any]) -> list[str]:
    """Alarm writes reach only this environment's per-rollout alarms, as rollout_alarm_names names them."""
    problems = []
    namespace = {
        f: template["Resources"][f]["Properties"]["Environment"]["Variables"]["SHEPHERD_NAMESPACE"]
        for f in ("StartRolloutFunction", "RolloutControllerFunction", "RollbackFunction")
    }
    if set(map(str, namespace.values())) != {str({"Fn::Sub": "shepherd-${Environment}"})}:
        problems.append(f"namespaces {namespace}")
    own = rollout_alarm_names("shepherd-dev", "churn", "20260301T120000Z-3fa9c1d2e4")
    others = rollout_alarm_names("shepherd-prod", "churn", "20260301T120000Z-3fa9c1d2e4")
    for owner, statement in all_iam_statements(template):
        if not any(a.startswith("cloudwatch:") and is_write(a) for a in as_list(statement["Action"])):
            continue
        patterns = [
            sub_text(r).replace("${Environment}", "dev").rsplit("alarm:", 1)[-1] for r in as_list(statement["Resource"])
        ]
        if patterns == [TARGET_TRACKING_ALARMS]:
            continue  # Application Auto Scaling's own alarms, which a carried policy makes as the caller
        for pattern in patterns:
            if not all(fnmatch.fnmatchcase(name, pattern) for name in own):
                problems.append(f"{owner} {statement.get('Sid')}: {pattern} misses the stack's own alarms")
            if any(fnmatch.fnmatchcase(name, pattern) for name in others):
                problems.append(f"{owner} {statement.get('Sid')}: {pattern} reaches another stack's alarms")
    return problems


def check_models_scoped_to_the_namespace(template: dict[str, Any]) -> list[str]:
    problems = []
    own, other = model_resource_name("churn", 3, namespace="shepherd-dev"), model_resource_name("churn", 3)
    for owner, statement in all_iam_statements(template):
        if not any(a in ("sagemaker:CreateModel", "sagemaker:DeleteModel") for a in as_list(statement["Action"])):
            continue
        for resource in as_list(statement["Resource"]):
            pattern = sub_text(resource).replace("${Environment}", "dev").rsplit("model/", 1)[-1]
            if not fnmatch.fnmatchcase(own, pattern) or fnmatch.fnmatchcase(other, pattern):
                problems.append(f"{owner} {statement.get('Sid')}: model resource {pattern}")
    return problems


def check_alarm_topic_uses_a_key_cloudwatch_may_use(template: dict[str, Any]) -> list[str]:
    topic = template["Resources"]["AlarmTopic"]["Properties"]
    reference = topic.get("KmsMasterKeyId")
    if not isinstance(reference, dict) or "Fn::GetAtt" not in reference:
        return [f"the alarm topic's key is {reference!r}, not a key of this template"]
    key = template["Resources"][reference["Fn::GetAtt"][0]]
    if key["Type"] != "AWS::KMS::Key":
        return ["the alarm topic's key is not a customer managed KMS key"]
    problems = [] if key["Properties"].get("EnableKeyRotation") is True else ["key rotation is off"]
    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Effect") == "Allow"
        and s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(s["Action"]))
        and s.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount") == {"Ref": "AWS::AccountId"}
    ]
    if not cloudwatch:
        problems.append("the key policy does not let this account's CloudWatch alarms use the key")
    return problems


def check_stateful_resources_retained(template: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {policy} is {template['Resources'][name].get(policy)!r}"
        for name in ("RegistryTable", "ArtifactBucket")
        for policy in ("DeletionPolicy", "UpdateReplacePolicy")
        if template["Resources"][name].get(policy) != "Retain"
    ]


# Who may send which command, and the separation of duties, are judged by evaluating the policies:
# tests/unit/test_template_account_roles.py.
CHECKS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    check.__name__.removeprefix("check_"): check
    for check in (
        check_forged_announcements_denied,
        check_sagemaker_writes_need_the_stack_tag,
        check_tag_is_set_by_the_rollout_functions,
        check_no_wildcard_resource_for_writes,
        check_logs_only_on_own_log_group,
        check_table_access_limited_to_own_keys,
        check_alarm_writes_scoped_to_the_namespace,
        check_models_scoped_to_the_namespace,
        check_alarm_topic_uses_a_key_cloudwatch_may_use,
        check_stateful_resources_retained,
    )
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_the_template_has_the_property(name):
    assert CHECKS[name](TEMPLATE) == []


# --- each property removed, one at a time --------------------------------------------------------------


def statement(template: dict[str, Any], function: str, sid: str) -> dict[str, Any]:
    [found] = [s for s in function_statements(template, function) if s.get("Sid") == sid]
    return found


def _set(path: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        path(template)[key] = value

    return mutate


def _drop(path: Callable[[dict[str, Any]], dict[str, Any]], key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        del path(template)[key]

    return mutate


def _add_action(function: str, sid: str, action: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        found = statement(template, function, sid)
        found["Action"] = [*as_list(found["Action"]), action]

    return mutate


def _resource(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda t: t["Resources"][name]


def _properties(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda t: t["Resources"][name]["Properties"]


def _bus(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda t: t["Resources"][name]["Properties"]["Statement"]


def _condition(function: str, sid: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda t: statement(t, function, sid)["Condition"]


def _environment(function: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda t: t["Resources"][function]["Properties"]["Environment"]["Variables"]


def _drop_first_role_exception(template: dict[str, Any]) -> None:
    template["Resources"]["ShepherdBusDenyForgedAnnouncements"]["Properties"]["Statement"]["Condition"]["ArnNotEquals"][
        "aws:PrincipalArn"
    ].pop(0)


def _drop_key_policy_for_cloudwatch(template: dict[str, Any]) -> None:
    policy = template["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "AllowThisAccountsAlarmsToPublish"]


ALARMS_ANYWHERE = {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:shepherd-*"}
MUTATIONS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "deny policy removed": (
        "forged_announcements_denied",
        _drop(lambda t: t["Resources"], "ShepherdBusDenyForgedAnnouncements"),
    ),
    "deny turned allow": (
        "forged_announcements_denied",
        _set(_bus("ShepherdBusDenyForgedAnnouncements"), "Effect", "Allow"),
    ),
    "deny spares one principal more": (
        "forged_announcements_denied",
        _set(_bus("ShepherdBusDenyForgedAnnouncements"), "Principal", {"AWS": {"Ref": "AWS::AccountId"}}),
    ),
    "deny misses a function role": ("forged_announcements_denied", _drop_first_role_exception),
    "deny not about source shepherd": (
        "forged_announcements_denied",
        _drop(
            lambda t: t["Resources"]["ShepherdBusDenyForgedAnnouncements"]["Properties"]["Statement"]["Condition"],
            "ForAnyValue:StringEquals",
        ),
    ),
    "controller changes untagged endpoints": (
        "sagemaker_writes_need_the_stack_tag",
        _drop(lambda t: statement(t, "RolloutControllerFunction", "DriveTaggedEndpoints"), "Condition"),
    ),
    "controller deletes untagged models": (
        "sagemaker_writes_need_the_stack_tag",
        _drop(lambda t: statement(t, "RolloutControllerFunction", "RetireTaggedModels"), "Condition"),
    ),
    "rollback flips untagged endpoints": (
        "sagemaker_writes_need_the_stack_tag",
        _drop(lambda t: statement(t, "RollbackFunction", "FlipTraffic"), "Condition"),
    ),
    "models created without the tag": (
        "sagemaker_writes_need_the_stack_tag",
        _drop(_condition("StartRolloutFunction", "CreateCandidateModels"), "StringEquals"),
    ),
    "endpoints created with any tag keys": (
        "sagemaker_writes_need_the_stack_tag",
        _drop(_condition("RolloutControllerFunction", "CreateTaggedEndpoints"), "ForAllValues:StringEquals"),
    ),
    "stack name not given to the controller": (
        "tag_is_set_by_the_rollout_functions",
        _drop(_environment("RolloutControllerFunction"), "SHEPHERD_STACK_NAME"),
    ),
    "alarm writes on any resource": (
        "no_wildcard_resource_for_writes",
        _set(lambda t: statement(t, "RollbackFunction", "PerRolloutAlarms"), "Resource", "*"),
    ),
    "every sagemaker action": (
        "no_wildcard_resource_for_writes",
        _set(lambda t: statement(t, "RollbackFunction", "FlipTraffic"), "Action", "sagemaker:*"),
    ),
    "registry writes on any table": (
        "no_wildcard_resource_for_writes",
        _set(lambda t: statement(t, "RegisterVersionFunction", "WriteRegistry"), "Resource", "*"),
    ),
    "logs on every log group": (
        "logs_only_on_own_log_group",
        _set(lambda t: statement(t, "RollbackFunction", "OwnLogGroup"), "Resource", "*"),
    ),
    "log groups created": (
        "logs_only_on_own_log_group",
        _add_action("DecideApprovalFunction", "OwnLogGroup", "logs:CreateLogGroup"),
    ),
    "SAM's role back": (
        "logs_only_on_own_log_group",
        _drop(_properties("RegisterVersionFunction"), "Role"),
    ),
    "registration reads any key": (
        "table_access_limited_to_own_keys",
        _drop(lambda t: statement(t, "RegisterVersionFunction", "WriteRegistry"), "Condition"),
    ),
    "rollouts may write artifact claims": (
        "table_access_limited_to_own_keys",
        _set(
            lambda t: statement(t, "RollbackFunction", "RolloutRecords")["Condition"]["ForAllValues:StringLike"],
            "dynamodb:LeadingKeys",
            ["*"],
        ),
    ),
    "approval reads the index": (
        "table_access_limited_to_own_keys",
        _set(
            lambda t: statement(t, "DecideApprovalFunction", "DecideVersions"),
            "Resource",
            [{"Fn::GetAtt": ["RegistryTable", "Arn"]}, {"Fn::Sub": "${RegistryTable.Arn}/index/*"}],
        ),
    ),
    "alarm prefix of every stack": (
        "alarm_writes_scoped_to_the_namespace",
        _set(
            lambda t: statement(t, "RolloutControllerFunction", "DeletePerRolloutAlarms"), "Resource", ALARMS_ANYWHERE
        ),
    ),
    "models of any stack": (
        "models_scoped_to_the_namespace",
        _set(
            lambda t: statement(t, "StartRolloutFunction", "CreateCandidateModels"),
            "Resource",
            {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model/*"},
        ),
    ),
    "topic on the AWS managed key": (
        "alarm_topic_uses_a_key_cloudwatch_may_use",
        _set(_properties("AlarmTopic"), "KmsMasterKeyId", "alias/aws/sns"),
    ),
    "key rotation off": (
        "alarm_topic_uses_a_key_cloudwatch_may_use",
        _drop(_properties("AlarmTopicKey"), "EnableKeyRotation"),
    ),
    "key policy without cloudwatch": ("alarm_topic_uses_a_key_cloudwatch_may_use", _drop_key_policy_for_cloudwatch),
    "table deleted with the stack": (
        "stateful_resources_retained",
        _drop(_resource("RegistryTable"), "DeletionPolicy"),
    ),
    "table replaced": ("stateful_resources_retained", _drop(_resource("RegistryTable"), "UpdateReplacePolicy")),
    "bucket deleted with the stack": (
        "stateful_resources_retained",
        _drop(_resource("ArtifactBucket"), "DeletionPolicy"),
    ),
    "bucket replaced": ("stateful_resources_retained", _drop(_resource("ArtifactBucket"), "UpdateReplacePolicy")),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_the_check_fails_without_the_property(mutation):
    check, mutate = MUTATIONS[mutation]
    template = copy.deepcopy(TEMPLATE)

    mutate(template)

    assert CHECKS[check](template) != []


def test_every_check_has_a_mutation():
    assert {check for check, _ in MUTATIONS.values()} == set(CHECKS)


README_POLICY = re.compile(r"^#### (?P<role>\w+) policy\n\n```json\n(?P<body>.*?)\n```", re.MULTILINE | re.DOTALL)


def test_the_readme_gives_one_ready_policy_per_role():
    policies = {m["role"]: json.loads(m["body"]) for m in README_POLICY.finditer((ROOT / "README.md").read_text())}
    assert sorted(policies) == ["Approver", "Deployer", "Operator"]
    for role, detail_types in zip(("Approver", "Deployer", "Operator"), ROLES.values(), strict=True):
        puts = [s for s in policies[role]["Statement"] if as_list(s["Action"]) == ["events:PutEvents"]]
        assert [
            (s["Effect"], as_list(s["Condition"]["ForAllValues:StringEquals"]["events:detail-type"])) for s in puts
        ] == [("Allow", list(detail_types))]
        assert puts[0]["Condition"]["ForAllValues:StringNotEquals"]["events:source"] == "shepherd"
    # An approver cannot also be the uploader.
    assert any(s["Effect"] == "Deny" and s["Action"] == "s3:PutObject" for s in policies["Approver"]["Statement"])
