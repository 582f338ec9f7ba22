"""Serialise every emulated AWS request, as each AWS request is atomic.

moto's backends are plain dicts and lists without locks. The rollout controller serves several
endpoints at once (README, Scale), so local mode's server handles their requests on several threads:
a DescribeAlarms iterating moto's alarms while another endpoint's clean-up deletes its own would fail
("dictionary changed size during iteration"), which AWS never does. One lock around moto's request
handling makes each request atomic; requests from many threads still interleave request by request,
and the waiting a client does (the network, in AWS) stays outside the lock. DynamoDB's requests take
`atomic_dynamodb`'s lock first, then this one; nothing takes them the other way round.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.responses import BaseResponse

_LOCK = threading.RLock()
_installed = False


def install() -> None:
    """Idempotent: wrap `BaseResponse.call_action` once (every service's request handling)."""
    global _installed
    if _installed:
        return
    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        with _LOCK:
            return original(self)

    BaseResponse.call_action = call_action  # type: ignore[method-assign]
    _installed = True
