"""The price table's SSM client answers within seconds: the rollback function reads the table after its
flip but before it writes the incident, so a slow SSM must not use up the function's timeout."""

from __future__ import annotations

import pytest

from shepherd.bootstrap import boto3_client


def test_the_price_tables_client_gives_up_in_seconds_and_the_others_keep_their_patience(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    ssm, sagemaker = boto3_client("ssm").meta.config, boto3_client("sagemaker").meta.config

    assert (ssm.connect_timeout, ssm.read_timeout, ssm.retries["total_max_attempts"]) == (1, 2, 2)
    assert (sagemaker.connect_timeout, sagemaker.read_timeout) == (5, 30)
