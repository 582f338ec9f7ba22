"""The IAM proof's evaluator, mapping and template roles, each on what it must refuse.

The proof (tests/iam/) is only as good as these: an evaluator that allowed everything would pass
every handler test. Each case here is one rule of IAM's evaluation the proof relies on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.iam.calls import Tags, rows
from tests.iam.evaluator import Request, UnsupportedPolicy, evaluate, statement
from tests.iam.proof import Proof
from tests.iam.recorder import Call
from tests.iam.template_roles import function_roles

ROOT = Path(__file__).resolve().parents[2]
TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/shepherd-registry"


def allowed(documents: list[dict[str, Any]], request: Request) -> bool:
    return evaluate([statement(f"p/{i}", d) for i, d in enumerate(documents)], request).allowed


def allow(**fields: Any) -> dict[str, Any]:
    return {"Effect": "Allow", **fields}


def test_actions_match_with_wildcards_case_insensitively_and_notaction_inverts():
    query = Request("dynamodb:Query", TABLE)
    assert allowed([allow(Action="dynamodb:*", Resource="*")], query)
    assert allowed([allow(Action="DynamoDB:query", Resource="*")], query)
    assert not allowed([allow(Action="dynamodb:Get*", Resource="*")], query)
    assert not allowed([allow(NotAction="dynamodb:*", Resource="*")], query)
    assert allowed([allow(NotAction="s3:*", Resource="*")], query)


def test_a_grant_on_the_table_does_not_cover_its_index():
    on_index = Request("dynamodb:Query", f"{TABLE}/index/gsi1")
    assert not allowed([allow(Action="dynamodb:Query", Resource=TABLE)], on_index)
    assert allowed([allow(Action="dynamodb:Query", Resource=f"{TABLE}/index/*")], on_index)
    assert not allowed([allow(Action="dynamodb:Query", NotResource=f"{TABLE}/index/*")], on_index)


def test_an_explicit_deny_wins():
    request = Request("s3:GetObject", "arn:aws:s3:::b/models/m")
    documents = [allow(Action="s3:*", Resource="*"), {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]
    assert not allowed(documents, request)


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEquals": {"events:source": "shepherd"}}, {"events:source": "shepherd"}, True),
        ({"StringEquals": {"events:source": "shepherd"}}, {"events:source": "acme"}, False),
        ({"StringEquals": {"events:source": "shepherd"}}, {}, False),  # absent: no match
        ({"StringNotEquals": {"events:source": "shepherd"}}, {}, True),  # negated and absent: a match
        ({"StringEqualsIfExists": {"events:source": "shepherd"}}, {}, True),
        ({"StringLike": {"s3:prefix": "models/*"}}, {"s3:prefix": "models/churn"}, True),
        ({"StringLike": {"s3:prefix": "models/*"}}, {"s3:prefix": "other/churn"}, False),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:1:alarm:*"}},
            {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:1:alarm:a"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:1:alarm:*"}},
            {"aws:SourceArn": "arn:aws:sns:eu-west-1:1:alarm"},
            False,
        ),
        ({"Bool": {"sagemaker:NetworkIsolation": "true"}}, {"sagemaker:NetworkIsolation": True}, True),
        ({"Bool": {"sagemaker:NetworkIsolation": "true"}}, {"sagemaker:NetworkIsolation": False}, False),
        ({"Null": {"aws:ResourceTag/shepherd:stack": "true"}}, {}, True),
        ({"Null": {"aws:ResourceTag/shepherd:stack": "false"}}, {}, False),
        # ForAllValues: every value in the set, and true for a request without the key at all
        (
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["MODEL#*"]}},
            {"dynamodb:LeadingKeys": ("MODEL#a",)},
            True,
        ),
        (
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["MODEL#*"]}},
            {"dynamodb:LeadingKeys": ("MODEL#a", "ARTIFACT#b")},
            False,
        ),
        ({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["MODEL#*"]}}, {}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ("b", "a")}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        (
            {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.m5.large"]}},
            {"sagemaker:InstanceTypes": ("ml.m5.large", "ml.p4d.24xlarge")},
            False,
        ),
    ],
)
def test_conditions(condition, context, expected):
    request = Request("x:Y", "*", context)
    assert allowed([allow(Action="x:Y", Resource="*", Condition=condition)], request) is expected


def test_what_it_does_not_implement_is_refused_not_guessed():
    with pytest.raises(UnsupportedPolicy):
        allowed(
            [allow(Action="x:Y", Resource="*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020"}})],
            Request("x:Y", "*", {"aws:CurrentTime": "2021"}),
        )
    with pytest.raises(UnsupportedPolicy):  # a plain operator on a multivalued key
        allowed(
            [allow(Action="x:Y", Resource="*", Condition={"StringEquals": {"aws:TagKeys": "a"}})],
            Request("x:Y", "*", {"aws:TagKeys": ("a",)}),
        )


def test_calls_map_to_what_iam_authorises():
    table = rows(Tags())
    query = {
        "TableName": "t",
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :a",
        "ExpressionAttributeValues": {":a": {"S": "ACTIVE_ROLLOUTS"}},
    }
    assert table[("dynamodb", "Query")](query, "eu-west-1") == [
        Request(
            "dynamodb:Query",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/t/index/gsi1",
            {"dynamodb:LeadingKeys": ("ACTIVE_ROLLOUTS",)},
        )
    ]
    transaction = {
        "TransactItems": [
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "ENDPOINT#e"}, "sk": {"S": "ENDPOINT"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "AUDIT#x"}, "sk": {"S": "1"}, "gsi1pk": {"S": "OUTBOX"}}}},
        ]
    }
    assert [(r.action, r.context) for r in table[("dynamodb", "TransactWriteItems")](transaction, "eu-west-1")] == [
        ("dynamodb:ConditionCheckItem", {"dynamodb:LeadingKeys": ("ENDPOINT#e",)}),
        ("dynamodb:PutItem", {"dynamodb:LeadingKeys": ("AUDIT#x",)}),  # the table's key, not gsi1pk
    ]
    read = table[("s3", "HeadObject")]({"Bucket": "b", "Key": "models/k", "VersionId": "v"}, "eu-west-1")
    assert read == [Request("s3:GetObjectVersion", "arn:aws:s3:::b/models/k")]
    model = {
        "ModelName": "M",
        "ExecutionRoleArn": "arn:aws:iam::1:role/r",
        "Tags": [{"Key": "shepherd:stack", "Value": "s"}],
    }
    assert [(r.action, r.resource) for r in table[("sagemaker", "CreateModel")](model, "eu-west-1")] == [
        ("sagemaker:CreateModel", "arn:aws:sagemaker:eu-west-1:123456789012:model/m"),
        ("sagemaker:AddTags", "arn:aws:sagemaker:eu-west-1:123456789012:model/m"),
        ("iam:PassRole", "arn:aws:iam::1:role/r"),
    ]
    entries = {
        "Entries": [
            {"EventBusName": "bus", "Source": "shepherd", "DetailType": "A"},
            {"EventBusName": "bus", "Source": "shepherd", "DetailType": "B"},
        ]
    }
    assert [r.context["events:detail-type"] for r in table[("events", "PutEvents")](entries, "eu-west-1")] == ["A", "B"]


def without_statement(tmp_path: Path, function: str, sid: str) -> Path:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    policies = template["Resources"][function]["Properties"].get("Policies")
    if policies is None:  # the function names its own role
        role = template["Resources"][f"{function}Role"]["Properties"]
        policies = [p["PolicyDocument"] for p in role["Policies"]]
    for policy in policies:
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]
    path = tmp_path / "template.yaml"
    import json

    path.write_text(json.dumps(template))
    return path


def test_the_rollback_may_query_the_index_and_fails_without_its_grant(tmp_path):
    """The issue's defect: the rollback function queries gsi1; its role once allowed only the table."""
    query = Call(
        "rollback",
        "dynamodb:Query",
        (Request("dynamodb:Query", f"{TABLE}/index/gsi1", {"dynamodb:LeadingKeys": ("ACTIVE_ROLLOUTS",)}),),
    )
    assert Proof().add([query]) == []
    without = function_roles.__wrapped__(without_statement(tmp_path, "RollbackFunction", "FindActiveRollouts"))
    assert "no statement allows it" in Proof().add([query], without)[0]


def test_a_grant_no_call_uses_is_reported():
    roles = function_roles()
    proof = Proof()
    unused = proof.unused(roles)
    assert any("RollbackFunction" in line and "iam:PassRole" in line for line in unused)
    for folder, role in roles.items():  # once everything is used, nothing is reported
        for s in role.statements:
            proof.used[folder].update((s.grant, a) for a in s.actions)
    assert proof.unused(roles) == []


def test_a_set_operator_on_a_key_the_calls_carry_as_one_value_is_reported():
    roles = function_roles()
    proof = Proof()
    proof.key_kinds["rollback"].add(("dynamodb:LeadingKeys", "multi"))
    assert proof.misused_set_operators(roles) == []
    proof.key_kinds["rollback"].add(("dynamodb:LeadingKeys", "single"))
    assert any("dynamodb:LeadingKeys" in line for line in proof.misused_set_operators(roles))
