"""The one place where botocore failures become domain errors."""

from __future__ import annotations

from typing import NoReturn

from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from shepherd.registry.errors import TransientError
from shepherd.settings import MAX_CONTROLLER_CONCURRENCY

# Standard mode retries throttling and 5xx with exponential backoff and jitter before we see them.
# The pool holds a connection for each of the controller's concurrent passes (botocore's default is 10:
# beyond it, urllib3 opens a connection per call and throws it away, with a warning each time).
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=MAX_CONTROLLER_CONCURRENCY,
)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "TooManyRequestsException",
        "SlowDown",
        "RequestThrottled",
        "LimitExceededException",
    }
)


# No answer at all (connection refused or reset, timeouts): the SDK retries these too, then raises
# them as BotoCoreError, never as ClientError. As transient as a 5xx.
NETWORK_ERRORS: tuple[type[Exception], ...] = (BotocoreConnectionError, HTTPClientError)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_transient(error: ClientError) -> bool:
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return error_code(error) in THROTTLING_CODES or status >= 500


def raise_transient_or_reraise(error: ClientError) -> NoReturn:
    """Throttling/5xx that outlived the SDK's retries -> TransientError (Lambda retries); else re-raise."""
    if is_transient(error):
        raise TransientError(f"{error_code(error)}: {error}") from error
    raise error
