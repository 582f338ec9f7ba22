"""After deploying: try every action a role must not take, and expect AWS to refuse each one.

    python -m shepherd_cli.permission_probes --stack shepherd-prod \\
        --approver arn:aws:iam::123456789012:role/shepherd-approver \\
        --deployer arn:aws:iam::123456789012:role/deploy-pipeline \\
        --operator arn:aws:iam::123456789012:role/on-call [--caller]

For each role given it assumes the role (your credentials must be allowed to) and, as that role,
puts on the Shepherd bus every kind of command that is not the role's own, an announcement (source
``shepherd``), publishes to the alarm and operator topics, and (for an approver) uploads to the
artifact bucket. ``--caller`` asks the same of your own credentials (an administrator: in prod it
must be refused every command). Each attempt must end in AccessDenied; exit status 0 when all did, 1
when any was allowed, 2 when an answer was neither.

Only real AWS can answer: moto, which local mode runs on, enforces no IAM or resource policy. What
is sent is harmless if it gets through: every command names the model and endpoint
``shepherd-permission-probe``, which Shepherd refuses as unknown (and records the refusal), and the
upload is not a model artifact (registration ignores it). A probe that gets through is a hole: the
report says which.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError

from shepherd.contracts import (
    ModelPromotionRequested,
    ModelRollbackRequested,
    ModelRolloutResumeRequested,
    ModelVersionApprovalRequested,
)

PROBE = "shepherd-permission-probe"
SOURCE = "shepherd.permission-probe"
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "NotAuthorizedForSourceException"}
COMMANDS: dict[str, dict[str, Any]] = {
    ModelVersionApprovalRequested.DETAIL_TYPE: {
        "model_name": PROBE,
        "version": 1,
        "decision": "approved",
        "requested_by": PROBE,
        "reason": "permission probe",
    },
    ModelPromotionRequested.DETAIL_TYPE: {
        "model_name": PROBE,
        "version": 1,
        "endpoint_name": PROBE,
        "strategy": {"type": "all_at_once"},
        "requested_by": PROBE,
        "reason": "permission probe",
    },
    ModelRollbackRequested.DETAIL_TYPE: {"endpoint_name": PROBE, "requested_by": PROBE, "reason": "permission probe"},
    ModelRolloutResumeRequested.DETAIL_TYPE: {
        "endpoint_name": PROBE,
        "rollout_id": PROBE,
        "requested_by": PROBE,
        "reason": "permission probe",
    },
}
# Each role's own kinds: every other kind is a probe.
OWN = {
    "approver": {ModelVersionApprovalRequested.DETAIL_TYPE},
    "deployer": {ModelPromotionRequested.DETAIL_TYPE},
    "operator": {ModelRollbackRequested.DETAIL_TYPE, ModelRolloutResumeRequested.DETAIL_TYPE},
    "caller": set(),
}

Answer = Literal["denied", "allowed", "unexpected"]


@dataclass(frozen=True)
class Probe:
    """One forbidden action: what it is, and how to try it with a role's clients."""

    what: str
    attempt: Callable[[Callable[[str], Any]], None]


@dataclass(frozen=True)
class Result:
    role: str
    what: str
    answer: Answer
    detail: str = ""


def probes(role: str, outputs: dict[str, str]) -> Iterator[Probe]:
    """Everything `role` must be refused, given the stack's outputs."""
    bus = outputs["EventBusName"]
    for detail_type, detail in COMMANDS.items():
        if detail_type not in OWN[role]:
            yield Probe(f"put {detail_type!r}", _put(bus, SOURCE, detail_type, detail))
    yield Probe("announce as Shepherd", _put(bus, "shepherd", "Model Version Approved", COMMANDS[_APPROVAL]))
    for output in ("AlarmTopicArn", "OperatorTopicArn"):
        if output in outputs:
            yield Probe(f"publish to {output}", _publish(outputs[output]))
    if role == "approver":
        yield Probe("upload to the artifact bucket", _upload(outputs["ArtifactBucketName"]))


_APPROVAL = ModelVersionApprovalRequested.DETAIL_TYPE


def _put(bus: str, source: str, detail_type: str, detail: dict[str, Any]) -> Callable[[Callable[[str], Any]], None]:
    def attempt(client: Callable[[str], Any]) -> None:
        entry = {"EventBusName": bus, "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}
        response = client("events").put_events(Entries=[entry])
        # A refusal may come back per entry rather than as an error of the call.
        for result in response.get("Entries", []):
            if result.get("ErrorCode"):
                raise ClientError(
                    {"Error": {"Code": result["ErrorCode"], "Message": result.get("ErrorMessage", "")}}, "PutEvents"
                )

    return attempt


def _publish(topic_arn: str) -> Callable[[Callable[[str], Any]], None]:
    def attempt(client: Callable[[str], Any]) -> None:
        client("sns").publish(TopicArn=topic_arn, Message=f"{PROBE}: not an alarm")

    return attempt


def _upload(bucket: str) -> Callable[[Callable[[str], Any]], None]:
    def attempt(client: Callable[[str], Any]) -> None:
        client("s3").put_object(Bucket=bucket, Key=f"models/{PROBE}/probe.txt", Body=b"not a model")

    return attempt


def run(role: str, outputs: dict[str, str], client: Callable[[str], Any]) -> list[Result]:
    """Try each probe of `role` with its clients; every one should be denied."""
    results = []
    for probe in probes(role, outputs):
        try:
            probe.attempt(client)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            answer: Answer = "denied" if code in DENIED_CODES else "unexpected"
            results.append(Result(role, probe.what, answer, code))
        else:
            results.append(Result(role, probe.what, "allowed"))
    return results


def exit_status(results: list[Result]) -> int:
    if any(r.answer == "allowed" for r in results):
        return 1
    return 2 if any(r.answer == "unexpected" for r in results) else 0


def report(results: list[Result]) -> str:
    marks = {"denied": "ok     denied", "allowed": "HOLE   allowed", "unexpected": "?      answered"}
    return "\n".join(
        f"{marks[r.answer]}{' ' + r.detail if r.detail else ''}: {r.role} may not {r.what}" for r in results
    )


def _assumed(session: boto3.session.Session, role_arn: str) -> Callable[[str], Any]:
    credentials = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=PROBE)["Credentials"]
    assumed = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=session.region_name,
    )
    client: Callable[[str], Any] = assumed.client
    return client


def _outputs(session: boto3.session.Session, stack: str) -> dict[str, str]:
    [found] = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--region")
    for role in ("approver", "deployer", "operator"):
        parser.add_argument(f"--{role}", metavar="ROLE_ARN", help=f"a role listed in {role.title()}Principals")
    parser.add_argument("--caller", action="store_true", help="probe with your own credentials too")
    arguments = parser.parse_args(argv)
    session = boto3.session.Session(region_name=arguments.region)
    outputs = _outputs(session, arguments.stack)
    results = []
    for role in ("approver", "deployer", "operator"):
        role_arn = getattr(arguments, role)
        if role_arn:
            results += run(role, outputs, _assumed(session, role_arn))
    if arguments.caller:
        results += run("caller", outputs, session.client)
    print(report(results))
    return exit_status(results)


if __name__ == "__main__":
    sys.exit(main())
