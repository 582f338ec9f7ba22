"""Deploying template.yaml into moto, the steps `sam package` and `sam deploy` take: translate the SAM
template, stage its code folders in a bucket, create the stack, and fill the gaps moto's CloudFormation
leaves (see `shepherd_cli.local.stack`, which runs the steps)."""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

logger = logging.getLogger(__name__)

STAGING_BUCKET = "shepherd-local-staging"
RESOLVED_OUTPUT_PREFIX = "ShepherdLocalResolved"
STACK_TIMEOUT_SECONDS = 60
# Resource types moto's CloudFormation skips that local mode emulates from the template itself.
EMULATED_HERE = ("AWS::SNS::Subscription", "AWS::Scheduler::Schedule", "AWS::Lambda::EventInvokeConfig")

ClientFactory = Callable[[str], Any]


def _no_iam_calls() -> dict[str, str]:
    """The translator's fallback managed-policy map. Its bundled map already resolves AWS managed policy
    names (and ARNs pass through), so nothing is ever fetched from IAM."""
    return {}


def translate(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """`samtranslator.translator.transform.transform`, with the region given rather than taken from the
    process environment."""
    values: dict[str, Any] = dict(parameters)
    to_py27_compatible_template(template, values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    translated = translator.translate(template, values, get_managed_policy_map=_no_iam_calls)
    return dict(undo_mark_unicode_str_in_template(translated))


class Resolver:
    """Lets moto's CloudFormation resolve intrinsic functions: each expression becomes an extra Output."""

    def __init__(self, template: dict[str, Any]) -> None:
        self._template = template
        self._keys = (f"{RESOLVED_OUTPUT_PREFIX}{n}" for n in itertools.count())
        self._literals: dict[str, Any] = {}
        self._resolved: dict[str, str] = {}

    def add(self, expression: Any, condition: str | None = None) -> str:
        key = next(self._keys)
        if isinstance(expression, dict):
            output: dict[str, Any] = {"Value": expression}
            if condition:
                output["Condition"] = condition
            self._template.setdefault("Outputs", {})[key] = output
        else:
            self._literals[key] = expression
        return key

    def read(self, outputs: dict[str, str]) -> None:
        self._resolved = {key: value for key, value in outputs.items() if key.startswith(RESOLVED_OUTPUT_PREFIX)}

    def get(self, key: str | None) -> Any:
        if key is None:
            return None
        return self._literals[key] if key in self._literals else self._resolved.get(key)


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "Shepherd local mode runs this function's code in-process.\n")
    return buffer.getvalue()


def _code_locations(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every property map that may hold a local CodeUri or ContentUri."""
    yield template.get("Globals", {}).get("Function", {})
    for resource in template.get("Resources", {}).values():
        yield resource.get("Properties", {})


def stage_code(template: dict[str, Any], base_dir: Path, s3: Any) -> dict[str, Path]:
    """Rewrite local code folders to s3:// placeholders, as `sam package` does; S3 key -> local folder."""
    region = s3.meta.region_name
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=STAGING_BUCKET, **location)
    folders: dict[str, Path] = {}
    body = _placeholder_zip()
    for properties in _code_locations(template):
        for key in ("CodeUri", "ContentUri"):
            uri = properties.get(key)
            if not isinstance(uri, str) or uri.startswith("s3://"):
                continue
            folder = (base_dir / uri).resolve()
            s3_key = f"{len(folders)}-{re.sub(r'[^A-Za-z0-9]+', '-', uri).strip('-')}.zip"
            s3.put_object(Bucket=STAGING_BUCKET, Key=s3_key, Body=body)
            folders[s3_key] = folder
            properties[key] = f"s3://{STAGING_BUCKET}/{s3_key}"
    return folders


@contextmanager
def _moto_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collects what moto warns about meanwhile (in any thread); its log lines saying the same are held back."""
    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        moto_logger.setLevel(level)


def create_stack(
    cfn: Any, name: str, template: dict[str, Any], parameters: dict[str, str]
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """CreateStack, wait for CREATE_COMPLETE and read the stack back: its outputs, its resources (logical
    id -> physical id) and what moto warned about (resource types it skips)."""
    with _moto_warnings() as caught:
        cfn.create_stack(
            StackName=name,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        while stack["StackStatus"].endswith("_IN_PROGRESS") and time.monotonic() < deadline:
            time.sleep(0.1)
            stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"stack {name} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
        resources = {
            resource["LogicalResourceId"]: resource["PhysicalResourceId"]
            for resource in cfn.describe_stack_resources(StackName=name)["StackResources"]
            if resource.get("PhysicalResourceId")
        }
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    messages = {str(warning.message) for warning in caught if "moto" in str(warning.message)}
    return outputs, resources, sorted(message for message in messages if not any(t in message for t in EMULATED_HERE))


def resources_of_type(template: dict[str, Any], resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == resource_type:
            yield logical_id, resource


def ref(expression: Any) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` names, else None."""
    if isinstance(expression, dict):
        if "Ref" in expression:
            return str(expression["Ref"])
        if "Fn::GetAtt" in expression:
            target = expression["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def _as_json(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Plan:
    """What to read back after the stack is created: resolver keys, by resource."""

    dead_letters: dict[str, str] = field(default_factory=dict)  # function logical id -> key
    rule_buses: dict[str, str] = field(default_factory=dict)  # rule logical id -> key
    schedules: dict[str, dict[str, str]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, str]] = field(default_factory=dict)
    ttl: dict[str, str] = field(default_factory=dict)  # table logical id -> key of the attribute name


def plan_read_back(template: dict[str, Any], resolver: Resolver) -> Plan:
    plan = Plan()
    for logical_id, resource in resources_of_type(template, "AWS::Lambda::Function"):
        target = resource["Properties"].get("DeadLetterConfig", {}).get("TargetArn")
        if target is not None:
            plan.dead_letters[logical_id] = resolver.add(target, resource.get("Condition"))
    for logical_id, resource in resources_of_type(template, "AWS::Events::Rule"):
        bus = resource["Properties"].get("EventBusName", "default")
        plan.rule_buses[logical_id] = resolver.add(bus, resource.get("Condition"))
    for logical_id, resource in resources_of_type(template, "AWS::Scheduler::Schedule"):
        properties, condition = resource["Properties"], resource.get("Condition")
        target = properties.get("Target", {})
        plan.schedules[logical_id] = {
            "function": resolver.add(target.get("Arn"), condition),
            "expression": resolver.add(properties.get("ScheduleExpression"), condition),
            "input": resolver.add(target.get("Input"), condition),
            "state": resolver.add(properties.get("State", "ENABLED"), condition),
            "name": resolver.add(properties.get("Name", logical_id), condition),
            "group": resolver.add(properties.get("GroupName", "default"), condition),
        }
    for logical_id, resource in resources_of_type(template, "AWS::SNS::Subscription"):
        properties, condition = resource["Properties"], resource.get("Condition")
        plan.subscriptions[logical_id] = {
            "protocol": resolver.add(properties.get("Protocol"), condition),
            "endpoint": resolver.add(properties.get("Endpoint"), condition),
            "topic": resolver.add(properties.get("TopicArn"), condition),
            "filter_policy": resolver.add(_as_json(properties.get("FilterPolicy"))),
            "filter_policy_scope": resolver.add(properties.get("FilterPolicyScope")),
        }
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table"):
        ttl = resource["Properties"].get("TimeToLiveSpecification", {})
        if ttl.get("Enabled") in (True, "true", "True"):
            plan.ttl[logical_id] = resolver.add(ttl.get("AttributeName"), resource.get("Condition"))
    return plan


def fill_gaps(
    template: dict[str, Any], plan: Plan, resolver: Resolver, resources: dict[str, str], client: ClientFactory
) -> list[str]:
    """Apply what moto's CloudFormation ignores; returns notes on what is still not emulated."""
    notes = []
    for logical_id, resource in resources_of_type(template, "AWS::S3::Bucket"):
        versioning = resource.get("Properties", {}).get("VersioningConfiguration", {})
        if logical_id in resources and versioning.get("Status") == "Enabled":
            # moto's CloudFormation leaves the bucket unversioned: every object would be version "null".
            client("s3").put_bucket_versioning(
                Bucket=resources[logical_id], VersioningConfiguration={"Status": "Enabled"}
            )
        configuration = resource.get("Properties", {}).get("NotificationConfiguration", {})
        if logical_id not in resources or not configuration:
            continue
        if configuration.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled") in (True, "true", "True"):
            client("s3").put_bucket_notification_configuration(
                Bucket=resources[logical_id], NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        for other in sorted(set(configuration) - {"EventBridgeConfiguration"}):
            notes.append(f"{logical_id}: NotificationConfiguration.{other} is not emulated")
    for logical_id, key in plan.ttl.items():
        attribute = resolver.get(key)
        if logical_id in resources and attribute:
            client("dynamodb").update_time_to_live(
                TableName=resources[logical_id],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
            )
    return notes
