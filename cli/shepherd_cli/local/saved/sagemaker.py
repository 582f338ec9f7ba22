"""SageMaker's saved part: models, endpoint configs and endpoints, each endpoint with its variants'
current and desired weights and instance counts.

Put back into moto's backend directly, not through CreateEndpoint: moto (and local mode's `emulator`)
would rebuild the variants from the endpoint config's initial weights, losing the weights a rollout set
since, and report the endpoint Creating again. A change in progress is settled before the save
(`emulator.settle_pending`), so every saved endpoint is InService as SageMaker would have left it.
Not kept: every other SageMaker resource (Shepherd creates none).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, Model, sagemaker_backends
from pydantic import JsonValue

from shepherd_cli.local.saved.document import Document, Saved

Tags = list[dict[str, str]]


class SavedModel(Saved):
    name: str
    execution_role_arn: str
    primary_container: dict[str, JsonValue]
    containers: list[dict[str, JsonValue]]
    vpc_config: dict[str, JsonValue] | None
    enable_network_isolation: bool
    tags: Tags
    creation_time: datetime


class SavedEndpointConfig(Saved):
    name: str
    production_variants: list[dict[str, JsonValue]]
    async_inference_config: dict[str, JsonValue] | None
    data_capture_config: dict[str, JsonValue] | None
    kms_key_id: str | None
    tags: Tags
    creation_time: datetime


class SavedEndpoint(Saved):
    name: str
    config_name: str
    production_variants: list[dict[str, JsonValue]]  # CurrentWeight, DesiredWeight, instance counts
    data_capture_config: dict[str, JsonValue] | None
    status: str
    failure_reason: str | None
    tags: Tags
    creation_time: datetime
    last_modified_time: datetime


class Region(Saved):
    account: str
    region: str
    models: list[SavedModel]
    endpoint_configs: list[SavedEndpointConfig]
    endpoints: list[SavedEndpoint]


class SageMakerDocument(Document):
    service: Literal["sagemaker"] = "sagemaker"
    regions: list[Region]


def capture() -> SageMakerDocument:
    regions = []
    for account, by_region in sagemaker_backends.items():
        for region, backend in by_region.items():
            saved = Region(
                account=account,
                region=region,
                models=[_model(model) for model in list(backend._models.values())],
                endpoint_configs=[_config(config) for config in list(backend.endpoint_configs.values())],
                endpoints=[_endpoint(endpoint) for endpoint in list(backend.endpoints.values())],
            )
            if saved.models or saved.endpoint_configs or saved.endpoints:
                regions.append(saved)
    return SageMakerDocument(regions=regions)


def _model(model: Model) -> SavedModel:
    return SavedModel(
        name=model.model_name,
        execution_role_arn=model.execution_role_arn,
        primary_container=model.primary_container,
        containers=model.containers,
        vpc_config=model.vpc_config,
        enable_network_isolation=bool(model.enable_network_isolation),
        tags=model.tags,
        creation_time=model.creation_time,
    )


def _config(config: FakeEndpointConfig) -> SavedEndpointConfig:
    return SavedEndpointConfig(
        name=config.endpoint_config_name,
        production_variants=config.production_variants,
        async_inference_config=config.async_inference_config,
        data_capture_config=config.data_capture_config,
        kms_key_id=config.kms_key_id,
        tags=config.tags,
        creation_time=config.creation_time,
    )


def _endpoint(endpoint: FakeEndpoint) -> SavedEndpoint:
    return SavedEndpoint(
        name=endpoint.endpoint_name,
        config_name=endpoint.endpoint_config_name,
        production_variants=endpoint.production_variants,
        data_capture_config=endpoint.data_capture_config,
        status=endpoint.endpoint_status,
        failure_reason=endpoint.failure_reason,
        tags=endpoint.tags,
        creation_time=endpoint.creation_time,
        last_modified_time=endpoint.last_modified_time,
    )


def apply(document: SageMakerDocument) -> None:
    for saved in document.regions:
        backend: Any = sagemaker_backends[saved.account][saved.region]
        for model in saved.models:
            created = Model(  # type: ignore[abstract]  # moto makes them so; mypy sees an abstract property
                account_id=saved.account,
                region_name=saved.region,
                model_name=model.name,
                execution_role_arn=model.execution_role_arn,
                primary_container=dict(model.primary_container),
                vpc_config=dict(model.vpc_config) if model.vpc_config is not None else {},
                containers=[dict(container) for container in model.containers],
                tags=[dict(tag) for tag in model.tags],
            )
            created.enable_network_isolation = model.enable_network_isolation
            created.creation_time = model.creation_time
            backend._models[model.name] = created
        for config in saved.endpoint_configs:
            backend.endpoint_configs[config.name] = _restored_config(saved.account, saved.region, config)
        for endpoint in saved.endpoints:
            backend.endpoints[endpoint.name] = _restored_endpoint(saved.account, saved.region, endpoint)


def _restored_config(account: str, region: str, saved: SavedEndpointConfig) -> FakeEndpointConfig:
    config = FakeEndpointConfig(  # type: ignore[abstract]  # as moto makes them
        account_id=account,
        region_name=region,
        endpoint_config_name=saved.name,
        production_variants=[dict(variant) for variant in saved.production_variants],
        async_inference_config=dict(saved.async_inference_config) if saved.async_inference_config else None,  # type: ignore[arg-type]  # moto keeps None
        data_capture_config=dict(saved.data_capture_config) if saved.data_capture_config else {},
        tags=[dict(tag) for tag in saved.tags],
        kms_key_id=saved.kms_key_id,  # type: ignore[arg-type]  # moto keeps None
    )
    config.creation_time = saved.creation_time
    return config


def _restored_endpoint(account: str, region: str, saved: SavedEndpoint) -> FakeEndpoint:
    endpoint = FakeEndpoint(  # type: ignore[abstract]  # as moto makes them
        account_id=account,
        region_name=region,
        endpoint_name=saved.name,
        endpoint_config_name=saved.config_name,
        production_variants=[],
        data_capture_config=dict(saved.data_capture_config) if saved.data_capture_config is not None else None,  # type: ignore[arg-type]  # moto keeps None
        tags=[dict(tag) for tag in saved.tags],
    )
    # The variants as they stood (weights a rollout set), not as the config first made them.
    endpoint.production_variants = [dict(variant) for variant in saved.production_variants]
    endpoint.endpoint_status = saved.status
    endpoint.failure_reason = saved.failure_reason  # type: ignore[assignment]  # moto declares it None
    endpoint.creation_time = saved.creation_time
    endpoint.last_modified_time = saved.last_modified_time
    return endpoint
