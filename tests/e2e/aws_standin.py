"""A stand-in for the AWS CLI, for machines without it: the four commands the README's walkthrough
uses, made with boto3, which reads the same environment (``AWS_ENDPOINT_URL`` and the keys that
``shepherd local env`` exports).

    python aws_standin.py s3 cp FILE s3://BUCKET/KEY [--checksum-algorithm SHA256]
    python aws_standin.py cloudformation describe-stacks --stack-name NAME [--query Q] [--output text]
    python aws_standin.py events put-events --entries JSON
    python aws_standin.py cloudwatch set-alarm-state --alarm-name N --state-value V --state-reason R

Errors end as the AWS CLI's do: the message on stderr, exit 255.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3
import jmespath
from botocore.exceptions import BotoCoreError, ClientError


def s3_cp(arguments: argparse.Namespace) -> Any:
    bucket, _, key = arguments.destination.removeprefix("s3://").partition("/")
    extra = {"ChecksumAlgorithm": arguments.checksum_algorithm} if arguments.checksum_algorithm else {}
    with open(arguments.source, "rb") as body:
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body.read(), **extra)
    print(f"upload: {arguments.source} to {arguments.destination}")
    return None


def describe_stacks(arguments: argparse.Namespace) -> Any:
    return boto3.client("cloudformation").describe_stacks(StackName=arguments.stack_name)


def put_events(arguments: argparse.Namespace) -> Any:
    return boto3.client("events").put_events(Entries=json.loads(arguments.entries))


def set_alarm_state(arguments: argparse.Namespace) -> Any:
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=arguments.alarm_name, StateValue=arguments.state_value, StateReason=arguments.state_reason
    )
    return None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="aws")
    root.add_argument("--query")
    root.add_argument("--output", default="json")
    services = root.add_subparsers(dest="service", required=True)
    commands = {
        "s3": services.add_parser("s3").add_subparsers(required=True),
        "cloudformation": services.add_parser("cloudformation").add_subparsers(required=True),
        "events": services.add_parser("events").add_subparsers(required=True),
        "cloudwatch": services.add_parser("cloudwatch").add_subparsers(required=True),
    }
    cp = commands["s3"].add_parser("cp")
    cp.add_argument("source")
    cp.add_argument("destination")
    cp.add_argument("--checksum-algorithm")
    cp.set_defaults(run=s3_cp)
    stacks = commands["cloudformation"].add_parser("describe-stacks")
    stacks.add_argument("--stack-name", required=True)
    stacks.set_defaults(run=describe_stacks)
    events = commands["events"].add_parser("put-events")
    events.add_argument("--entries", required=True)
    events.set_defaults(run=put_events)
    alarm = commands["cloudwatch"].add_parser("set-alarm-state")
    alarm.add_argument("--alarm-name", required=True)
    alarm.add_argument("--state-value", required=True)
    alarm.add_argument("--state-reason", required=True)
    alarm.set_defaults(run=set_alarm_state)
    for command in (cp, stacks, events, alarm):  # the AWS CLI takes global options anywhere
        command.add_argument("--query", dest="query", default=argparse.SUPPRESS)
        command.add_argument("--output", dest="output", default=argparse.SUPPRESS)
    return root


def main() -> int:
    arguments = parser().parse_args()
    try:
        response = arguments.run(arguments)
    except (ClientError, BotoCoreError) as error:
        print(f"\nAn error occurred: {error}", file=sys.stderr)
        return 255
    if response is None:
        return 0
    response.pop("ResponseMetadata", None)
    result = jmespath.search(arguments.query, response) if arguments.query else response
    if arguments.output == "text" and isinstance(result, list) and not any(isinstance(r, dict | list) for r in result):
        print("\t".join(str(item) for item in result))  # as the AWS CLI prints a list of values
    elif arguments.output == "text" and not isinstance(result, dict | list):
        print(result)
    else:
        print(json.dumps(result, indent=4, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
