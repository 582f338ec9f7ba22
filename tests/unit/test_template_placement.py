"""Where instances may be placed, in template.yaml: the stack's parameters reach the functions, and IAM
lets the functions create endpoint configs only of the allowed instance types (issue 20, point 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from tests.unit.test_template_security import function_statements

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
ALLOWED = {"Ref": "AllowedInstanceTypes"}


def statements_allowing(action: str) -> list[tuple[str, dict[str, Any]]]:
    """Each function's statements (in its own role) that grant `action`."""
    found = []
    for name, resource in TEMPLATE["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for statement in function_statements(TEMPLATE, name):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                found.append((name, statement))
    return found


def test_the_parameters_exist_with_defaults_that_deploy_the_defaults():
    parameters = TEMPLATE["Parameters"]
    assert parameters["AllowedInstanceTypes"]["Type"] == "CommaDelimitedList"
    allowed = parameters["AllowedInstanceTypes"]["Default"].split(",")
    assert "ml.m5.large" in allowed  # the instance type of a first deployment that names none
    assert all(kind.startswith("ml.") for kind in allowed)
    assert parameters["MaxInstanceCount"]["Type"] == "Number"
    assert parameters["MaxInstanceCount"]["Default"] >= 1


def test_every_function_is_told_the_limits():
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["ALLOWED_INSTANCE_TYPES"] == {"Fn::Join": [",", ALLOWED]}
    assert variables["MAX_INSTANCE_COUNT"] == {"Ref": "MaxInstanceCount"}


def test_endpoint_configs_can_be_created_only_of_the_allowed_instance_types():
    granted = statements_allowing("sagemaker:CreateEndpointConfig")
    assert [function for function, _ in granted] == ["RolloutControllerFunction"]
    for _, statement in granted:
        # Alone in its statement: the Null condition would deny CreateEndpoint and AddTags, which carry
        # no instance types.
        assert statement["Action"] in ("sagemaker:CreateEndpointConfig", ["sagemaker:CreateEndpointConfig"])
        condition = statement["Condition"]
        assert condition["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"] == ALLOWED
        # ForAllValues is true of a request without the key (a serverless config): it must be there.
        assert condition["Null"]["sagemaker:InstanceTypes"] == "false"
        # Still only with the stack's tag (test_template_security checks every create for it).
        assert condition["StringEquals"]["aws:RequestTag/shepherd:stack"] == {"Ref": "AWS::StackName"}
