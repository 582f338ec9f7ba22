"""The rollout controller's tick: every active rollout's pass, several endpoints at once.

A tick first publishes what finished rollouts still owe (the outbox index), then runs each active
rollout's pass (reconcile.py), then the clean-up of finished ones (clean_up.py). An endpoint's passes
run in that order and never beside each other; endpoints run `concurrency` at a time
(concurrent_passes.py). Each pass is isolated from the others' failures. promotion.py starts
rollouts; rollback.py aborts them; hold.py resumes a held one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

import msgspec
from msgspec import Struct

from shepherd.capacity.ports import VariantAutoScaling
from shepherd.capacity.prices import PriceTable, built_in
from shepherd.kernel.clock import Clock, received_time
from shepherd.kernel.publisher import EventPublisher
from shepherd.rollouts.concurrent_passes import FAILED, Pass, run_passes
from shepherd.rollouts.judging import CanaryJudge
from shepherd.rollouts.outbox import flush
from shepherd.rollouts.ports import AlarmControl, EndpointControl, RolloutStore
from shepherd.rollouts.reconcile import RolloutPass

logger = logging.getLogger(__name__)


class TickReport(Struct, frozen=True):
    """What one controller pass did to each rollout."""

    results: dict[str, str]  # rollout id -> what its pass did last ("error" when it failed)
    errors: int  # rollouts whose pass failed (logged); the next tick tries them again


class RolloutService(Struct):
    """Moves every active rollout forward (the controller); promotion.py starts them."""

    rollouts: RolloutStore
    endpoints: EndpointControl
    alarms: AlarmControl
    events: EventPublisher
    clock: Clock
    namespace: str  # the stack's: its per-rollout alarms' prefix (naming.rollout_alarm_names)
    canary: CanaryJudge  # judges a judged rollout's baking step at the start of its pass (judging.py)
    scaling: VariantAutoScaling  # the variants' auto scaling, carried over at a retire (scaling_handover.py)
    sleep: Callable[[float], None] = time.sleep  # waiting for a busy endpoint to flip back
    concurrency: int = 1  # endpoints served at once in a tick (CONTROLLER_CONCURRENCY in Lambda)
    unpublished: int = 0  # this tick's publishes that failed (kept in the outbox): counted with its errors
    counting: threading.Lock = msgspec.field(default_factory=threading.Lock)  # guards `unpublished`
    prices: Callable[[], PriceTable] = built_in  # the cost ledger's prices (the stack's table, read once)

    def tick(self, now: datetime, event_id: str) -> TickReport:
        """One controller pass over every active rollout, each isolated from the others' failures.

        Endpoints are served `concurrency` at a time, each one's passes in order (concurrent_passes.py).
        """
        now = received_time(now, self.clock())
        errors = 0
        with self.counting:
            self.unpublished = 0
        # Announcements a finished rollout still owes first (its endpoint may never be ticked again),
        # then every active rollout, then the clean-up finished rollouts still need.
        try:
            owed = self.rollouts.endpoints_owed_announcements()
        except Exception:  # the outbox never stops a decision: each active rollout's pass publishes its own
            logger.exception("could not list the outbox; the next tick tries again")
            owed, errors = [], 1
        rollout_pass = RolloutPass(
            self.rollouts,
            self.endpoints,
            self.alarms,
            self.events,
            self.clock,
            self.namespace,
            self.canary,
            self.scaling,
            self.sleep,
            self._published,
            prices=self.prices,
        )
        passes = [
            Pass(f"outbox {endpoint}", endpoint, partial(self.flush_announcements, endpoint)) for endpoint in owed
        ]
        passes += [
            Pass(s.rollout.rollout_id, s.rollout.endpoint_name, partial(rollout_pass.run, s, now, event_id))
            for s in self.rollouts.active_rollouts()
        ]
        passes += [
            Pass(
                f"clean-up {s.rollout.rollout_id}",
                s.rollout.endpoint_name,
                partial(rollout_pass.run_clean_up, s.rollout),
            )
            for s in self.rollouts.rollouts_to_clean_up()
        ]
        outcomes = run_passes(passes, self.concurrency)
        results = {
            name: outcome
            for name, outcome in outcomes
            if not name.startswith(("outbox ", "clean-up ")) or outcome == FAILED
        }
        return TickReport(results, errors + sum(outcome == FAILED for _name, outcome in outcomes) + self.unpublished)

    def flush(self, endpoint_name: str) -> None:
        """Publish what earlier commits on this endpoint still owe (a publish that failed after them)."""
        flush(self.rollouts, self.events, endpoint_name)

    def flush_announcements(self, endpoint_name: str) -> str:
        self.flush(endpoint_name)
        return "published"

    def _published(self, published: bool) -> None:
        with self.counting:  # passes run on several threads (concurrent_passes.py)
            self.unpublished += not published
