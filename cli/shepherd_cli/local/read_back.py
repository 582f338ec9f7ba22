"""Reading the deployed stack back: each function, its resolved environment, code folder, dead-letter
queue and event sources (rules, schedules, SNS subscriptions), as the pump needs them."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shepherd_cli.local.deploy_template import STAGING_BUCKET, ClientFactory, Plan, Resolver, ref, resources_of_type
from shepherd_cli.local.stack_description import Function, Rule, Schedule, Subscription

LAMBDA_DEFAULT_RETRIES = 2  # asynchronous invocations: two retries, then the dead-letter queue


def _rules(
    template: dict[str, Any], plan: Plan, resolver: Resolver, resources: dict[str, str], events: Any
) -> Iterator[tuple[str, Rule]]:
    """(target function ARN, rule) for every target of the stack's rules, as moto holds them."""
    for logical_id, _resource in resources_of_type(template, "AWS::Events::Rule"):
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


def _schedules(plan: Plan, resolver: Resolver, region: str, account_id: str) -> Iterator[tuple[str, Schedule]]:
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


def _subscriptions(plan: Plan, resolver: Resolver) -> Iterator[tuple[str, Subscription]]:
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
    for _logical_id, resource in resources_of_type(template, "AWS::Lambda::EventInvokeConfig"):
        properties = resource["Properties"]
        function = ref(properties.get("FunctionName"))
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
        logical_id = ref(layer)
        content = layers.get(logical_id, {}).get("Properties", {}).get("Content", {}) if logical_id else {}
        folder = _code_folder(content, staged)
        if folder is not None:
            folders.append(folder)
    return tuple(folders)


def _unqualified(arn: Any) -> str:
    return ":".join(str(arn).split(":")[:7])


def read_event_sources(
    template: dict[str, Any],
    plan: Plan,
    resolver: Resolver,
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


def read_functions(
    template: dict[str, Any],
    resources: dict[str, str],
    staged: dict[str, Path],
    dead_letters: dict[str, str | None],
    sources: dict[str, dict[str, list[Any]]],
    lambda_client: Any,
) -> tuple[dict[str, Function], list[str]]:
    retries = _max_retries(template)
    functions, notes = {}, []
    for logical_id, resource in resources_of_type(template, "AWS::Lambda::Function"):
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


def unsupported_sources(template: dict[str, Any]) -> list[str]:
    notes = []
    for logical_id, _resource in resources_of_type(template, "AWS::Lambda::EventSourceMapping"):
        notes.append(f"{logical_id}: event source mappings (SQS, Kinesis, DynamoDB streams) are not emulated")
    for logical_id, resource in resources_of_type(template, "AWS::Lambda::EventInvokeConfig"):
        if resource["Properties"].get("DestinationConfig"):
            notes.append(f"{logical_id}: invocation destinations are not emulated (the dead-letter queue is)")
    return notes
