"""Handler tests: real event shapes from events/ through each function's lambda_handler, on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from samtranslator.yaml_helper import yaml_parse

from shepherd_cli.local import emulator, lambda_runtime
from tests.iam.proof import PROOF
from tests.iam.recorder import RECORDER
from tests.iam.template_roles import function_roles

ROOT = Path(__file__).resolve().parents[2]
ROLLBACK_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:shepherd-test-rollback"
SERVING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve@sha256:" + "5e" * 32
# The stack's default AllowedInstanceTypes, as the template gives it to the functions.
ALLOWED_INSTANCE_TYPES = str(
    yaml_parse((ROOT / "template.yaml").read_text())["Parameters"]["AllowedInstanceTypes"]["Default"]
)


def load_handler(function: str) -> ModuleType:
    """functions/<function>/app.py, loaded as local mode loads it (every function's module is `app`),
    its handler recording every AWS call it makes for the IAM proof (tests/iam/)."""
    module = lambda_runtime.load_handler(ROOT / "functions" / function / "app.py", f"{function}_app")
    module.lambda_handler = RECORDER.handler(function_roles()[function], module.lambda_handler)
    return module


@pytest.fixture(autouse=True)
def calls_allowed_by_the_roles(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every call this test's handlers made is allowed by its function's role in template.yaml
    (moto enforces no IAM: without this a denied call passes every test)."""
    RECORDER.reset()  # also forgets what tests elsewhere (tests/integration) recorded through these handlers
    yield
    PROOF.modules.add(request.node.nodeid.split("::", 1)[0])
    problems = RECORDER.unmapped + PROOF.add(RECORDER.calls)
    if problems:
        pytest.fail("IAM denies calls this test made:\n" + "\n".join(sorted(set(problems))), pytrace=False)


def sample_event(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "events" / name).read_text()))


@pytest.fixture
def lambda_context() -> lambda_runtime.LambdaContext:
    return lambda_runtime.LambdaContext(aws_request_id="00000000-0000-0000-0000-000000000000")


@pytest.fixture
def sagemaker(world, monkeypatch) -> Iterator[Any]:
    emulator.install()
    emulator.reset()
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="shepherd-sagemaker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    monkeypatch.setenv("SAGEMAKER_EXECUTION_ROLE_ARN", role)
    monkeypatch.setenv("SHEPHERD_NAMESPACE", "shepherd-test")
    monkeypatch.setenv("SHEPHERD_STACK_NAME", "shepherd-test-stack")
    monkeypatch.setenv("REQUIRE_APPROVAL", "true")
    monkeypatch.setenv("DEFAULT_INFERENCE_IMAGE", SERVING_IMAGE)
    monkeypatch.setenv("NETWORK_ISOLATION", "true")
    monkeypatch.setenv("ROLLBACK_FUNCTION_ARN", ROLLBACK_ARN)
    # The template's defaults, as Globals gives them to every function.
    monkeypatch.setenv("ALLOWED_INSTANCE_TYPES", ALLOWED_INSTANCE_TYPES)
    monkeypatch.setenv("MAX_INSTANCE_COUNT", "10")
    monkeypatch.setenv("CONTROLLER_CONCURRENCY", "16")  # the template's default
    monkeypatch.setenv("INSTANCE_PRICE_TABLE", "")  # the template's default: the built-in prices
    yield boto3.client("sagemaker")
    emulator.reset()


@pytest.fixture
def first_deployment(world, sagemaker, lambda_context):
    """v1 live at 100% on the endpoint, deployed by Shepherd."""
    from tests.handlers.lifecycle import START, promote, promotion, registered_version, run_controller, status, weights

    v1 = registered_version(world, lambda_context, 1)
    assert promote.lambda_handler(promotion(v1, {"type": "all_at_once"}), lambda_context)["result"] == "started"
    run_controller(lambda_context, sagemaker, START, 5)
    assert status(world, v1) == "LIVE"
    assert weights(sagemaker) == {"churn-predictor-v1": 1.0}
    world.announcements()
    world.seen.clear()  # tests see only what happens after the first deployment
    return v1
