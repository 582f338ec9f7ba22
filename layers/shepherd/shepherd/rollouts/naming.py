"""Deterministic SageMaker names, always valid and within SageMaker's limits.

SageMaker models, endpoint configs and production variants share one rule: at most 63 characters
matching ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`` (``shepherd.kernel.sagemaker_names``). Every name here is a pure
function of its inputs, so a retried or duplicated call computes the same name, and creating the
resource again is recognisable as "already done".

A name is the readable form (``fraud-detector-v12``) when it fits. When it does not, the variable
head is truncated and a 10-hex-digit SHA-256 digest of *all* inputs is inserted before the fixed
tail (``<head prefix>-<digest>-v12``), so two long inputs never share a name (a collision would need
a 40-bit digest collision, or a name deliberately crafted to contain another name's digest).

Functions:

- :func:`model_resource_name` - the SageMaker Model of a registered version. ``namespace`` (e.g. the
  stack name; up to 20 characters, no ``--``) keeps two Shepherd stacks in one account and region
  from sharing a model name for different artifacts (``shepherd-dev--fraud-v3``); use the same value
  for the life of a stack.
- :func:`variant_name` - the production variant serving a version on an endpoint (variants are scoped
  to their endpoint config, so no namespace).
- :func:`baseline_variant_name` - a rollout's fresh baseline variant (``analysis.judge.baseline:
  fresh``): the live version deployed again beside the candidate, ``<model_name>-v<version>-baseline-
  <digest>`` where the digest is the rollout id's own (its event id's), so each rollout's fresh baseline
  has its own name and its own CloudWatch series. It always ends in ``-baseline-<hex>``, never in
  ``-v<digits>`` as a version's variant does, so the two never share a name.
- :func:`rollout_id` - ``<UTC time of the request>-<digest of the request event id>``, e.g.
  ``20250301T120000Z-3fa9c1d2e4``: a duplicate delivery of the same promotion event gets the same id
  (so the endpoint lock recognises it), ids sort by time, and the id is itself a valid name part.
- :func:`endpoint_config_name` - one of a rollout's endpoint configs: ``shift`` (live variant plus
  candidate at weight 0, for the traffic steps), ``final`` (the candidate alone) or ``restore`` (the
  live variant alone at the count autoscaling gave it, when that is no longer the previous config's).

Invalid inputs raise ``ValueError``: names are computed after validation at the edge, so a bad input
here is a bug, not a user error.
"""

import hashlib
import re
from datetime import UTC, datetime
from typing import Literal

from shepherd.kernel.sagemaker_names import MAX_NAME_LENGTH, is_valid_name

MAX_VERSION = 10**15
MAX_NAMESPACE_LENGTH = 20

ROLLOUT_ID_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{10}")

ConfigPurpose = Literal["shift", "final", "restore"]
CONFIG_PURPOSES: tuple[ConfigPurpose, ...] = ("shift", "final", "restore")

_DIGEST_LENGTH = 10
# Joins the inputs before hashing; it cannot occur in any valid input, so the joining is unambiguous.
_SEPARATOR = "\x1f"


def model_resource_name(model_name: str, version: int, *, namespace: str | None = None) -> str:
    """The SageMaker Model for ``version`` of ``model_name``: ``[<namespace>-]<model_name>-v<version>``."""
    _check_name("model_name", model_name)
    _check_version(version)
    if namespace is not None:
        _check_namespace(namespace)
    # "--" cannot occur in a namespace, so the first "--" ends it: ("a-b", "c") and ("a", "b-c")
    # give "a-b--c" and "a--b-c", and two stacks never share a model name.
    head = model_name if namespace is None else f"{namespace}--{model_name}"
    return _fit(head, f"-v{version}", ("model", namespace or "", model_name, str(version)))


def variant_name(model_name: str, version: int) -> str:
    """The production variant serving ``version`` of ``model_name``: ``<model_name>-v<version>``."""
    _check_name("model_name", model_name)
    _check_version(version)
    return _fit(model_name, f"-v{version}", ("variant", model_name, str(version)))


def baseline_variant_name(model_name: str, version: int, rollout: str) -> str:
    """Rollout ``rollout``'s fresh baseline of ``version`` of ``model_name``:
    ``<model_name>-v<version>-baseline-<the rollout id's digest>``."""
    _check_name("model_name", model_name)
    _check_version(version)
    if ROLLOUT_ID_PATTERN.fullmatch(rollout) is None:
        raise ValueError(f"rollout_id: {rollout!r} was not made by rollout_id()")
    tail = f"-v{version}-baseline-{rollout[-_DIGEST_LENGTH:]}"
    return _fit(model_name, tail, ("baseline", model_name, str(version), rollout))


def rollout_id(event_id: str, requested_at: datetime) -> str:
    """The id of the rollout requested by the event ``event_id`` at ``requested_at`` (its ``time``)."""
    if not event_id:
        raise ValueError("event_id: must not be empty")
    if requested_at.tzinfo is None or requested_at.utcoffset() is None:
        raise ValueError("requested_at: must be timezone-aware")
    stamp = requested_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{_digest((event_id,))}"


def endpoint_config_name(endpoint_name: str, rollout: str, purpose: ConfigPurpose) -> str:
    """The ``purpose`` endpoint config of rollout ``rollout`` on ``endpoint_name``.

    ``<endpoint_name>-<rollout_id>-<purpose>``; ``rollout`` must come from :func:`rollout_id`, whose
    fixed shape keeps the readable form unambiguous.
    """
    _check_name("endpoint_name", endpoint_name)
    if ROLLOUT_ID_PATTERN.fullmatch(rollout) is None:
        raise ValueError(f"rollout_id: {rollout!r} was not made by rollout_id()")
    if purpose not in CONFIG_PURPOSES:
        raise ValueError(f"purpose: must be one of {', '.join(CONFIG_PURPOSES)}, got {purpose!r}")
    return _fit(endpoint_name, f"-{rollout}-{purpose}", ("config", endpoint_name, rollout, purpose))


def rollout_alarm_names(namespace: str, endpoint_name: str, rollout_id: str) -> tuple[str, str]:
    """The per-rollout alarms on the candidate variant: error rate and p99 latency.

    They start with ``<namespace>--`` (no namespace contains "--"), the prefix the stack's alarm
    permissions are scoped to, so one stack cannot change or delete another stack's alarms.
    """
    prefix = f"{namespace}--{endpoint_name}-{rollout_id}"
    return f"{prefix}-error-rate", f"{prefix}-latency-p99"


def _fit(head: str, tail: str, parts: tuple[str, ...]) -> str:
    """``head + tail`` if it fits, else a truncated head, a digest of ``parts``, then ``tail``."""
    plain = head + tail
    if len(plain) <= MAX_NAME_LENGTH:
        return plain
    digest = _digest(parts)
    room = MAX_NAME_LENGTH - len(tail) - len(digest) - 1
    # The head starts with an alphanumeric, so the stripped prefix is never empty; stripping hyphens
    # keeps the character before "-<digest>" alphanumeric as the pattern requires.
    prefix = head[:room].rstrip("-")
    return f"{prefix}-{digest}{tail}"


def _digest(parts: tuple[str, ...]) -> str:
    return hashlib.sha256(_SEPARATOR.join(parts).encode()).hexdigest()[:_DIGEST_LENGTH]


def _check_name(field: str, value: str) -> None:
    if not isinstance(value, str) or not is_valid_name(value):
        raise ValueError(f"{field}: {value!r} is not a valid SageMaker name (pattern and 63 characters)")


def _check_namespace(namespace: str) -> None:
    _check_name("namespace", namespace)
    if len(namespace) > MAX_NAMESPACE_LENGTH or "--" in namespace:
        raise ValueError(f"namespace: at most {MAX_NAMESPACE_LENGTH} characters and no '--', got {namespace!r}")


def _check_version(version: int) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ValueError(f"version: must be an integer in 1..{MAX_VERSION}, got {version!r}")
