"""A function's cold start without the garbage collector's passes over what it imports.

Importing a handler creates tens of thousands of objects that live as long as the container:
modules, classes, functions, pydantic's field descriptions. CPython's cyclic garbage collector counts
allocations and, past its thresholds, scans what it tracks: in the rollout functions' import the
process's first full collection ran over everything boto3, botocore, pydantic and Powertools had
loaded (about 55,000 objects, 20-30 ms) and freed next to nothing. So :func:`loading` pauses the
collector while a handler's module sets up, then moves all that was loaded to the permanent
generation (``gc.freeze``), which later collections skip. Frozen objects are still freed by reference
counting; only the reference cycles made during the import are never collected: about 8.5 MB in a
rollout function's container, paid once, not growing across invocations (collecting them first would
cost the time saved). :func:`collector_paused` alone (no freeze) covers the wiring on the first
invocation (``bootstrap``), which imports the function's adapters and services.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection while the block runs; the collector runs again after it, as before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def loading() -> Iterator[None]:
    """Wrap a handler's module set-up: no collection while it runs, none over its objects afterwards."""
    with collector_paused():
        yield
        gc.freeze()
