"""What IAM authorises for each AWS call the functions make: one row per operation.

A row turns the call's parameters into the requests IAM evaluates (action, resource ARN, the
condition keys the call carries), per the Service Authorization Reference: a DynamoDB Query on an
index is authorised on the index's ARN; a TransactWriteItems item by item, each as its own action
(a ConditionCheck as dynamodb:ConditionCheckItem); a BatchGetItem table by table with every key's
partition; an S3 read of a version as s3:GetObjectVersion, a CopyObject as a read of its source and a
PutObject of its destination, a delete of a version as s3:DeleteObjectVersion; a
SageMaker Create* with tags also as sagemaker:AddTags, and CreateModel as iam:PassRole of its
execution role; a PutEvents entry by entry, each with its events:source and events:detail-type.

A call without a row fails the suite (`UnmappedCall`): a new call cannot slip by unproven. Adding
one is adding its row here.

Single-valued keys are strings, multivalued keys tuples: the proof also flags a set operator
(ForAllValues, ForAnyValue) on a key every call carries as a string (docs/design.md, "IAM").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.iam.evaluator import ContextValue, Request
from tests.world import template_resource

ACCOUNT = "123456789012"
Params = Mapping[str, Any]
Row = Callable[[Params, str], list[Request]]


class UnmappedCall(Exception):
    """A call this table cannot say how IAM authorises."""


# --- DynamoDB ------------------------------------------------------------------------------------------
# dynamodb:LeadingKeys is the partition key's value: the table's for an item, the index's for a Query
# on an index (the key schemas of template.yaml's RegistryTable).
TABLE = template_resource("RegistryTable")
PARTITION_KEY = {
    None: next(k["AttributeName"] for k in TABLE["KeySchema"] if k["KeyType"] == "HASH"),
    **{
        index["IndexName"]: next(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH")
        for index in TABLE.get("GlobalSecondaryIndexes", [])
    },
}


def _table_arn(region: str, table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def _leading_keys(key: Mapping[str, Any]) -> dict[str, ContextValue]:
    return {"dynamodb:LeadingKeys": (key[PARTITION_KEY[None]]["S"],)}


def _item(action: str) -> Row:
    def row(params: Params, region: str) -> list[Request]:
        key = params.get("Key", params.get("Item", {}))
        return [Request(f"dynamodb:{action}", _table_arn(region, params["TableName"]), _leading_keys(key))]

    return row


def _query(params: Params, region: str) -> list[Request]:
    # The partition key's value, from `<partition key> = :value` in the key condition.
    values = params.get("ExpressionAttributeValues", {})
    names = params.get("ExpressionAttributeNames", {})
    index = params.get("IndexName")
    leading: dict[str, ContextValue] = {}
    for name, placeholder in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params["KeyConditionExpression"]):
        if names.get(name, name) == PARTITION_KEY[index]:
            leading = {"dynamodb:LeadingKeys": (values[placeholder]["S"],)}
    return [Request("dynamodb:Query", _table_arn(region, params["TableName"], index), leading)]


TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _transact_write(params: Params, region: str) -> list[Request]:
    return [
        request
        for item in params["TransactItems"]
        for kind, body in item.items()
        for request in _item(TRANSACT_ITEM_ACTIONS[kind])(body, region)
    ]


def _transact_get(params: Params, region: str) -> list[Request]:
    return [request for item in params["TransactItems"] for request in _item("GetItem")(item["Get"], region)]


def _batch_get(params: Params, region: str) -> list[Request]:
    # One authorisation a table, with every partition key the batch names.
    return [
        Request(
            "dynamodb:BatchGetItem",
            _table_arn(region, table),
            {"dynamodb:LeadingKeys": tuple(dict.fromkeys(key[PARTITION_KEY[None]]["S"] for key in asked["Keys"]))},
        )
        for table, asked in params["RequestItems"].items()
    ]


# --- S3 ------------------------------------------------------------------------------------------------


def _object_read(params: Params, region: str) -> list[Request]:
    # HeadObject is authorised as GetObject; with a VersionId both are GetObjectVersion.
    action = "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
    return [Request(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _copy(params: Params, region: str) -> list[Request]:
    """CopyObject reads the source (s3:GetObjectVersion for a given version, s3:GetObject for the
    current one) and writes the destination (s3:PutObject). Tags copied from the source (the default
    TaggingDirective COPY) need the source's tagging read and s3:PutObjectTagging; so do tags given."""
    source = params["CopySource"]
    if isinstance(source, str):
        path, _, query = source.lstrip("/").partition("?versionId=")
        bucket, _, key = path.partition("/")
        source = {"Bucket": bucket, "Key": key, **({"VersionId": query} if query else {})}
    versioned = bool(source.get("VersionId"))
    source_arn = _object_arn(source["Bucket"], source["Key"])
    destination = _object_arn(params["Bucket"], params["Key"])
    requests = [
        Request("s3:GetObjectVersion" if versioned else "s3:GetObject", source_arn),
        Request("s3:PutObject", destination),
    ]
    if params.get("TaggingDirective", "COPY") == "COPY":
        requests.append(Request("s3:GetObjectVersionTagging" if versioned else "s3:GetObjectTagging", source_arn))
    if params.get("TaggingDirective", "COPY") == "COPY" or params.get("Tagging"):
        requests.append(Request("s3:PutObjectTagging", destination))
    return requests


def _delete_object(params: Params, region: str) -> list[Request]:
    action = "s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject"
    return [Request(action, _object_arn(params["Bucket"], params["Key"]))]


def _list_versions(params: Params, region: str) -> list[Request]:
    context: dict[str, ContextValue] = {"s3:prefix": params["Prefix"]} if "Prefix" in params else {}
    return [Request("s3:ListBucketVersions", f"arn:aws:s3:::{params['Bucket']}", context)]


# --- SageMaker -----------------------------------------------------------------------------------------
# SageMaker lower-cases a resource's name in its ARN.


def _sagemaker_arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:{kind}/{name.lower()}"


def _request_tags(params: Params) -> dict[str, ContextValue]:
    tags = params.get("Tags", [])
    context: dict[str, ContextValue] = {f"aws:RequestTag/{tag['Key']}": tag["Value"] for tag in tags}
    if tags:
        context["aws:TagKeys"] = tuple(tag["Key"] for tag in tags)
    return context


def _create(kind: str, name_param: str, extra: Callable[[Params], dict[str, ContextValue]] | None = None) -> Row:
    def row(params: Params, region: str) -> list[Request]:
        arn = _sagemaker_arn(region, kind, params[name_param])
        context = {**_request_tags(params), **(extra(params) if extra else {})}
        requests = [Request(f"sagemaker:Create{kind.title().replace('-', '')}", arn, context)]
        if params.get("Tags"):  # tagging at creation is authorised as AddTags too
            requests.append(Request("sagemaker:AddTags", arn, _request_tags(params)))
        return requests

    return row


def _create_model(params: Params, region: str) -> list[Request]:
    def keys(p: Params) -> dict[str, ContextValue]:
        return {"sagemaker:NetworkIsolation": bool(p.get("EnableNetworkIsolation", False))}

    requests = _create("model", "ModelName", keys)(params, region)
    passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    return [*requests, Request("iam:PassRole", params["ExecutionRoleArn"], passed)]


def _create_endpoint_config(params: Params, region: str) -> list[Request]:
    def keys(p: Params) -> dict[str, ContextValue]:
        types = tuple(v["InstanceType"] for v in p["ProductionVariants"] if "InstanceType" in v)
        return {"sagemaker:InstanceTypes": types} if types else {}

    return _create("endpoint-config", "EndpointConfigName", keys)(params, region)


class Tags:
    """Each SageMaker resource's tags as the recorded calls set them: aws:ResourceTag/<key>."""

    def __init__(self) -> None:
        self.by_arn: dict[str, dict[str, str]] = {}

    def context(self, arn: str) -> dict[str, ContextValue]:
        return {f"aws:ResourceTag/{key}": value for key, value in self.by_arn.get(arn, {}).items()}

    def remember(self, requests: list[Request]) -> None:
        for request in requests:
            if request.action.startswith("sagemaker:Create"):
                prefix = "aws:RequestTag/"
                tags = {k.removeprefix(prefix): str(v) for k, v in request.context.items() if k.startswith(prefix)}
                self.by_arn[request.resource] = tags


def _on_tagged(
    kind: str, name_param: str, action: str, also: tuple[tuple[str, str], ...] = ()
) -> Callable[[Tags], Row]:
    def with_tags(tags: Tags) -> Row:
        def row(params: Params, region: str) -> list[Request]:
            targets = [(kind, params[name_param]), *((k, params[p]) for k, p in also)]
            return [
                Request(f"sagemaker:{action}", arn, tags.context(arn))
                for arn in (_sagemaker_arn(region, k, name) for k, name in targets)
            ]

        return row

    return with_tags


def _describe(kind: str, name_param: str, action: str) -> Row:
    def row(params: Params, region: str) -> list[Request]:
        return [Request(f"sagemaker:{action}", _sagemaker_arn(region, kind, params[name_param]))]

    return row


# --- CloudWatch and EventBridge ------------------------------------------------------------------------


def _alarm_arn(region: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{name}"


def _alarms(action: str) -> Row:
    def row(params: Params, region: str) -> list[Request]:
        names = params.get("AlarmNames") or ([params["AlarmName"]] if "AlarmName" in params else ["*"])
        return [Request(f"cloudwatch:{action}", _alarm_arn(region, name), _request_tags(params)) for name in names]

    return row


def _put_events(params: Params, region: str) -> list[Request]:
    def bus_arn(bus: str) -> str:
        return bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{bus}"

    return [
        Request(
            "events:PutEvents",
            bus_arn(entry.get("EventBusName", "default")),
            {"events:source": entry["Source"], "events:detail-type": entry["DetailType"]},
        )
        for entry in params["Entries"]
    ]


# --- Application Auto Scaling --------------------------------------------------------------------------
# A scalable target's ARN ends in an id Application Auto Scaling makes up (not the variant's resource id),
# so no call names it: the grant is on every scalable target, and what the calls may touch is decided
# by the code (only the rollout's own variants). Describe* have no resource-level permissions ("*").
# Per the Application Auto Scaling guide ("Permissions required for API actions on target services and
# CloudWatch"), registering a SageMaker variant also needs the caller's sagemaker:DescribeEndpoint and
# sagemaker:UpdateEndpointWeightsAndCapacities on the endpoint and, the first time in an account,
# iam:CreateServiceLinkedRole for its service-linked role; a target-tracking policy's alarms
# (TargetTracking-<resource id>-AlarmHigh|Low-<uuid>) are put, read and deleted as the caller.
SCALABLE_TARGET = "arn:aws:application-autoscaling:{region}:" + ACCOUNT + ":scalable-target/made-up-id"
SCALING_ROLE = (
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def _endpoint_of(params: Params) -> str:
    return str(params["ResourceId"]).split("/")[1]  # endpoint/NAME/variant/VARIANT


def _tracking_alarms(params: Params, region: str, *actions: str) -> list[Request]:
    arn = _alarm_arn(region, f"TargetTracking-{params['ResourceId']}-AlarmHigh-made-up-uuid")
    return [Request(f"cloudwatch:{action}", arn) for action in actions]


def _scaling_read(action: str) -> Row:
    return lambda params, region: [Request(f"application-autoscaling:{action}", "*")]


def _register_target(tags: Tags) -> Row:
    def row(params: Params, region: str) -> list[Request]:
        endpoint = _sagemaker_arn(region, "endpoint", _endpoint_of(params))
        return [
            Request("application-autoscaling:RegisterScalableTarget", SCALABLE_TARGET.format(region=region)),
            Request("iam:CreateServiceLinkedRole", SCALING_ROLE, {"iam:AWSServiceName": SCALING_ROLE.split("/")[2]}),
            Request("sagemaker:DescribeEndpoint", endpoint),
            Request("sagemaker:UpdateEndpointWeightsAndCapacities", endpoint, tags.context(endpoint)),
        ]

    return row


def _put_policy(params: Params, region: str) -> list[Request]:
    return [
        Request("application-autoscaling:PutScalingPolicy", SCALABLE_TARGET.format(region=region)),
        *_tracking_alarms(params, region, "PutMetricAlarm", "DescribeAlarms", "DeleteAlarms"),
    ]


def _deregister_target(params: Params, region: str) -> list[Request]:
    return [
        Request("application-autoscaling:DeregisterScalableTarget", SCALABLE_TARGET.format(region=region)),
        *_tracking_alarms(params, region, "DeleteAlarms"),
    ]


# --- SSM -----------------------------------------------------------------------------------------------
def _parameter_read(params: Params, region: str) -> list[Request]:
    # A parameter's ARN drops the leading "/" of a path name: .../parameter/acme/prices.
    name = params["Name"].lstrip("/")
    return [Request("ssm:GetParameter", f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{name}")]


def rows(tags: Tags) -> dict[tuple[str, str], Row]:
    """(botocore service name, operation) -> its row. Tag-conditioned rows read `tags`."""
    return {
        ("dynamodb", "GetItem"): _item("GetItem"),
        ("dynamodb", "PutItem"): _item("PutItem"),
        ("dynamodb", "UpdateItem"): _item("UpdateItem"),
        ("dynamodb", "DeleteItem"): _item("DeleteItem"),
        ("dynamodb", "Query"): _query,
        ("dynamodb", "TransactWriteItems"): _transact_write,
        ("dynamodb", "TransactGetItems"): _transact_get,
        ("dynamodb", "BatchGetItem"): _batch_get,
        ("s3", "HeadObject"): _object_read,
        ("s3", "GetObject"): _object_read,
        ("s3", "ListObjectVersions"): _list_versions,
        ("s3", "CopyObject"): _copy,
        ("s3", "DeleteObject"): _delete_object,
        ("sagemaker", "DescribeEndpoint"): _describe("endpoint", "EndpointName", "DescribeEndpoint"),
        ("sagemaker", "DescribeEndpointConfig"): _describe(
            "endpoint-config", "EndpointConfigName", "DescribeEndpointConfig"
        ),
        ("sagemaker", "DescribeModel"): _describe("model", "ModelName", "DescribeModel"),
        ("sagemaker", "CreateModel"): _create_model,
        ("sagemaker", "CreateEndpointConfig"): _create_endpoint_config,
        ("sagemaker", "CreateEndpoint"): _create("endpoint", "EndpointName"),
        # UpdateEndpoint is authorised on the endpoint and on the config it moves to.
        ("sagemaker", "UpdateEndpoint"): _on_tagged(
            "endpoint", "EndpointName", "UpdateEndpoint", (("endpoint-config", "EndpointConfigName"),)
        )(tags),
        ("sagemaker", "UpdateEndpointWeightsAndCapacities"): _on_tagged(
            "endpoint", "EndpointName", "UpdateEndpointWeightsAndCapacities"
        )(tags),
        ("sagemaker", "DeleteEndpoint"): _on_tagged("endpoint", "EndpointName", "DeleteEndpoint")(tags),
        ("sagemaker", "DeleteEndpointConfig"): _on_tagged(
            "endpoint-config", "EndpointConfigName", "DeleteEndpointConfig"
        )(tags),
        ("sagemaker", "DeleteModel"): _on_tagged("model", "ModelName", "DeleteModel")(tags),
        ("cloudwatch", "DescribeAlarms"): _alarms("DescribeAlarms"),
        ("cloudwatch", "PutMetricAlarm"): _alarms("PutMetricAlarm"),
        ("cloudwatch", "DeleteAlarms"): _alarms("DeleteAlarms"),
        # GetMetricData has no resource-level permissions: "*" is its only resource.
        ("cloudwatch", "GetMetricData"): lambda params, region: [Request("cloudwatch:GetMetricData", "*")],
        ("events", "PutEvents"): _put_events,
        ("application-autoscaling", "DescribeScalableTargets"): _scaling_read("DescribeScalableTargets"),
        ("application-autoscaling", "DescribeScalingPolicies"): _scaling_read("DescribeScalingPolicies"),
        ("application-autoscaling", "RegisterScalableTarget"): _register_target(tags),
        ("application-autoscaling", "PutScalingPolicy"): _put_policy,
        ("application-autoscaling", "DeregisterScalableTarget"): _deregister_target,
        ("ssm", "GetParameter"): _parameter_read,
    }
