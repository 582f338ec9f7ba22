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
_serialised: set[type[BaseResponse]] = set()


def install() -> None:
    """Idempotent: wrap `BaseResponse.call_action` once (every service's request handling)."""
    serialise(BaseResponse, _LOCK)


def serialise(handler: type[BaseResponse], lock: threading.RLock) -> None:
    """Idempotent: run `handler`'s request handling (`call_action`) under `lock`, once per class."""
    if handler in _serialised:
        return
    original = handler.call_action

    def call_action(self: BaseResponse) -> Any:
        with lock:
            return original(self)

    handler.call_action = call_action  # type: ignore[method-assign]
    _serialised.add(handler)
