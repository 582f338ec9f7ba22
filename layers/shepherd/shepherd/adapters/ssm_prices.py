"""The stack's own instance price table (template parameter `InstancePriceTable`): an SSM String
parameter holding JSON ``{"ml.m5.large": 0.115, ...}``, read once per container.

A table that cannot be read (missing, refused, throttled past the SDK's retries, unreachable) or is
not a valid table is no reason to hold a rollout's end: the estimate falls back to the built-in table,
logged as a warning and named so in every announcement that uses it (its `source`), so nobody takes
the built-in prices for theirs.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import NETWORK_ERRORS, error_code
from shepherd.capacity.prices import BUILT_IN, PriceTable, parse_price_table

logger = logging.getLogger(__name__)


def read_price_table(ssm: Any, parameter_name: str) -> PriceTable:
    """The table in `parameter_name`, or the built-in one (saying why) when it cannot be used."""
    try:
        value = ssm.get_parameter(Name=parameter_name)["Parameter"]["Value"]
        return PriceTable(parse_price_table(value), f"SSM parameter {parameter_name}")
    except ClientError as error:
        why = error_code(error) or "refused"
    except NETWORK_ERRORS:
        why = "unreachable"
    except ValueError as invalid:  # pydantic's ValidationError among them: not JSON {type: price}
        why = "not a JSON table of instance type to hourly USD"
        logger.debug("price table invalid", extra={"parameter": parameter_name, "detail": str(invalid)})
    logger.warning("price table unreadable; using the built-in one", extra={"parameter": parameter_name, "reason": why})
    return PriceTable(BUILT_IN.prices, f"{BUILT_IN.source}: SSM parameter {parameter_name} unusable ({why})")
