"""Why a rollout is being rolled back, and when its traffic flip was observed: kept in its record.

The rollback function writes it with the abort, before it touches the endpoint; whoever first sees
the candidate without traffic afterwards (the rollback function, or a controller pass when the
endpoint was busy) sets `flipped_at` and owes the incident and `Rollout Rolled Back`.
"""

from datetime import datetime
from typing import Literal, Self

from pydantic import AwareDatetime

from shepherd.analysis.verdict import Verdict
from shepherd.kernel.frozen import Frozen

ANALYSIS_TRIGGER = "analysis"


class RollbackCause(Frozen):
    trigger: str  # the alarm's name, who asked, or "analysis" (the canary judge)
    alarm_name: str | None  # None: an operator's request
    reason: str
    reason_data: str | None = None
    requested_at: AwareDatetime | None  # the alarm's state change (or the request), never after receipt
    event_id: str
    flipped_at: AwareDatetime | None = None  # when a flip was observed (service clock)
    # Who wrote the flip down: a rollback invocation whose own flip a controller pass recorded first
    # still reports it (rollback.py); one that finds another invocation's record is a duplicate.
    flip_seen_by: Literal["rollback", "controller"] | None = None
    verdict: Verdict | None = None  # the canary judge's evidence, when it asked for the rollback

    @property
    def command_id(self) -> str | None:
        """The operator's command this answers (an alarm or the judge is no command)."""
        return None if self.alarm_name is not None or self.verdict is not None else self.event_id

    @property
    def summary(self) -> str:
        if self.alarm_name is not None or self.verdict is not None:
            return f"{self.trigger}: {self.reason}"
        return f"requested by {self.trigger}: {self.reason}"

    def flipped(self, at: datetime, by: Literal["rollback", "controller"]) -> Self:
        return self.model_copy(update={"flipped_at": at, "flip_seen_by": by})

    @property
    def seconds_to_flip(self) -> float | None:
        """From the alarm to the observed flip; never negative (the alarm time is clamped at receipt)."""
        if self.flipped_at is None or self.requested_at is None:
            return None
        return max(0.0, round((self.flipped_at - self.requested_at).total_seconds(), 3))
