"""The one wiring place: settings, boto3 clients and services, built once per Lambda container.

Handlers call these on their first invocation (not at import), so tests can point boto3 at moto
first and call `reset()` between tests. Tests of the domain wire fakes into the same services.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3

from shepherd.adapters.aws_errors import CLIENT_CONFIG
from shepherd.adapters.dynamodb import DynamoRegistry
from shepherd.adapters.eventbridge import EventBridgePublisher
from shepherd.adapters.s3 import S3ArtifactStore
from shepherd.registry.service import ApprovalService, RegistrationService
from shepherd.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def settings() -> Settings:
    return Settings.from_environ(os.environ)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=CLIENT_CONFIG)


@cache
def registry() -> DynamoRegistry:
    return DynamoRegistry(client("dynamodb"), settings().registry_table_name)


@cache
def publisher() -> EventBridgePublisher:
    return EventBridgePublisher(client("events"), settings().event_bus_name)


@cache
def registration_service() -> RegistrationService:
    return RegistrationService(S3ArtifactStore(client("s3")), registry(), publisher(), utc_now)


@cache
def approval_service() -> ApprovalService:
    return ApprovalService(registry(), publisher(), utc_now)


def reset() -> None:
    """Forget every client and service (tests: a new moto world per test)."""
    for cached in (settings, client, registry, publisher, registration_service, approval_service):
        cached.cache_clear()
