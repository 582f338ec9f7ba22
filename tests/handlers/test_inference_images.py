"""Issue 20, point 2: images under control. Through the handlers, on moto, and the template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from shepherd import bootstrap
from tests.handlers.conftest import ROOT, SERVING_IMAGE, load_handler
from tests.handlers.lifecycle import ENDPOINT, promotion, registered_version
from tests.handlers.test_register_version import eventbridge_upload
from tests.unit.test_template_security import function_statements

register = load_handler("register_version")
promote = load_handler("start_rollout")
FOLDER = "models/churn-predictor/run-1"
OWN_ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
DIGEST = "sha256:" + "ab" * 32
TEMPLATE: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())


def upload_with_image(world, image: str) -> dict[str, Any]:
    world.s3.put_object(Bucket=world.bucket, Key=f"{FOLDER}/manifest.json", Body=json.dumps({"inference_image": image}))
    return eventbridge_upload(world, key=f"{FOLDER}/model.tar.gz")


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (f"{OWN_ECR}/churn-serving:2.1.1", "not pinned by digest"),
        (f"docker.io/someone/serving@{DIGEST}", "registry docker.io, which is not allowed"),
        (f"someone/serving@{DIGEST}", "registry docker.io, which is not allowed"),
        (f"999999999999.dkr.ecr.eu-west-1.amazonaws.com/serving@{DIGEST}", "not allowed"),
    ],
)
def test_a_manifest_with_an_unpinned_or_foreign_image_is_rejected_recorded_and_announced(
    world, lambda_context, image, reason
):
    response = register.lambda_handler(upload_with_image(world, image), lambda_context)

    assert response["results"][0]["result"] == "rejected"
    [rejected] = world.announcements("Model Artifact Rejected")
    assert rejected["code"] == "IMAGE_NOT_ALLOWED" and reason in rejected["reason"]
    stored = world.dynamodb.query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ARTIFACT#s3://{world.bucket}/{FOLDER}/model.tar.gz"}},
    )["Items"]
    assert [item["code"]["S"] for item in stored] == ["IMAGE_NOT_ALLOWED"]


@pytest.mark.parametrize(
    "image",
    [f"{OWN_ECR}/churn-serving@{DIGEST}", f"763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference@{DIGEST}"],
)
def test_a_digest_pinned_image_from_an_allowed_registry_registers_and_its_digest_is_announced(
    world, sagemaker, lambda_context, image
):
    from tests.handlers.lifecycle import approve
    from tests.handlers.test_approved_artifacts import approval

    assert register.lambda_handler(upload_with_image(world, image), lambda_context)["results"][0]["version"] == 1
    assert approve.lambda_handler(approval(), lambda_context)["result"] == "approved"

    [approved] = world.announcements("Model Version Approved")
    assert approved["inference_image"] == image and approved["image_digest"] == DIGEST


def test_the_rule_is_checked_again_at_promotion_and_a_refusal_leaves_nothing_locked(
    world, sagemaker, lambda_context, monkeypatch
):
    # Given a version registered while the rule was relaxed for development
    monkeypatch.setenv("REQUIRE_IMAGE_DIGEST", "false")
    with bootstrap.wired(bootstrap.Container()):
        register.lambda_handler(upload_with_image(world, f"{OWN_ECR}/churn-serving:latest"), lambda_context)
    monkeypatch.setenv("REQUIRE_IMAGE_DIGEST", "true")
    from tests.handlers.lifecycle import approve
    from tests.handlers.test_approved_artifacts import approval

    assert approve.lambda_handler(approval(), lambda_context)["result"] == "approved"

    # When it is promoted under the stack's rule
    response = promote.lambda_handler(promotion(1, {"type": "all_at_once"}), lambda_context)

    # Then the promotion is refused, recorded and announced, and the endpoint is not locked
    assert response["result"] == "rejected" and "not pinned by digest" in response["reason"]
    [rejected] = world.announcements("Promotion Rejected")
    assert "its manifest's inference image" in rejected["reason"]
    lock = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "LOCK"}}
    )
    assert "Item" not in lock
    refusals = world.dynamodb.query(
        TableName=world.table,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :r",
        ExpressionAttributeValues={":r": {"S": "REFUSALS"}},
    )["Items"]
    assert len(refusals) == 1


def test_a_default_image_that_is_not_pinned_is_refused_naming_the_parameter(
    world, sagemaker, lambda_context, monkeypatch
):
    monkeypatch.setenv("DEFAULT_INFERENCE_IMAGE", f"{OWN_ECR}/serve:1")
    registered_version(world, lambda_context, 1)  # no manifest: the stack's default image

    response = promote.lambda_handler(promotion(1, {"type": "all_at_once"}), lambda_context)

    assert response["result"] == "rejected"
    assert "DefaultInferenceImage" in response["reason"] and "not pinned by digest" in response["reason"]


def test_without_any_image_a_promotion_is_refused_saying_so(world, sagemaker, lambda_context, monkeypatch):
    monkeypatch.setenv("DEFAULT_INFERENCE_IMAGE", "")
    registered_version(world, lambda_context, 1)

    response = promote.lambda_handler(promotion(1, {"type": "all_at_once"}), lambda_context)

    assert response["result"] == "rejected" and "has no DefaultInferenceImage" in response["reason"]


def test_the_default_image_used_by_the_tests_is_allowed():
    assert SERVING_IMAGE.startswith(OWN_ECR) and "@sha256:" in SERVING_IMAGE


# --- the template --------------------------------------------------------------------------------


def test_the_template_has_the_image_parameters_with_safe_defaults():
    parameters = TEMPLATE["Parameters"]
    assert parameters["AllowedImageRegistries"]["Type"] == "CommaDelimitedList"
    assert parameters["RequireImageDigest"]["Default"] == "true"
    assert parameters["NetworkIsolation"]["Default"] == "true"
    assert parameters["DefaultInferenceImage"]["Default"] == ""  # no mutable tag by default
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["ALLOWED_IMAGE_REGISTRIES"] == {"Fn::Join": [",", {"Ref": "AllowedImageRegistries"}]}
    assert variables["REQUIRE_IMAGE_DIGEST"] == {"Ref": "RequireImageDigest"}
    assert variables["NETWORK_ISOLATION"] == {"Ref": "NetworkIsolation"}


@pytest.mark.parametrize(
    ("function", "sid"), [("StartRolloutFunction", "CreateCandidateModels"), ("RollbackFunction", "RedeployModels")]
)
def test_iam_refuses_a_model_without_network_isolation_when_the_parameter_is_on(function, sid):
    [statement] = [s for s in function_statements(TEMPLATE, function) if s.get("Sid") == sid]
    assert statement["Action"] == "sagemaker:CreateModel"
    assert statement["Condition"]["Bool"] == {
        "Fn::If": ["IsNetworkIsolated", {"sagemaker:NetworkIsolation": "true"}, {"Ref": "AWS::NoValue"}]
    }
    assert TEMPLATE["Conditions"]["IsNetworkIsolated"] == {"Fn::Equals": [{"Ref": "NetworkIsolation"}, "true"]}
