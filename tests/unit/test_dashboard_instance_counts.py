"""The instances-per-variant chart's data against AWS, where no one records the counts in CloudWatch:
what the dashboard itself saw from DescribeEndpoint, one point a minute, then now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from moto import mock_aws

from shepherd_cli.ui.instance_counts import CountSampler, instance_counts

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def described(current: int, desired: int) -> list[dict[str, object]]:
    return [{"variant_name": "live", "instance_count": current, "desired_instance_count": desired}]


@mock_aws
def test_against_aws_the_chart_has_what_the_dashboard_sampled_then_now():
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    sampler = CountSampler()
    sampler.record("prod", START, described(4, 4))
    sampler.record("prod", START + timedelta(seconds=30), described(4, 6))  # the last read of a minute wins
    sampler.record("prod", START + timedelta(minutes=2), described(6, 6))
    sampler.record("other", START, described(1, 1))
    now = START + timedelta(minutes=3, seconds=10)

    chart = instance_counts(cloudwatch, "prod", ["live"], described(6, 8), now, sampler.seen("prod"))

    assert chart["times"] == [(START + timedelta(minutes=m)).timestamp() for m in (0, 2)] + [now.timestamp()]
    series = {row["count"]: row["instances"] for row in chart["variants"]}
    assert series == {"current": [4, 6, 6], "desired": [6, 6, 8]}


def test_the_sampler_keeps_an_hour():
    sampler = CountSampler()
    sampler.record("prod", START, described(2, 2))
    sampler.record("prod", START + timedelta(minutes=61), described(3, 3))
    assert list(sampler.seen("prod")) == [START + timedelta(minutes=61)]
