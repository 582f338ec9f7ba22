"""Local mode's engine: template.yaml deployed into moto's server, and events pumped to the functions.

Everything goes through the emulator's endpoint as a user's tools would (boto3 uploads and commands);
the functions run only because the pump hands them what the template's event sources route to them.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from shepherd_cli.local.simulated_time import SimulatedClock
from shepherd_cli.local.stack import LocalShepherd

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT_KEY = "models/churn/v1/model.tar.gz"


@pytest.fixture
def local() -> Iterator[LocalShepherd]:
    with LocalShepherd.start(ROOT / "template.yaml") as running:
        yield running


def subscribe(local: LocalShepherd, pattern: dict[str, Any], bus: str | None = None) -> str:
    """A subscriber of our own: a rule on the bus with a queue as its target; returns the queue URL."""
    sqs, events = local.client("sqs"), local.client("events")
    url = sqs.create_queue(QueueName="test-subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = bus or local.outputs["EventBusName"]
    events.put_rule(Name="test-subscriber", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="test-subscriber", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return str(url)


def received(local: LocalShepherd, queue_url: str) -> list[dict[str, Any]]:
    messages = local.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def upload(local: LocalShepherd, key: str = ARTIFACT_KEY) -> None:
    bucket = local.outputs["ArtifactBucketName"]
    local.client("s3").put_object(
        Bucket=bucket, Key=key, Body=gzip.compress(b"model-bytes"), ChecksumAlgorithm="SHA256"
    )


def command(local: LocalShepherd, detail_type: str, detail: dict[str, Any]) -> None:
    entry = {"Source": "shepherd.cli", "DetailType": detail_type, "Detail": json.dumps(detail)}
    response = local.client("events").put_events(Entries=[{**entry, "EventBusName": local.outputs["EventBusName"]}])
    assert response["FailedEntryCount"] == 0


def invocations(local: LocalShepherd, logical_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(outcome status, event) of every invocation attempt of one function so far."""
    name = local.stack.functions[logical_id].name
    return [(call.outcome.status, call.event) for call in local.pump.history if call.function_name == name]


def test_the_stack_is_built_from_the_template(local):
    assert {"ArtifactBucketName", "RegistryTableName", "EventBusName"} <= set(local.outputs)
    local.client("s3").head_bucket(Bucket=local.outputs["ArtifactBucketName"])
    local.client("dynamodb").describe_table(TableName=local.outputs["RegistryTableName"])
    local.client("events").describe_event_bus(Name=local.outputs["EventBusName"])
    register = local.stack.functions["RegisterVersionFunction"]
    assert (register.code_dir / "app.py").is_file() and register.handler == "app.lambda_handler"
    assert register.environment["REGISTRY_TABLE_NAME"] == local.outputs["RegistryTableName"]
    assert register.dead_letter_arn and register.dead_letter_arn.startswith("arn:aws:sqs:")
    # The table's TTL, which moto's CloudFormation ignores, is applied.
    ttl = local.client("dynamodb").describe_time_to_live(TableName=local.outputs["RegistryTableName"])
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    # So is the bucket's versioning: every upload gets its own S3 version id.
    versioning = local.client("s3").get_bucket_versioning(Bucket=local.outputs["ArtifactBucketName"])
    assert versioning["Status"] == "Enabled"


def test_an_upload_is_registered_and_announced(local):
    registered = subscribe(local, {"source": ["shepherd"], "detail-type": ["Model Version Registered"]})

    upload(local)
    local.pump.run_until_idle()

    [(status, event)] = invocations(local, "RegisterVersionFunction")
    assert status == "ok" and event["detail"]["object"]["key"] == ARTIFACT_KEY
    [announcement] = received(local, registered)
    assert announcement["detail"]["model_name"] == "churn" and announcement["detail"]["version"] == 1
    assert announcement["detail"]["s3_version_id"] != "null"


def test_an_approval_command_reaches_decide_approval(local):
    approved = subscribe(local, {"source": ["shepherd"], "detail-type": ["Model Version Approved"]})
    upload(local)
    local.pump.run_until_idle()

    decision = {"model_name": "churn", "version": 1, "decision": "approved", "requested_by": "alice", "reason": "ok"}
    command(local, "Model Version Approval Requested", decision)
    local.pump.run_until_idle()

    [(status, event)] = invocations(local, "DecideApprovalFunction")
    assert status == "ok" and event["source"] == "shepherd.cli" and event["account"] == local.stack.account_id
    assert "AWS_ENDPOINT_URL" not in os.environ  # the emulator's endpoint was set only while handlers ran
    decide = local.stack.functions["DecideApprovalFunction"].name
    [call] = [call for call in local.pump.history if call.function_name == decide]
    assert call.outcome.result["result"] == "approved"
    [announcement] = received(local, approved)
    assert announcement["detail"]["version"] == 1


def test_a_malformed_command_on_the_bus_is_answered_as_refused_not_retried(local):
    refusals = subscribe(local, {"source": ["shepherd"], "detail-type": ["Command Refused"]})
    # Given a command whose detail breaks its contract (no decision, no reason, no requester)
    command(local, "Model Version Approval Requested", {"model_name": "churn", "version": 1})

    local.pump.run_until_idle()

    # Then one invocation answers it: Command Refused, by the command's event id, naming the fields
    [(status, event)] = invocations(local, "DecideApprovalFunction")[-1:]
    assert status == "ok"
    [refused] = [announcement["detail"] for announcement in received(local, refusals)]
    assert refused["command_id"] == event["id"] and "detail.decision" in refused["reason"]


def test_a_failing_invocation_is_retried_then_dead_lettered(local):
    # Given an asynchronous invocation the function cannot parse at all (no EventBridge envelope)
    local.pump.invoke_async("DecideApprovalFunction", {"detail": {"model_name": "churn", "version": 1}})

    local.pump.run_until_idle()

    # Then Lambda's two retries, and the event in the function's dead-letter queue
    attempts = invocations(local, "DecideApprovalFunction")[-3:]
    assert [status for status, _event in attempts] == ["error", "error", "dead-lettered"]
    sqs = local.client("sqs")
    queue_url = sqs.get_queue_url(
        QueueName=local.stack.functions["DecideApprovalFunction"].dead_letter_arn.split(":")[-1]
    )
    [message] = sqs.receive_message(
        QueueUrl=queue_url["QueueUrl"], MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert json.loads(message["Body"]) == attempts[0][1]
    assert "ValidationError" in message["MessageAttributes"]["ErrorMessage"]["StringValue"]


def test_the_functions_event_patterns_come_from_the_template(tmp_path):
    # Given a copy of template.yaml whose upload rule only takes keys under incoming/
    template = yaml_parse((ROOT / "template.yaml").read_text())
    events = template["Resources"]["RegisterVersionFunction"]["Properties"]["Events"]
    [upload_rule] = [event for event in events.values() if "aws.s3" in event["Properties"]["Pattern"]["source"]]
    upload_rule["Properties"]["Pattern"]["detail"]["object"] = {"key": [{"prefix": "incoming/"}]}
    (tmp_path / "template.yaml").write_text(json.dumps(template))
    for folder in ("functions", "layers"):
        (tmp_path / folder).symlink_to(ROOT / folder)

    with LocalShepherd.start(tmp_path / "template.yaml") as local:
        upload(local, ARTIFACT_KEY)
        local.pump.run_until_idle()
        assert invocations(local, "RegisterVersionFunction") == []

        upload(local, "incoming/churn/model.tar.gz")
        local.pump.run_until_idle()
        [(status, event)] = invocations(local, "RegisterVersionFunction")
        assert status == "ok" and event["detail"]["object"]["key"] == "incoming/churn/model.tar.gz"


RECORDER_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Alarms:
    Type: AWS::SNS::Topic
  Recorder:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: recorder/
      Handler: app.lambda_handler
      Runtime: python3.12
      Events:
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
        AlarmChanged:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.cloudwatch]
              detail-type: [CloudWatch Alarm State Change]
        AlarmNotified:
          Type: SNS
          Properties:
            Topic: !Ref Alarms
  AlarmsMayInvokeRecorder:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !GetAtt Recorder.Arn
      Principal: lambda.alarms.cloudwatch.amazonaws.com
      SourceArn: !Sub arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*
Outputs:
  AlarmTopicArn:
    Value: !Ref Alarms
"""


def test_schedules_fire_from_the_simulated_clock_and_alarm_changes_are_emitted(tmp_path):
    (tmp_path / "template.yaml").write_text(RECORDER_TEMPLATE)
    (tmp_path / "recorder").mkdir()
    (tmp_path / "recorder" / "app.py").write_text("def lambda_handler(event, context):\n    return None\n")
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

    with LocalShepherd.start(tmp_path / "template.yaml", clock=SimulatedClock(start)) as local:
        # Three minutes pass in no time: three "Scheduled Event"s, at the simulated times.
        local.pump.advance(180)
        ticks = [event for _status, event in invocations(local, "Recorder")]
        assert [event["time"] for event in ticks] == [
            "2026-11-20T10:01:00Z",
            "2026-11-20T10:02:00Z",
            "2026-11-20T10:03:00Z",
        ]
        assert {event["detail-type"] for event in ticks} == {"Scheduled Event"}
        [tick_rule] = [rule for rule in local.stack.functions["Recorder"].rules if rule.schedule_expression]
        assert ticks[0]["resources"] == [tick_rule.arn]

        # An alarm whose actions are the function and the topic goes into ALARM.
        cloudwatch = local.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName="churn-candidate-5xx",
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[{"Name": "EndpointName", "Value": "churn"}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=5,
            ComparisonOperator="GreaterThanThreshold",
            AlarmActions=[local.stack.functions["Recorder"].arn, local.outputs["AlarmTopicArn"]],
        )
        local.pump.set_alarm_state("churn-candidate-5xx", "ALARM", "Threshold Crossed", '{"version":"1.0"}')

        alarm_events = [event for _status, event in invocations(local, "Recorder")][3:]
        by_shape = {
            "lambda": [event for event in alarm_events if "alarmData" in event],
            "eventbridge": [
                event for event in alarm_events if event.get("detail-type") == "CloudWatch Alarm State Change"
            ],
            "sns": [event for event in alarm_events if "Records" in event],
        }
        assert {shape: len(events) for shape, events in by_shape.items()} == {"lambda": 1, "eventbridge": 1, "sns": 1}
        action = by_shape["lambda"][0]
        assert action["alarmData"]["state"]["value"] == "ALARM"
        assert action["alarmData"]["previousState"]["value"] == "OK"
        assert action["time"].startswith("2026-11-20T10:03:00")
        metric = action["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]
        assert metric["dimensions"] == {"EndpointName": "churn"}
        assert by_shape["eventbridge"][0]["resources"] == [action["alarmArn"]]
        assert by_shape["eventbridge"][0]["time"] == "2026-11-20T10:03:00Z"
        notification = json.loads(by_shape["sns"][0]["Records"][0]["Sns"]["Message"])
        assert notification["NewStateValue"] == "ALARM" and notification["AlarmName"] == "churn-candidate-5xx"

        # Setting the same state again is not a change: nothing is emitted.
        local.pump.set_alarm_state("churn-candidate-5xx", "ALARM", "still")
        assert len(invocations(local, "Recorder")) == 6

        # Any client's SetAlarmState (here boto3 over HTTP, as the AWS CLI sends it) is delivered the same way.
        cloudwatch.set_alarm_state(AlarmName="churn-candidate-5xx", StateValue="OK", StateReason="recovered")
        cloudwatch.set_alarm_state(AlarmName="churn-candidate-5xx", StateValue="ALARM", StateReason="by hand")
        local.pump.run_until_idle()
        by_hand = [event for _status, event in invocations(local, "Recorder")][6:]
        shapes = sorted(
            "lambda" if "alarmData" in e else "sns" if "Records" in e else e["detail-type"] for e in by_hand
        )
        assert shapes == ["CloudWatch Alarm State Change", "CloudWatch Alarm State Change", "lambda", "sns"]
        action = next(event for event in by_hand if "alarmData" in event)
        assert action["alarmData"]["state"]["reason"] == "by hand"
        assert action["alarmData"]["previousState"]["value"] == "OK"
