"""Each function's role as template.yaml builds it: SAM's transform, then the intrinsics resolved.

The SAM translator turns `AWS::Serverless::Function` into a role (its policies, SAM's managed
policies, its dead-letter queue's policy, or the role the function names). The intrinsics are then
resolved for the test world: moto's account, the tests' region, the names the tests give the table,
bucket and bus (tests/world.py), the namespace and stack name the handler tests set
(tests/handlers/conftest.py), and the template's conditions evaluated for those parameters. So the
ARNs in the policies are the ARNs of the calls recorded on moto.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from shepherd_cli.local.lambda_runtime import DEFAULT_ACCOUNT, DEFAULT_REGION
from tests.iam.evaluator import Statement, statement
from tests.iam.managed_policies import MANAGED_POLICIES
from tests.world import World

ROOT = Path(__file__).resolve().parents[2]
PARTITION = "aws"
# Environment "test" gives the namespace shepherd-test and the bus shepherd-test, as the tests use.
# InstancePriceTable is set, so its conditional grant is proven (tests/handlers/test_rollout_cost.py).
PRICE_TABLE_PARAMETER = "/shepherd-test/instance-prices"
PARAMETERS = {"Environment": "test", "InstancePriceTable": PRICE_TABLE_PARAMETER}
PSEUDO = {
    "AWS::AccountId": DEFAULT_ACCOUNT,
    "AWS::Region": DEFAULT_REGION,
    "AWS::Partition": PARTITION,
    "AWS::StackName": "shepherd-test-stack",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}
# What the tests name the resources the template names (the rest are named after their logical id).
PHYSICAL_NAMES = {
    "RegistryTable": World.table,
    "ArtifactBucket": World.bucket,
    "SageMakerExecutionRole": "shepherd-sagemaker",
}


class FunctionRole(msgspec.Struct, frozen=True):
    logical_id: str
    folder: str  # functions/<folder>/app.py
    function_name: str
    role: str  # the role's logical id
    statements: tuple[Statement, ...]
    log_group: str
    dead_letter_arn: str | None
    traced: bool


# The intrinsics that only combine their resolved arguments.
FUNCTIONS: dict[str, Any] = {
    "Fn::Join": lambda v: v[0].join(v[1]),
    "Fn::Select": lambda v: v[1][int(v[0])],
    "Fn::Equals": lambda v: v[0] == v[1],
    "Fn::Not": lambda v: not v[0],
    "Fn::And": all,
    "Fn::Or": any,
}


class Resolver:
    """Ref, GetAtt, Sub, Join, If, Select and the condition functions, for one set of parameters."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
        self.template = template
        self.parameters = {
            name: parameters.get(name, declared.get("Default"))
            for name, declared in template.get("Parameters", {}).items()
        }
        self.conditions = {name: self.resolve(value) for name, value in template.get("Conditions", {}).items()}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(function, arguments)] = value.items()
            if function == "Ref" or function.startswith(("Fn::", "Condition")):
                return self._intrinsic(function, arguments)
        return {key: self.resolve(v) for key, v in value.items()}

    def _intrinsic(self, function: str, arguments: Any) -> Any:
        if function == "Ref":
            return self.ref(arguments)
        if function == "Condition":
            return self.resolve(self.template["Conditions"][arguments])
        if function == "Fn::GetAtt":
            name, attribute = arguments if isinstance(arguments, list) else arguments.split(".", 1)
            return self.get_att(name, attribute)
        if function == "Fn::Sub":
            return self.sub(arguments)
        if function == "Fn::If":
            name, then, otherwise = arguments
            chosen = (
                self.conditions[name] if name in self.conditions else self.resolve(self.template["Conditions"][name])
            )
            return self.resolve(then if chosen else otherwise)
        values = self.resolve(arguments)
        if function not in FUNCTIONS:
            raise ValueError(f"intrinsic {function} is not resolved for the IAM proof")
        return FUNCTIONS[function](values)

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            value = self.parameters[name]
            kind = self.template["Parameters"][name].get("Type")
            return [v for v in str(value).split(",") if v] if kind == "CommaDelimitedList" else value
        resource = self.template["Resources"][name]
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Logs::LogGroup":
            return self.resolve(properties["LogGroupName"])
        if kind == "AWS::Events::EventBus":
            return self.resolve(properties["Name"])
        if kind == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:{name}"
        return PHYSICAL_NAMES.get(name, name)

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.template["Resources"][name]["Type"]
        physical = self.ref(name)
        region, account = DEFAULT_REGION, DEFAULT_ACCOUNT
        if attribute == "Name":
            return str(physical)
        if attribute != "Arn":
            raise ValueError(f"GetAtt {name}.{attribute} is not resolved for the IAM proof")
        arns = {
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{physical}",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{physical}",
            "AWS::Events::EventBus": f"arn:{PARTITION}:events:{region}:{account}:event-bus/{physical}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{account}:role/{physical}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{region}:{account}:{physical}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{region}:{account}:log-group:{physical}:*",
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{region}:{account}:key/{physical}",
        }
        if kind == "AWS::Lambda::Function":
            function_name = self.resolve(self.template["Resources"][name]["Properties"]["FunctionName"])
            return f"arn:{PARTITION}:lambda:{region}:{account}:function:{function_name}"
        if kind not in arns:
            raise ValueError(f"GetAtt {name}.Arn of a {kind} is not resolved for the IAM proof")
        return arns[kind]

    def sub(self, arguments: Any) -> str:
        text, variables = (arguments, {}) if isinstance(arguments, str) else arguments
        values = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and name.split(".", 1)[0] in self.template["Resources"]:
                return self.get_att(*name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def translated(template: dict[str, Any]) -> dict[str, Any]:
    """SAM's transform of the template (CodeUri as S3 locations, as cfn-lint does: it needs them)."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://code/{properties[key]}"
    os.environ.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)  # the translator asks boto for one

    class NoManagedPolicyNames:  # every managed policy is named by ARN (SAM's own and ours)
        def load(self) -> dict[str, str]:
            return {}

    parameters = {**PARAMETERS, **{k: v for k, v in PSEUDO.items() if k in ("AWS::Region", "AWS::AccountId")}}
    return dict(transform(template, parameters, NoManagedPolicyNames()))


def role_statements(role_id: str, role: Mapping[str, Any], resolver: Resolver) -> tuple[Statement, ...]:
    properties = role["Properties"]
    statements = []
    for policy in properties.get("Policies", []):
        name = f"{role_id}/{resolver.resolve(policy['PolicyName'])}"
        for index, document in enumerate(resolver.resolve(policy["PolicyDocument"])["Statement"]):
            statements.append(statement(f"{name}/{document.get('Sid', index)}", document))
    # Policies of their own attached to the role (AWS::IAM::Policy's Roles), when their condition holds.
    for policy_id, policy in resolver.template["Resources"].items():
        attached = policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in policy["Properties"]["Roles"]
        if attached and resolver.conditions.get(policy.get("Condition", ""), True):
            for index, document in enumerate(resolver.resolve(policy["Properties"]["PolicyDocument"])["Statement"]):
                statements.append(statement(f"{policy_id}/{document.get('Sid', index)}", document))
    for arn in resolver.resolve(properties.get("ManagedPolicyArns", [])):
        name = arn.split(":policy/", 1)[1]
        if name not in MANAGED_POLICIES:
            raise ValueError(f"{role_id}: managed policy {name} has no document in managed_policies.py")
        for index, document in enumerate(MANAGED_POLICIES[name]):
            statements.append(statement(f"{name}/{index}", document))
    return tuple(statements)


@cache
def function_roles(template_path: Path = ROOT / "template.yaml") -> dict[str, FunctionRole]:
    """Every function's role, by the folder of its code (functions/<folder>/)."""
    template = translated(yaml_parse(template_path.read_text()))
    resolver = Resolver(template, PARAMETERS)
    roles = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        role_id = properties["Role"]["Fn::GetAtt"][0]
        function_name = resolver.resolve(properties["FunctionName"])
        log_group = resolver.resolve(
            properties.get("LoggingConfig", {}).get("LogGroup", f"/aws/lambda/{function_name}")
        )
        folder = Path(properties["Code"]["S3Key"]).name
        roles[folder] = FunctionRole(
            logical_id=logical_id,
            folder=folder,
            function_name=function_name,
            role=role_id,
            statements=role_statements(role_id, template["Resources"][role_id], resolver),
            log_group=log_group,
            dead_letter_arn=resolver.resolve(properties.get("DeadLetterConfig", {}).get("TargetArn")),
            traced=properties.get("TracingConfig", {}).get("Mode") == "Active",
        )
    return roles
