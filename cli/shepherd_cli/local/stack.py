"""Local mode's AWS: template.yaml deployed into an in-process moto server, as `sam deploy` would.

Nothing here lists Shepherd's resources: the template is translated with aws-sam-translator
in-process, its local ``CodeUri``/``ContentUri`` folders are replaced by ``s3://`` objects in a
staging bucket (as ``sam package`` does; the zips are placeholders because functions run in-process,
see ``pump.py``), and the result goes through moto's own CloudFormation. What local mode needs to
run the functions is then read back from the stack and the template: the Outputs, each function's
resolved environment, its code folder and handler, its dead-letter queue and its event sources
(EventBridge rules, EventBridge Scheduler schedules, SNS subscriptions). Changing the template
changes local behaviour; no code here names a Shepherd resource.

Gaps in moto 5.2.5's CloudFormation that are filled here (see ``../shared/EMULATOR-NOTES.md``):

* A bucket's ``NotificationConfiguration`` is ignored: ``EventBridgeConfiguration`` is applied with
  ``PutBucketNotificationConfiguration``. Its ``VersioningConfiguration`` is applied with
  ``PutBucketVersioning``.
* A table's ``TimeToLiveSpecification`` is ignored: applied with ``UpdateTimeToLive`` (moto never
  deletes expired items, as before).
* ``lambda:GetFunctionConfiguration`` has no ``DeadLetterConfig``, and ``AWS::SNS::Subscription`` and
  ``AWS::Scheduler::Schedule`` are not created: their values are read from the translated template,
  with every intrinsic function resolved by moto itself (each expression is added to the stack as an
  extra Output, read back and left out of ``Stack.outputs``).
* ``AWS::Lambda::EventInvokeConfig`` is not created: its ``MaximumRetryAttempts`` is read from the
  template (the pump retries that many times; Lambda's default is two).

What is not emulated is listed in ``Stack.notes`` (and logged), e.g. resource types moto skips (a
static ``AWS::CloudWatch::Alarm`` is one: moto does not create it, and a ``!GetAtt`` on it fails the
stack; alarms created at run time with ``PutMetricAlarm`` work).
Use ``LocalShepherd.start()``: one per process, since moto's state is global to the process.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
import secrets
import time
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
from samtranslator.yaml_helper import yaml_parse

from shepherd_cli.local import atomic_dynamodb, atomic_requests, cloudwatch_emulator, emulator, event_clock
from shepherd_cli.local.pump import EventHook, Pump
from shepherd_cli.local.simulated_time import SimulatedClock
from shepherd_cli.local.stack_description import Function, Rule, Schedule, Stack, Subscription

logger = logging.getLogger(__name__)

DEFAULT_STACK_NAME = "shepherd-local"
DEFAULT_REGION = "eu-west-1"
STAGING_BUCKET = "shepherd-local-staging"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
LOCAL_IMAGE = "shepherd-local-serving@sha256:" + "0" * 64
LAMBDA_DEFAULT_RETRIES = 2  # asynchronous invocations: two retries, then the dead-letter queue
RESOLVED_OUTPUT_PREFIX = "ShepherdLocalResolved"
STACK_TIMEOUT_SECONDS = 60
# Resource types moto's CloudFormation skips that local mode emulates from the template itself.
EMULATED_HERE = ("AWS::SNS::Subscription", "AWS::Scheduler::Schedule", "AWS::Lambda::EventInvokeConfig")

ClientFactory = Callable[[str], Any]


# --- provisioning ------------------------------------------------------------------------------------


def _no_iam_calls() -> dict[str, str]:
    """The translator's fallback managed-policy map. Its bundled map already resolves AWS managed policy
    names (and ARNs pass through), so nothing is ever fetched from IAM."""
    return {}


def _translate(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """`samtranslator.translator.transform.transform`, with the region given rather than taken from the
    process environment."""
    values: dict[str, Any] = dict(parameters)
    to_py27_compatible_template(template, values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    translated = translator.translate(template, values, get_managed_policy_map=_no_iam_calls)
    return dict(undo_mark_unicode_str_in_template(translated))


class _Resolver:
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


def _stage_code(template: dict[str, Any], base_dir: Path, s3: Any) -> dict[str, Path]:
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


def _create_stack(
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


def _resources_of_type(template: dict[str, Any], resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == resource_type:
            yield logical_id, resource


def _ref(expression: Any) -> str | None:
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
class _Plan:
    """What to read back after the stack is created: resolver keys, by resource."""

    dead_letters: dict[str, str] = field(default_factory=dict)  # function logical id -> key
    rule_buses: dict[str, str] = field(default_factory=dict)  # rule logical id -> key
    schedules: dict[str, dict[str, str]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, str]] = field(default_factory=dict)
    ttl: dict[str, str] = field(default_factory=dict)  # table logical id -> key of the attribute name


def _plan(template: dict[str, Any], resolver: _Resolver) -> _Plan:
    plan = _Plan()
    for logical_id, resource in _resources_of_type(template, "AWS::Lambda::Function"):
        target = resource["Properties"].get("DeadLetterConfig", {}).get("TargetArn")
        if target is not None:
            plan.dead_letters[logical_id] = resolver.add(target, resource.get("Condition"))
    for logical_id, resource in _resources_of_type(template, "AWS::Events::Rule"):
        bus = resource["Properties"].get("EventBusName", "default")
        plan.rule_buses[logical_id] = resolver.add(bus, resource.get("Condition"))
    for logical_id, resource in _resources_of_type(template, "AWS::Scheduler::Schedule"):
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
    for logical_id, resource in _resources_of_type(template, "AWS::SNS::Subscription"):
        properties, condition = resource["Properties"], resource.get("Condition")
        plan.subscriptions[logical_id] = {
            "protocol": resolver.add(properties.get("Protocol"), condition),
            "endpoint": resolver.add(properties.get("Endpoint"), condition),
            "topic": resolver.add(properties.get("TopicArn"), condition),
            "filter_policy": resolver.add(_as_json(properties.get("FilterPolicy"))),
            "filter_policy_scope": resolver.add(properties.get("FilterPolicyScope")),
        }
    for logical_id, resource in _resources_of_type(template, "AWS::DynamoDB::Table"):
        ttl = resource["Properties"].get("TimeToLiveSpecification", {})
        if ttl.get("Enabled") in (True, "true", "True"):
            plan.ttl[logical_id] = resolver.add(ttl.get("AttributeName"), resource.get("Condition"))
    return plan


def _fill_gaps(
    template: dict[str, Any], plan: _Plan, resolver: _Resolver, resources: dict[str, str], client: ClientFactory
) -> list[str]:
    """Apply what moto's CloudFormation ignores; returns notes on what is still not emulated."""
    notes = []
    for logical_id, resource in _resources_of_type(template, "AWS::S3::Bucket"):
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


# --- reading the stack back --------------------------------------------------------------------------


def _rules(
    template: dict[str, Any], plan: _Plan, resolver: _Resolver, resources: dict[str, str], events: Any
) -> Iterator[tuple[str, Rule]]:
    """(target function ARN, rule) for every target of the stack's rules, as moto holds them."""
    for logical_id, _resource in _resources_of_type(template, "AWS::Events::Rule"):
        if logical_id not in resources:
            continue
        name = resources[logical_id].split("|")[-1]  # CloudFormation names a custom bus's rule "bus|rule"
        bus = str(resolver.get(plan.rule_buses[logical_id]) or "default")
        described = events.describe_rule(Name=name, EventBusName=bus)
        targets = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
        by_function = sorted(targets, key=lambda target: _unqualified(target["Arn"]))
        for arn, group in itertools.groupby(by_function, key=lambda target: _unqualified(target["Arn"])):
            group_targets = list(group)
            first = group_targets[0]
            yield (
                arn,
                Rule(
                    logical_id=logical_id,
                    name=name,
                    arn=described["Arn"],
                    bus=bus,
                    event_pattern=described.get("EventPattern"),
                    schedule_expression=described.get("ScheduleExpression"),
                    enabled=described.get("State", "ENABLED") == "ENABLED",
                    target_ids=tuple(target["Id"] for target in group_targets),
                    input=first.get("Input"),
                    input_path=first.get("InputPath"),
                    input_transformer=first.get("InputTransformer"),
                ),
            )


def _schedules(plan: _Plan, resolver: _Resolver, region: str, account_id: str) -> Iterator[tuple[str, Schedule]]:
    for logical_id, keys in plan.schedules.items():
        function_arn, expression = resolver.get(keys["function"]), resolver.get(keys["expression"])
        if not function_arn or not expression:
            continue  # the resource's condition is false
        name, group = resolver.get(keys["name"]), resolver.get(keys["group"])
        yield (
            function_arn,
            Schedule(
                logical_id=logical_id,
                name=name,
                arn=f"arn:aws:scheduler:{region}:{account_id}:schedule/{group}/{name}",
                schedule_expression=expression,
                enabled=resolver.get(keys["state"]) != "DISABLED",
                input=resolver.get(keys["input"]),
            ),
        )


def _subscriptions(plan: _Plan, resolver: _Resolver) -> Iterator[tuple[str, Subscription]]:
    for logical_id, keys in plan.subscriptions.items():
        if resolver.get(keys["protocol"]) != "lambda" or not resolver.get(keys["topic"]):
            continue
        yield (
            resolver.get(keys["endpoint"]),
            Subscription(
                logical_id=logical_id,
                topic_arn=resolver.get(keys["topic"]),
                filter_policy=resolver.get(keys["filter_policy"]),
                filter_policy_scope=resolver.get(keys["filter_policy_scope"]),
            ),
        )


def _max_retries(template: dict[str, Any]) -> dict[str, int]:
    """Function logical id -> MaximumRetryAttempts from its AWS::Lambda::EventInvokeConfig, if any."""
    retries = {}
    for _logical_id, resource in _resources_of_type(template, "AWS::Lambda::EventInvokeConfig"):
        properties = resource["Properties"]
        function = _ref(properties.get("FunctionName"))
        attempts = properties.get("MaximumRetryAttempts")
        if function and isinstance(attempts, int):
            retries[function] = attempts
    return retries


def _code_folder(code: dict[str, Any], staged: dict[str, Path]) -> Path | None:
    return staged.get(code.get("S3Key", "")) if code.get("S3Bucket") == STAGING_BUCKET else None


def _layer_folders(properties: dict[str, Any], template: dict[str, Any], staged: dict[str, Path]) -> tuple[Path, ...]:
    layers = template.get("Resources", {})
    folders = []
    for layer in properties.get("Layers", []):
        logical_id = _ref(layer)
        content = layers.get(logical_id, {}).get("Properties", {}).get("Content", {}) if logical_id else {}
        folder = _code_folder(content, staged)
        if folder is not None:
            folders.append(folder)
    return tuple(folders)


def _unqualified(arn: Any) -> str:
    return ":".join(str(arn).split(":")[:7])


def _event_sources(
    template: dict[str, Any],
    plan: _Plan,
    resolver: _Resolver,
    resources: dict[str, str],
    client: ClientFactory,
    account_id: str,
) -> tuple[dict[str, dict[str, list[Any]]], list[str]]:
    """Rules, schedules and subscriptions by the (unqualified) ARN of the function they invoke."""
    sources: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"rules": [], "schedules": [], "subscriptions": []})
    notes = []
    for arn, rule in _rules(template, plan, resolver, resources, client("events")):
        sources[_unqualified(arn)]["rules"].append(rule)
        if rule.input_transformer:
            notes.append(f"{rule.logical_id}: InputTransformer is not emulated; the function gets the whole event")
    for arn, schedule in _schedules(plan, resolver, client("scheduler").meta.region_name, account_id):
        sources[_unqualified(arn)]["schedules"].append(schedule)
    for arn, subscription in _subscriptions(plan, resolver):
        sources[_unqualified(arn)]["subscriptions"].append(subscription)
    return sources, notes


def _functions(
    template: dict[str, Any],
    resources: dict[str, str],
    staged: dict[str, Path],
    dead_letters: dict[str, str | None],
    sources: dict[str, dict[str, list[Any]]],
    lambda_client: Any,
) -> tuple[dict[str, Function], list[str]]:
    retries = _max_retries(template)
    functions, notes = {}, []
    for logical_id, resource in _resources_of_type(template, "AWS::Lambda::Function"):
        if logical_id not in resources:
            continue  # its condition is false
        configuration = lambda_client.get_function_configuration(FunctionName=resources[logical_id])
        properties = resource["Properties"]
        code_dir = _code_folder(properties.get("Code", {}), staged)
        if code_dir is None:
            notes.append(f"{logical_id}: no local code folder (InlineCode, image or s3:// CodeUri); not run locally")
        function_sources = sources.get(configuration["FunctionArn"], {})
        functions[logical_id] = Function(
            logical_id=logical_id,
            name=configuration["FunctionName"],
            arn=configuration["FunctionArn"],
            handler=configuration.get("Handler") or properties.get("Handler", ""),
            code_dir=code_dir,
            layer_dirs=_layer_folders(properties, template, staged),
            # Strings, as Lambda keeps them: moto's CloudFormation passes a Number parameter's Ref
            # (MaxInstanceCount, ControllerConcurrency) through as an int.
            environment={
                name: str(value) for name, value in configuration.get("Environment", {}).get("Variables", {}).items()
            },
            memory_mb=int(configuration.get("MemorySize", 128)),
            timeout_seconds=int(configuration.get("Timeout", 3)),
            dead_letter_arn=dead_letters.get(logical_id),
            max_retries=retries.get(logical_id, LAMBDA_DEFAULT_RETRIES),
            rules=tuple(function_sources.get("rules", ())),
            schedules=tuple(function_sources.get("schedules", ())),
            subscriptions=tuple(function_sources.get("subscriptions", ())),
        )
    return functions, notes


def _unsupported_sources(template: dict[str, Any]) -> list[str]:
    notes = []
    for logical_id, _resource in _resources_of_type(template, "AWS::Lambda::EventSourceMapping"):
        notes.append(f"{logical_id}: event source mappings (SQS, Kinesis, DynamoDB streams) are not emulated")
    for logical_id, resource in _resources_of_type(template, "AWS::Lambda::EventInvokeConfig"):
        if resource["Properties"].get("DestinationConfig"):
            notes.append(f"{logical_id}: invocation destinations are not emulated (the dead-letter queue is)")
    return notes


def provision(
    template_path: Path,
    client: ClientFactory,
    *,
    region: str = DEFAULT_REGION,
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: dict[str, str] | None = None,
) -> Stack:
    """Deploy a SAM template into the emulator `client` talks to, and describe what was built."""
    template_path = Path(template_path).resolve()
    parameters = dict(parameters or {})
    template = yaml_parse(template_path.read_text())
    if "DefaultInferenceImage" in template.get("Parameters", {}):
        # The emulator pulls no image; the template has no default (a digest is only its owner's), so
        # a digest-pinned placeholder in the account's own ECR lets manifests without an image deploy.
        account = client("sts").get_caller_identity()["Account"]
        parameters.setdefault("DefaultInferenceImage", f"{account}.dkr.ecr.{region}.amazonaws.com/{LOCAL_IMAGE}")
    staged = _stage_code(template, template_path.parent, client("s3"))
    translated = _translate(template, parameters, region)
    resolver = _Resolver(translated)
    plan = _plan(translated, resolver)

    # moto 5.2.5 makes a CommaDelimitedList a list only when its value is passed, not from its default
    # (a !Join of it then joins the default's characters): such defaults are passed as values.
    lists = {
        name: str(parameter["Default"])
        for name, parameter in template.get("Parameters", {}).items()
        if parameter.get("Type") == "CommaDelimitedList" and "Default" in parameter
    }
    all_outputs, resources, skipped = _create_stack(
        client("cloudformation"), stack_name, translated, lists | parameters
    )
    resolver.read(all_outputs)
    account_id = client("sts").get_caller_identity()["Account"]

    notes = [*skipped, *_fill_gaps(translated, plan, resolver, resources, client), *_unsupported_sources(translated)]
    sources, source_notes = _event_sources(translated, plan, resolver, resources, client, account_id)
    dead_letters = {logical_id: resolver.get(key) for logical_id, key in plan.dead_letters.items()}
    functions, function_notes = _functions(translated, resources, staged, dead_letters, sources, client("lambda"))
    notes.extend([*source_notes, *function_notes])
    for note in notes:
        logger.info("local mode: %s", note)
    return Stack(
        name=stack_name,
        region=region,
        account_id=account_id,
        outputs={key: value for key, value in all_outputs.items() if not key.startswith(RESOLVED_OUTPUT_PREFIX)},
        resources=resources,
        functions=functions,
        notes=tuple(notes),
    )


# --- the one entry point -----------------------------------------------------------------------------


class LocalShepherd:
    """moto's server on a loopback port, template.yaml deployed into it, and the event pump.

    ``LocalShepherd.start(template_path)`` returns a running instance; use it as a context manager or
    call ``stop()``. The process environment is left alone: clients here get the endpoint explicitly,
    the pump applies each function's environment only while its handler runs, and ``environment()``
    gives the variables another process (the AWS CLI, boto3) needs to reach the emulator.
    """

    _running: LocalShepherd | None = None

    def __init__(self, server: ThreadedMotoServer, endpoint_url: str, region: str) -> None:
        self._server = server
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = boto3.session.Session(region_name=region, **DUMMY_CREDENTIALS)
        self._clients: dict[str, Any] = {}
        self.stack: Stack
        self.pump: Pump

    @classmethod
    def start(
        cls,
        template_path: str | Path,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        parameters: dict[str, str] | None = None,
        region: str = DEFAULT_REGION,
        port: int = 0,
        clock: SimulatedClock | None = None,
        on_event: EventHook | None = None,
        environment_overrides: dict[str, str] | None = None,
        names_seed: int | None = None,
    ) -> LocalShepherd:
        """Start the emulator, deploy the template and wire the pump. One instance per process.

        With `names_seed`, moto's random generator is seeded before the deployment, so the same
        template gets the same physical names (see persistence.py), and re-seeded at random after."""
        if cls._running is not None:
            raise RuntimeError("a LocalShepherd is already running in this process (moto's state is global)")
        emulator.install()
        cloudwatch_emulator.install()
        atomic_dynamodb.install()
        atomic_requests.install()  # the controller's concurrent passes: each emulated request atomic
        if logging.getLogger("werkzeug").level == logging.NOTSET:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        host, bound_port = server.get_host_and_port()
        local = cls(server, f"http://{host}:{bound_port}", region)
        try:
            local._reset_emulator()
            if names_seed is not None:
                local._seed(names_seed)
            local.stack = provision(
                Path(template_path), local.client, region=region, stack_name=stack_name, parameters=parameters
            )
            if names_seed is not None:
                local._seed(secrets.randbelow(2**31))
            local.pump = Pump(
                local.stack,
                local.client,
                endpoint_url=local.endpoint_url,
                clock=clock,
                on_event=on_event,
                environment_overrides=environment_overrides,
            )
        except BaseException:
            server.stop()
            raise
        event_clock.follow(lambda: local.pump.clock.now)  # events are stamped with the simulated time
        cls._running = local
        return local

    @property
    def outputs(self) -> dict[str, str]:
        return self.stack.outputs

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator (dummy credentials, this region), one per service."""
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    def environment(self) -> dict[str, str]:
        """What another process needs in its environment to use the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
        }

    def stop(self) -> None:
        """Stop the server and forget moto's state (stop `pump.serve` first if it runs in another thread)."""
        pump = getattr(self, "pump", None)
        if pump is not None:
            pump.close()
        event_clock.follow(None)
        try:
            self._reset_emulator()
        finally:
            self._server.stop()
            if LocalShepherd._running is self:
                LocalShepherd._running = None

    def _seed(self, seed: int) -> None:
        requests.post(f"{self.endpoint_url}/moto-api/seed", params={"a": str(seed)}, timeout=10).raise_for_status()

    def _reset_emulator(self) -> None:
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        emulator.reset()

    def __enter__(self) -> LocalShepherd:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
