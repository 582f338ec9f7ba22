"""`local up --state`: what is saved as JSON comes back, into fresh moto backends, as the handlers and
the CLI read it: every S3 version with its id (delete markers too), the tables' items, the endpoints'
weights, the alarms' states and the metric data, and nothing is announced again on the way in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shepherd_cli.local import alarm_changes, cloudwatch_emulator, emulator, persistence
from shepherd_cli.local.saved.document import UnreadableState
from tests.world import World

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
KEY = "models/churn/run-1/model.tar.gz"
ENDPOINT = "churn-prod"
NAMESPACE = "AWS/SageMaker"


@pytest.fixture(autouse=True)
def emulators() -> Iterator[None]:
    emulator.install()
    emulator.configure(settle_after_describes=0)
    cloudwatch_emulator.install()
    alarm_changes.install()
    yield
    emulator.reset()


def build_world() -> dict[str, Any]:
    """Shepherd's bucket and table (as the template deploys them), and an S3 -> EventBridge -> queue
    path that would hear any `Object Created` a restore announced."""
    world = World.create()
    world.s3.put_bucket_notification_configuration(
        Bucket=world.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events, sqs = boto3.client("events"), boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="uploads", Targets=[{"Id": "q", "Arn": queue_arn}])
    return {"world": world, "sqs": sqs, "uploads": queue_url}


def uploads_heard(built: dict[str, Any]) -> list[str]:
    messages = built["sqs"].receive_message(QueueUrl=built["uploads"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"])["detail-type"] for message in messages]


def populate(world: World) -> None:
    s3, dynamodb = world.s3, world.dynamodb
    # Three versions of one key and a delete marker between them; another key deleted last.
    s3.put_object(Bucket=world.bucket, Key=KEY, Body=b"v1", Metadata={"run": "1"}, ChecksumAlgorithm="SHA256")
    s3.delete_object(Bucket=world.bucket, Key=KEY)
    s3.put_object(
        Bucket=world.bucket, Key=KEY, Body=b"\x00\xffv2", ContentType="application/gzip", ChecksumAlgorithm="SHA256"
    )
    s3.put_object_tagging(Bucket=world.bucket, Key=KEY, Tagging={"TagSet": [{"Key": "team", "Value": "churn"}]})
    s3.put_object(Bucket=world.bucket, Key="models/churn/run-1/manifest.json", Body=b'{"metrics": {}}')
    s3.delete_object(Bucket=world.bucket, Key="models/churn/run-1/manifest.json")
    dynamodb.put_item(
        TableName=world.table,
        Item={
            "pk": {"S": "MODEL#churn"},
            "sk": {"S": "VERSION#00000001"},
            "version": {"N": "1"},
            "blob": {"B": b"\x00\x01"},
            "labels": {"SS": ["a", "b"]},
            "nested": {"M": {"list": {"L": [{"N": "1.5"}, {"NULL": True}, {"BOOL": False}]}}},
        },
    )
    sagemaker = boto3.client("sagemaker")
    for name in ("churn-v1", "churn-v2"):
        sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
            PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{world.bucket}/{KEY}"},
            Tags=[{"Key": "shepherd:managed-by", "Value": "shepherd"}],
        )
    variants = [
        {"VariantName": n, "ModelName": n, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": w}
        for n, w in (("churn-v1", 1.0), ("churn-v2", 0.0))
    ]  # fmt: skip
    sagemaker.create_endpoint_config(EndpointConfigName="cfg-1", ProductionVariants=variants)
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="cfg-1")
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT,
        DesiredWeightsAndCapacities=[
            {"VariantName": "churn-v1", "DesiredWeight": 0.9},
            {"VariantName": "churn-v2", "DesiredWeight": 0.1},
        ],
    )
    cloudwatch = boto3.client("cloudwatch")
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "churn-v2"}]
    cloudwatch.put_metric_alarm(
        AlarmName="churn-prod-errors",
        ComparisonOperator="GreaterThanThreshold",
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=0.05,
        TreatMissingData="notBreaching",
        AlarmActions=["arn:aws:sns:eu-west-1:123456789012:t"],
        Tags=[{"Key": "shepherd:rollout", "Value": "r-1"}],
        Metrics=[
            {"Id": "errors", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": "Invocation5XXErrors",
             "Dimensions": dims}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "calls", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": "Invocations",
             "Dimensions": dims}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "rate", "Expression": "errors / calls", "Label": "error rate", "ReturnData": True},
        ],
    )  # fmt: skip
    cloudwatch.set_alarm_state(
        AlarmName="churn-prod-errors", StateValue="ALARM", StateReason="by hand", StateReasonData='{"x": 1}'
    )
    minute = AT.replace(second=0)
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": minute, "Value": 120, "Unit": "Count"},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": minute,
             "StatisticValues": {"SampleCount": 3, "Sum": 9, "Minimum": 2, "Maximum": 4}},
            {"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": minute,
             "Values": [1000, 2000, 9000], "Counts": [50, 49, 1], "Unit": "Microseconds"},
        ],
    )  # fmt: skip


def observed(world: World) -> dict[str, Any]:
    """What the handlers and the CLI read, as they read it."""
    s3, sagemaker, cloudwatch = world.s3, boto3.client("sagemaker"), boto3.client("cloudwatch")
    listing = s3.list_object_versions(Bucket=world.bucket)
    versions = [
        (entry["Key"], entry["VersionId"], entry["LastModified"], entry.get("ETag"), entry["IsLatest"])
        for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", [])
    ]
    heads = {}
    for key, version_id, *_ in versions:
        try:
            head = s3.head_object(Bucket=world.bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
        except s3.exceptions.ClientError:
            continue  # a delete marker
        body = s3.get_object(Bucket=world.bucket, Key=key, VersionId=version_id)["Body"].read()
        heads[version_id] = {
            field: head.get(field)
            for field in ("ETag", "ContentLength", "ContentType", "Metadata", "ChecksumSHA256", "LastModified")
        } | {"body": body, "tags": s3.get_object_tagging(Bucket=world.bucket, Key=key, VersionId=version_id)["TagSet"]}
    items = world.dynamodb.scan(TableName=world.table)["Items"]
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    for alarm in alarms:
        alarm.pop("AlarmConfigurationUpdatedTimestamp", None)  # moto renders it as the time of the request
    tags = cloudwatch.list_tags_for_resource(ResourceARN=alarms[0]["AlarmArn"])["Tags"]
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "churn-v2"}]
    metrics = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {"Id": "p99", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": "ModelLatency",
             "Dimensions": dims}, "Period": 60, "Stat": "p99"}},
            {"Id": "calls", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": "Invocations",
             "Dimensions": dims}, "Period": 60, "Stat": "Sum"}},
            {"Id": "errors", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": "Invocation5XXErrors",
             "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}},
        ],
        StartTime=AT - timedelta(minutes=5),
        EndTime=AT + timedelta(minutes=5),
    )["MetricDataResults"]  # fmt: skip
    return {
        "versions": sorted(versions, key=str),
        "heads": heads,
        "items": items,
        "endpoint": {k: endpoint.get(k) for k in ("EndpointStatus", "EndpointConfigName", "ProductionVariants")},
        "configs": sagemaker.describe_endpoint_config(EndpointConfigName="cfg-1")["ProductionVariants"],
        "models": [sagemaker.describe_model(ModelName=n)["PrimaryContainer"] for n in ("churn-v1", "churn-v2")],
        "alarms": alarms,
        "alarm tags": tags,
        "metrics": [(r["Id"], r["Timestamps"], r["Values"]) for r in metrics],
    }


def test_a_saved_state_comes_back_as_the_handlers_and_the_cli_read_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # Given a world with history: versions, a delete marker, items, a canary at 10%, an alarm in ALARM, metrics
    with mock_aws():
        built = build_world()
        populate(built["world"])
        before = observed(built["world"])
        persistence.save(state, {"ArtifactBucketName": built["world"].bucket}, AT)

    # When a fresh emulator deploys the same resources and restores the state
    changes: list[alarm_changes.AlarmChange] = []
    alarm_changes.subscribe(changes.append)
    try:
        with mock_aws():
            rebuilt = build_world()
            uploads_heard(rebuilt)  # moto's s3:TestEvent, if any
            persistence.restore(state)

            # Then everything reads as before, S3 version ids included
            after = observed(rebuilt["world"])
            assert after == before
            assert before["endpoint"]["ProductionVariants"][1]["CurrentWeight"] == 0.1
            assert before["alarms"][0]["StateValue"] == "ALARM"
            assert [values for _id, _t, values in before["metrics"]] == [[2000.0], [120.0], [4.0]]
            assert len([v for v in before["versions"] if v[0] == KEY]) == 3  # two objects, one marker
            # and nothing was announced on the way in: no upload, no alarm state change
            assert uploads_heard(rebuilt) == []
            assert changes == []
    finally:
        alarm_changes.unsubscribe(changes.append)


def test_a_hostile_state_file_fails_validation_and_restores_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with mock_aws():
        build_world()
        persistence.save(state, {}, AT)
    # A document that names code to run (what a pickle would execute) is just an unknown shape here.
    hostile = {
        "format": "shepherd-local-state",
        "version": 1,
        "service": "s3",
        "partitions": [{"account": "123456789012", "partition": "aws", "buckets": [
            {"name": "acme-model-artifacts", "region": "eu-west-1", "versioning": "Enabled", "keys": [
                {"name": "x", "versions": [{"version_id": "v", "last_modified": "2026-01-01T00:00:00",
                 "body": "not base64!", "__reduce__": ["os.system", ["touch /tmp/pwned"]]}]}]}]}],
    }  # fmt: skip
    (state / "s3.json").write_text(json.dumps(hostile))
    with mock_aws():
        world = build_world()["world"]
        with pytest.raises(UnreadableState, match=r"refusing .*s3\.json.*--fresh"):
            persistence.restore(state)
        assert "Versions" not in world.s3.list_object_versions(Bucket=world.bucket)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x04\x95", "not JSON"),  # a pickle's first bytes
        (b'{"format": "shepherd-local-state", "version": 99, "service": "s3"}', "another version of shepherd"),
        (b'["shepherd-local-state"]', "not a saved shepherd local state"),
    ],
)
def test_a_state_of_another_format_is_refused_with_what_to_do(tmp_path: Path, content: bytes, message: str) -> None:
    state = tmp_path / "state"
    with mock_aws():
        persistence.save(state, {}, AT)
        (state / "dynamodb.json").write_bytes(content)
        with pytest.raises(UnreadableState, match=message) as refused:
            persistence.restore(state)
    assert "shepherd local up --fresh" in refused.value.message


def test_the_pickles_of_an_older_shepherd_are_refused_not_read(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "s3.pickle").write_bytes(b"\x80\x04\x95 not to be read")
    (state / "s3.pickle").chmod(0o600)

    with pytest.raises(UnreadableState, match=r"older shepherd.*--fresh"):
        persistence.restore(state)
    persistence.forget(state)
    assert list(state.iterdir()) == []


def test_an_item_that_is_not_dynamodb_json_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with mock_aws():
        world = build_world()["world"]
        persistence.save(state, {}, AT)
        document = json.loads((state / "dynamodb.json").read_text())
        document["regions"][0]["tables"][0]["items"] = [
            {"pk": {"S": "MODEL#churn"}, "sk": {"S": "VERSION#1"}, "status": {"M": {"x": {"S": {"py/object": "os"}}}}}
        ]
        (state / "dynamodb.json").write_text(json.dumps(document))

        with pytest.raises(UnreadableState, match="a S attribute cannot hold"):
            persistence.restore(state)
        assert world.dynamodb.scan(TableName=world.table)["Items"] == []
