"""The SageMaker emulator extension, seen only through boto3 calls (in-process and over HTTP)."""

import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from shepherd_cli.local import emulator

ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER"):
        # An endpoint URL in the environment would take precedence over mock_aws.
        monkeypatch.delenv(name, raising=False)
    emulator.install()
    yield
    emulator.reset()


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker")


def _variant(name: str, model: str, weight: float, instance_count: int) -> dict[str, Any]:
    return {
        "VariantName": name,
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": instance_count,
        "InitialVariantWeight": weight,
    }


def _create_config(sagemaker: Any, config_name: str, variants: list[dict[str, Any]]) -> None:
    existing_models = {model["ModelName"] for model in sagemaker.list_models()["Models"]}
    for model_name in {variant["ModelName"] for variant in variants} - existing_models:
        sagemaker.create_model(
            ModelName=model_name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": f"{model_name}:1"}
        )
    sagemaker.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=variants)


def _statuses_until_in_service(sagemaker: Any, endpoint_name: str) -> tuple[list[str], dict[str, Any]]:
    """Describe until InService; return every status seen and the final description."""
    statuses: list[str] = []
    for _ in range(10):
        description = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        statuses.append(description["EndpointStatus"])
        if description["EndpointStatus"] == "InService":
            return statuses, description
    raise AssertionError(f"{endpoint_name} never reached InService: {statuses}")


def _in_service_endpoint(sagemaker: Any, endpoint_name: str, config_name: str) -> None:
    _create_config(sagemaker, config_name, [_variant("blue", "model-a", 1.0, 2)])
    sagemaker.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
    _statuses_until_in_service(sagemaker, endpoint_name)


def _weights(description: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {v["VariantName"]: (v["CurrentWeight"], v["DesiredWeight"]) for v in description["ProductionVariants"]}


def test_zero_weight_and_instance_counts_are_kept(sagemaker: Any) -> None:
    _create_config(
        sagemaker, "canary-config", [_variant("blue", "model-a", 0.9, 2), _variant("green", "model-b", 0.0, 1)]
    )

    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="canary-config")
    _, endpoint = _statuses_until_in_service(sagemaker, "ep")

    config = sagemaker.describe_endpoint_config(EndpointConfigName="canary-config")
    assert [v["InitialVariantWeight"] for v in config["ProductionVariants"]] == [0.9, 0.0]
    assert _weights(endpoint) == {"blue": (0.9, 0.9), "green": (0.0, 0.0)}
    assert [(v["CurrentInstanceCount"], v["DesiredInstanceCount"]) for v in endpoint["ProductionVariants"]] == [
        (2, 2),
        (1, 1),
    ]


def test_new_endpoint_is_creating_for_the_configured_describes(sagemaker: Any) -> None:
    emulator.configure(settle_after_describes=2)
    _create_config(sagemaker, "config-1", [_variant("blue", "model-a", 1.0, 1)])

    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="config-1")

    statuses, _ = _statuses_until_in_service(sagemaker, "ep")
    assert statuses == ["Creating", "Creating", "InService"]


def test_update_endpoint_settles_on_the_new_config(sagemaker: Any) -> None:
    # Given an endpoint in service on config-1, and a canary config-2
    _in_service_endpoint(sagemaker, "ep", "config-1")
    _create_config(sagemaker, "config-2", [_variant("blue", "model-a", 0.9, 2), _variant("green", "model-b", 0.1, 1)])
    emulator.configure(settle_after_describes=2)

    # When the endpoint is updated
    arn = sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-2")["EndpointArn"]

    # Then it is Updating, still on config-1 with config-2 pending, for two describes
    assert arn == "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/ep"
    updating = sagemaker.describe_endpoint(EndpointName="ep")
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == "config-1"
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "config-2"
    assert sagemaker.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    # and then InService with config-2's variants
    settled = sagemaker.describe_endpoint(EndpointName="ep")
    assert settled["EndpointStatus"] == "InService"
    assert settled["EndpointConfigName"] == "config-2"
    assert "PendingDeploymentSummary" not in settled
    assert _weights(settled) == {"blue": (0.9, 0.9), "green": (0.1, 0.1)}
    assert [v["CurrentInstanceCount"] for v in settled["ProductionVariants"]] == [2, 1]


def test_settle_after_zero_describes_is_immediate(sagemaker: Any) -> None:
    emulator.configure(settle_after_describes=0)
    _create_config(sagemaker, "config-1", [_variant("blue", "model-a", 1.0, 1)])
    _create_config(sagemaker, "config-2", [_variant("green", "model-b", 1.0, 1)])

    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="config-1")
    assert sagemaker.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-2")

    endpoint = sagemaker.describe_endpoint(EndpointName="ep")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "config-2")


def test_changes_are_rejected_while_updating(sagemaker: Any) -> None:
    _in_service_endpoint(sagemaker, "ep", "config-1")
    _create_config(sagemaker, "config-2", [_variant("blue", "model-b", 1.0, 1)])
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-2")

    with pytest.raises(ClientError) as update_error:
        sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-1")
    with pytest.raises(ClientError) as weights_error:
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredWeight": 0.5}]
        )

    for error in (update_error, weights_error):
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert "Cannot update in-progress endpoint" in error.value.response["Error"]["Message"]
    _, endpoint = _statuses_until_in_service(sagemaker, "ep")
    assert endpoint["EndpointConfigName"] == "config-2"


@pytest.mark.parametrize(("endpoint_name", "config_name"), [("missing", "config-1"), ("ep", "missing")])
def test_update_of_an_unknown_endpoint_or_config_is_rejected(
    sagemaker: Any, endpoint_name: str, config_name: str
) -> None:
    _in_service_endpoint(sagemaker, "ep", "config-1")

    with pytest.raises(ClientError) as error:
        sagemaker.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)

    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_weights_update_keeps_instance_counts_and_settles(sagemaker: Any) -> None:
    _create_config(
        sagemaker, "canary-config", [_variant("blue", "model-a", 0.9, 2), _variant("green", "model-b", 0.1, 1)]
    )
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="canary-config")
    _statuses_until_in_service(sagemaker, "ep")

    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName="ep",
        DesiredWeightsAndCapacities=[
            {"VariantName": "blue", "DesiredWeight": 0.5},
            {"VariantName": "green", "DesiredWeight": 0.5},
        ],
    )

    updating = sagemaker.describe_endpoint(EndpointName="ep")
    assert updating["EndpointStatus"] == "Updating"
    assert _weights(updating) == {"blue": (0.9, 0.5), "green": (0.1, 0.5)}
    _, settled = _statuses_until_in_service(sagemaker, "ep")
    assert _weights(settled) == {"blue": (0.5, 0.5), "green": (0.5, 0.5)}
    assert [(v["CurrentInstanceCount"], v["DesiredInstanceCount"]) for v in settled["ProductionVariants"]] == [
        (2, 2),
        (1, 1),
    ]


def test_weights_update_rejects_an_unknown_variant(sagemaker: Any) -> None:
    _in_service_endpoint(sagemaker, "ep", "config-1")

    with pytest.raises(ClientError) as error:
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "nope", "DesiredWeight": 1.0}]
        )

    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert sagemaker.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"


def test_failed_update_rolls_back_to_the_old_config_with_a_reason(sagemaker: Any) -> None:
    _in_service_endpoint(sagemaker, "ep", "config-1")
    _create_config(sagemaker, "config-2", [_variant("green", "model-b", 1.0, 1)])
    emulator.fail_next_update("ep", "The primary container for production variant green did not pass the ping")

    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-2")

    statuses, endpoint = _statuses_until_in_service(sagemaker, "ep")
    assert statuses == ["Updating", "InService"]
    assert endpoint["EndpointConfigName"] == "config-1"
    assert [v["VariantName"] for v in endpoint["ProductionVariants"]] == ["blue"]
    assert endpoint["FailureReason"].startswith("The primary container")

    # Only the next update fails; a new update clears the reason.
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-2")
    _, endpoint = _statuses_until_in_service(sagemaker, "ep")
    assert endpoint["EndpointConfigName"] == "config-2"
    assert "FailureReason" not in endpoint


def test_retain_all_variant_properties_keeps_weights_of_same_named_variants(sagemaker: Any) -> None:
    _in_service_endpoint(sagemaker, "ep", "config-1")
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredWeight": 0.7}]
    )
    _statuses_until_in_service(sagemaker, "ep")
    _create_config(sagemaker, "config-2", [_variant("blue", "model-b", 1.0, 3), _variant("green", "model-b", 0.3, 1)])

    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-2", RetainAllVariantProperties=True)

    _, endpoint = _statuses_until_in_service(sagemaker, "ep")
    assert _weights(endpoint) == {"blue": (0.7, 0.7), "green": (0.3, 0.3)}
    assert [v["CurrentInstanceCount"] for v in endpoint["ProductionVariants"]] == [2, 1]


def test_reset_forgets_failure_hooks_and_settles_changes_in_progress(sagemaker: Any) -> None:
    _in_service_endpoint(sagemaker, "ep", "config-1")
    _create_config(sagemaker, "config-2", [_variant("green", "model-b", 1.0, 1)])
    emulator.fail_next_update("ep", "boom")
    emulator.configure(settle_after_describes=5)

    emulator.reset()
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-2")
    emulator.reset()

    endpoint = sagemaker.describe_endpoint(EndpointName="ep")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", "config-2")
    assert "FailureReason" not in endpoint


def test_install_twice_is_harmless(sagemaker: Any) -> None:
    emulator.install()
    emulator.install()
    _in_service_endpoint(sagemaker, "ep", "config-1")
    _create_config(sagemaker, "config-2", [_variant("green", "model-b", 1.0, 1)])

    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="config-2")

    # Patched once, one describe still counts once.
    statuses, endpoint = _statuses_until_in_service(sagemaker, "ep")
    assert statuses == ["Updating", "InService"]
    assert endpoint["EndpointConfigName"] == "config-2"


def test_update_endpoint_over_http() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    try:
        sagemaker = boto3.client("sagemaker", endpoint_url=endpoint_url)
        _create_config(sagemaker, "http-config-1", [_variant("blue", "model-a", 1.0, 1)])
        _create_config(
            sagemaker, "http-config-2", [_variant("blue", "model-a", 1.0, 1), _variant("green", "model-b", 0.0, 1)]
        )
        sagemaker.create_endpoint(EndpointName="http-ep", EndpointConfigName="http-config-1")
        assert _statuses_until_in_service(sagemaker, "http-ep")[0] == ["Creating", "InService"]

        sagemaker.update_endpoint(EndpointName="http-ep", EndpointConfigName="http-config-2")

        statuses, endpoint = _statuses_until_in_service(sagemaker, "http-ep")
        assert statuses == ["Updating", "InService"]
        assert endpoint["EndpointConfigName"] == "http-config-2"
        assert _weights(endpoint) == {"blue": (1.0, 1.0), "green": (0.0, 0.0)}
    finally:
        # The server shares moto's in-process state: leave none behind for later tests.
        reset_request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset_request).close()
        server.stop()


def test_creating_a_config_that_exists_is_rejected_and_keeps_the_first(sagemaker: Any) -> None:
    _create_config(sagemaker, "c", [_variant("v1", "m1", 1.0, 1)])

    with pytest.raises(ClientError, match="already existing endpoint configuration"):
        sagemaker.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[_variant("v1", "m1", 1.0, 5)])

    [variant] = sagemaker.describe_endpoint_config(EndpointConfigName="c")["ProductionVariants"]
    assert variant["InitialInstanceCount"] == 1
