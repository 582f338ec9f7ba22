"""A moto world with Shepherd's resources, and the probes tests use to see what a user would see."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import decode

from shepherd.contracts import ANNOUNCEMENTS

ROOT = Path(__file__).resolve().parents[1]
ANNOUNCEMENT_TYPES = {kind.DETAIL_TYPE: kind for kind in ANNOUNCEMENTS}
# A model.tar.gz must be gzip: Shepherd reads its first two bytes (mtime 0: the same bytes every run).
MODEL_BYTES = gzip.compress(b"model-bytes", mtime=0)


def template_resource(logical_id: str) -> dict[str, Any]:
    """A resource's properties as template.yaml declares them: tests build what the template builds."""
    template, errors = decode(str(ROOT / "template.yaml"))
    assert not errors and template is not None, errors
    return dict(template["Resources"][logical_id]["Properties"])


@dataclass
class World:
    bucket: str = "acme-model-artifacts"
    table: str = "shepherd-registry"
    bus: str = "shepherd-test"
    s3: Any = None
    dynamodb: Any = None
    events: Any = None
    sqs: Any = None
    queue_url: str = ""
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def create(cls) -> World:
        world = cls(
            s3=boto3.client("s3"),
            dynamodb=boto3.client("dynamodb"),
            events=boto3.client("events"),
            sqs=boto3.client("sqs"),
        )
        world.s3.create_bucket(Bucket=world.bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        world.s3.put_bucket_versioning(Bucket=world.bucket, VersioningConfiguration={"Status": "Enabled"})
        table = template_resource("RegistryTable")
        world.dynamodb.create_table(
            TableName=world.table,
            BillingMode=table["BillingMode"],
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
        )
        world.events.create_event_bus(Name=world.bus)
        # Everything Shepherd announces lands in a queue the tests read, as a subscriber would.
        world.queue_url = world.sqs.create_queue(QueueName="announcements")["QueueUrl"]
        queue_arn = world.sqs.get_queue_attributes(QueueUrl=world.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        world.events.put_rule(Name="all-announcements", EventBusName=world.bus, EventPattern='{"source": ["shepherd"]}')
        world.events.put_targets(
            Rule="all-announcements", EventBusName=world.bus, Targets=[{"Id": "q", "Arn": queue_arn}]
        )
        return world

    def environment(self) -> dict[str, str]:
        return {
            "REGISTRY_TABLE_NAME": self.table,
            "EVENT_BUS_NAME": self.bus,
            "ARTIFACT_BUCKET_NAME": self.bucket,
            # The template's defaults: this account's ECR and the region's Deep Learning Containers.
            "ALLOWED_IMAGE_REGISTRIES": "",
            "REQUIRE_IMAGE_DIGEST": "true",
            "STACK_ACCOUNT_ID": "123456789012",
            "STACK_REGION": "eu-west-1",
        }

    def upload(self, key: str, body: bytes = MODEL_BYTES, metadata: dict[str, str] | None = None) -> str:
        response = self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {}, ChecksumAlgorithm="SHA256"
        )
        return str(response["VersionId"])

    def announcements(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Every announcement so far (validated against its contract), optionally of one detail-type."""
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                event = json.loads(message["Body"])
                ANNOUNCEMENT_TYPES[event["detail-type"]].model_validate(event["detail"])
                self.seen.append((event["detail-type"], event["detail"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [detail for kind, detail in self.seen if detail_type in (None, kind)]
