"""Hourly on-demand prices of SageMaker real-time inference instances, for the cost ledger's estimate.

APPROXIMATE, us-east-1, USD per instance-hour, compiled 2026-12-06. The stored copy of AWS's own
pricing page (https://aws.amazon.com/sagemaker/pricing/) does not carry the per-instance table (it is
rendered by script), so these numbers come from public secondary sources that quote it, and were
cross-checked where two agreed: zircon.tech "The real cost of running AI models on AWS SageMaker"
(us-east-1, October 2025: ml.g5.xlarge about $1.41), wring.co "SageMaker Inference: Real-Time vs
Serverless" (March 2026), and several public cost tables for SageMaker hosting (ml.m5.large 0.115,
ml.m5.xlarge 0.23, ml.c5.large 0.102, ml.g4dn.xlarge 0.736, ml.r5.large 0.151). Sources disagree by up
to ~15% for some types (ml.m5.xlarge is also quoted at $0.269; ml.inf2.xlarge at $0.76, the EC2 price,
and higher for SageMaker). Read them as "about": the ledger's instance-hours are exact, its dollars are
an estimate. An account with other prices (region, Savings Plans) gives its own table
(`parse_price_table`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec
from pydantic import TypeAdapter

DEFAULT_PRICES: Mapping[str, float] = {
    "ml.t2.medium": 0.056,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.r5.large": 0.151,
    "ml.g4dn.xlarge": 0.736,
    "ml.g4dn.2xlarge": 0.94,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.inf2.xlarge": 0.99,
}


BUILT_IN_SOURCE = "Shepherd's built-in approximate table (us-east-1 on-demand, 2026-12-06)"


class PriceTable(msgspec.Struct, frozen=True):
    """The prices a cost estimate uses, and where they come from (said beside every estimate)."""

    prices: Mapping[str, float]
    source: str


BUILT_IN = PriceTable(DEFAULT_PRICES, BUILT_IN_SOURCE)


def built_in() -> PriceTable:
    """The built-in table, for services not wired with the stack's (`InstancePriceTable` unset)."""
    return BUILT_IN


# A plain mapping, not a record: validated by a TypeAdapter and the check below, so the one frozen
# base (kernel/frozen.py) stays the only pydantic model base in the package.
_PRICE_TABLE: TypeAdapter[dict[str, float]] = TypeAdapter(dict[str, float])


def _sane(prices: dict[str, float]) -> dict[str, float]:
    for instance_type, price in prices.items():
        if not instance_type.startswith("ml."):
            raise ValueError(f"{instance_type!r} is not a SageMaker instance type (ml.*)")
        if not math.isfinite(price) or price < 0:
            raise ValueError(f"the price of {instance_type} must be a finite number >= 0, got {price}")
    return prices


def parse_price_table(document: str | bytes) -> dict[str, float]:
    """A user's own price table from JSON (raises ValueError, pydantic's ValidationError among them,
    naming the bad entry)."""
    return _sane(_PRICE_TABLE.validate_json(document))
