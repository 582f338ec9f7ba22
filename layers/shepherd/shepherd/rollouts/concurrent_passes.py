"""Run a tick's passes concurrently, the passes of one endpoint one after another, in order.

A judged pass makes about six AWS calls one after another; one at a time, 1,000 rollouts at 50 ms a
call outlast the controller's timeout. The calls wait on the network, so threads overlap them (boto3
clients are thread-safe; the wiring sizes their connection pools for this). What keeps passes apart
is not the runner but the records: each endpoint has one lock holder, and every commit is conditional
on the record's revision. The runner keeps what the conditions cannot: an endpoint's passes (its
owed announcements, its active rollout, the clean-up of its finished ones) run in the order given,
on one worker, so a clean-up never runs beside the pass that is changing the same endpoint.

Each pass is isolated: a failure is logged and reported as "error", and the endpoint's next pass
runs all the same (as it did one at a time). A slow pass holds one worker and its endpoint only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from msgspec import Struct

logger = logging.getLogger(__name__)

FAILED = "error"


class Pass(Struct, frozen=True):
    """One unit of a tick's work: what it is called in the report, the endpoint it changes, and the run."""

    name: str
    endpoint: str  # passes of one endpoint run one after another, in the order given
    run: Callable[[], str]  # what the pass did ("waiting", "ShiftTraffic", "cleaned up"...)


def run_passes(passes: Sequence[Pass], concurrency: int) -> list[tuple[str, str]]:
    """(name, outcome) for every pass, in the order given; `concurrency` endpoints at a time at most."""
    lanes: dict[str, list[int]] = {}  # endpoint -> its passes' positions, in order
    for position, each in enumerate(passes):
        lanes.setdefault(each.endpoint, []).append(position)
    outcomes = [FAILED] * len(passes)

    def run_lane(positions: list[int]) -> None:
        for position in positions:
            outcomes[position] = _run_isolated(passes[position])

    workers = min(concurrency, len(lanes))
    if workers <= 1:  # nothing to overlap: no threads (one endpoint, or concurrency 1)
        for positions in lanes.values():
            run_lane(positions)
    else:
        from concurrent.futures import ThreadPoolExecutor  # only a tick with work for several workers

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rollout-pass") as pool:
            list(pool.map(run_lane, lanes.values()))  # list(): a lane's unexpected error is raised here
    return [(each.name, outcome) for each, outcome in zip(passes, outcomes, strict=True)]


def _run_isolated(each: Pass) -> str:
    try:
        return each.run()
    except Exception:  # one rollout's failure must never stop another's (I5)
        # Logged with its traceback and counted (the handler's RolloutErrors metric); the record is as
        # the last commit left it, so the next tick decides again from there.
        logger.exception("rollout pass failed; the next tick tries again", extra={"pass": each.name})
        return FAILED
