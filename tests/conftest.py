"""Shared fixtures: a clean AWS environment per test, and a moto world holding Shepherd's resources."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto import mock_aws

from shepherd import bootstrap
from shepherd_cli.local import atomic_dynamodb
from tests.world import World

# Handler modules build Powertools' Logger, Tracer and Metrics at import, as in Lambda: set their
# configuration before any test module imports one.
os.environ.update(
    POWERTOOLS_SERVICE_NAME="shepherd",
    POWERTOOLS_METRICS_NAMESPACE="Shepherd",
    POWERTOOLS_TRACE_DISABLED="true",  # no X-Ray daemon outside Lambda
)

# moto's DynamoDB is not atomic across threads; DynamoDB is (see the module's docstring).
atomic_dynamodb.install()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach real AWS: dummy credentials, a fixed region, no endpoint overrides."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Shepherd's bucket, table and bus in moto, with the functions' environment variables set."""
    with mock_aws():
        created = World.create()
        for name, value in created.environment().items():
            monkeypatch.setenv(name, value)
        # The handlers' container for this test only: clients on this moto world, built on first use.
        with bootstrap.wired(bootstrap.Container()):
            yield created
