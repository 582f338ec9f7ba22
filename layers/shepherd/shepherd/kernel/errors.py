"""The errors every part of Shepherd raises or catches. Adapters translate AWS failures into these,
once; services decide what they mean. Errors of one part (a rejected artifact, a refused SageMaker
request) live with that part and derive from these."""

from __future__ import annotations


class ShepherdError(Exception):
    """Base of every error Shepherd raises on purpose."""


class ConflictError(ShepherdError):
    """A conditional write lost: the item is not in the state the write expected."""


class TransientError(ShepherdError):
    """Throttling or a 5xx that survived the SDK's retries: raise so Lambda retries the event."""
