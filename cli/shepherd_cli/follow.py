"""Following a rollout to its end: `shepherd status ENDPOINT --watch` and `shepherd promote --follow`.

The view is `endpoint_status` (records, SageMaker and CloudWatch describes) redrawn every second,
with the last announcements about the endpoint heard on a `Subscription`. On a terminal it redraws
in place; otherwise (a pipe, CI) it prints the view whenever something in it changes and a line per
minute of bake, so it never looks hung.

A rollout has ended for a person following it when the candidate serves 100% (phase WATCHING or
later: exit 0; the previous version stays on standby for the watch window, which `status` shows), or
when it is rolled back or failed (exit 1).
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from shepherd_cli import output
from shepherd_cli.announcements import describe_announcement
from shepherd_cli.endpoint_view import endpoint_status
from shepherd_cli.errors import CliError
from shepherd_cli.safe_text import clean
from shepherd_cli.subscription import Subscription
from shepherd_cli.target import Target

SERVING = frozenset({"WATCHING", "RETIRING", "COMPLETED"})
ABORTED = frozenset({"ABORTING", "ROLLED_BACK", "FAILED"})
POLL_SECONDS = 1.0


class _Screen:
    """Where the view goes: redrawn in place on a terminal, printed on change otherwise, JSON lines."""

    def __init__(self, out: Console, as_json: bool) -> None:
        self.out, self.as_json = out, as_json
        self.live = Live(console=out, auto_refresh=False) if out.is_terminal and not as_json else None
        self._last: Any = None

    def show(self, status: dict[str, Any], heard: list[str]) -> None:
        signature = _signature(status, heard)
        if self.live is not None:
            self.live.update(output.status_view(status, heard), refresh=True)
        elif signature != self._last and self.as_json:
            output.print_json(status)
        elif signature != self._last:
            self.out.print(output.status_view(status, heard))
            self.out.print()
        self._last = signature


def follow(
    target: Target,
    endpoint_name: str,
    *,
    subscription: Subscription,
    rollout_id: str | None = None,
    timeout: float | None = None,
    as_json: bool = False,
) -> int:
    """Show the endpoint's rollout until it ends; the exit code says how it ended."""
    screen = _Screen(output.console(), as_json)
    heard: list[str] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    if screen.live is not None:
        screen.live.start()
    try:
        while True:
            status = endpoint_status(target, endpoint_name)
            screen.show(status, heard)
            rollout, refused = status["rollout"], status.get("refused")
            latest_ended = rollout is None or rollout["phase"] in ("COMPLETED", "ROLLED_BACK", "FAILED")
            if refused is not None and (rollout_id == refused["rollout_id"] or (rollout_id is None and latest_ended)):
                # The newest promotion on the endpoint was refused (nothing is under way): that is the answer.
                raise CliError(f"refused: promotion of {refused['model_name']} to {endpoint_name}: {refused['reason']}")
            if rollout is None and rollout_id is None:
                raise CliError(f"no rollout on {endpoint_name} to follow")
            ended = rollout is not None and (rollout["phase"] in SERVING or rollout["phase"] in ABORTED)
            if ended and rollout_id in (None, rollout["rollout_id"]):
                return _ended(screen.out, rollout, as_json)
            if deadline is not None and time.monotonic() > deadline:
                raise CliError(f"{endpoint_name}: still in progress after {timeout:g} s", exit_code=3)
            heard.extend(
                _announcement_line(announcement)
                for announcement in subscription.receive(POLL_SECONDS)
                if (announcement.get("detail") or {}).get("endpoint_name") == endpoint_name
            )
    finally:
        if screen.live is not None:
            screen.live.stop()


def _signature(status: dict[str, Any], heard: list[str]) -> Any:
    """What a person would notice changing (a pipe gets the view again only then)."""
    rollout = status["rollout"] or {}
    variants = (status["endpoint"] or {}).get("variants", [])
    return json.dumps(
        [
            rollout.get("phase"),
            rollout.get("step"),
            rollout.get("current_percent"),
            ((rollout.get("bake_left_seconds") or 0) + 59) // 60,  # once a minute while baking
            [(v["variant_name"], v["current_weight"], v.get("role")) for v in variants],
            [(alarm["alarm_name"], alarm["state"]) for alarm in status["alarms"]],
            len(heard),
        ],
        default=str,
    )


def _announcement_line(announcement: dict[str, Any]) -> str:
    detail_type = announcement.get("detail-type", "")
    at = str(announcement.get("time", ""))[11:19]
    return clean(f"{at}  {detail_type}: ") + describe_announcement(detail_type, announcement.get("detail") or {})


def _ended(out: Console, rollout: dict[str, Any], as_json: bool) -> int:
    phase = rollout["phase"]
    if phase in SERVING:
        if not as_json:
            out.print(
                Text(clean(f"Completed: {rollout['model_name']} v{rollout['version']} serves 100%."), style="green")
            )
        return 0
    if not as_json:
        what = "Failed" if phase == "FAILED" else "Rolled back"
        out.print(Text(clean(f"{what}: {rollout['failure_reason'] or phase}"), style="red"))
    return 1
