"""Watching Shepherd: the audit trail, the announcements on the bus as they are made (and the temporary
subscriptions listening leaves behind), and the read-only dashboard."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import click
from rich.text import Text

from shepherd_cli import cleanup as temporary_subscriptions
from shepherd_cli import operations, output
from shepherd_cli.announcements import describe_announcement
from shepherd_cli.commands.common import DURATION, Common, target_options
from shepherd_cli.safe_text import clean
from shepherd_cli.subscription import Subscription


@click.command()
@click.argument("name", metavar="MODEL|ENDPOINT")
@click.option("--model", "kind", flag_value="model", help="NAME is a model.")
@click.option("--endpoint", "kind", flag_value="endpoint", help="NAME is an endpoint.")
@target_options
def history(common: Common, name: str, kind: Literal["model", "endpoint"] | None) -> None:
    """The audit trail of a model or an endpoint (both, when a name is both)."""
    trail = operations.history(common.target(), name, kind or "auto")
    if common.json:
        output.print_json(trail)
    else:
        output.render_history(name, trail)


@click.command()
@click.option("--follow", is_flag=True, help="Keep listening until Ctrl-C.")
@click.option(
    "--for", "listen", type=DURATION, default=30, show_default=True, help="Without --follow: listen this long."
)
@target_options
def events(common: Common, follow: bool, listen: int) -> None:
    """Shepherd's announcements on the bus as they are made (a temporary subscription, removed after)."""
    target = common.target()
    deadline = None if follow else time.monotonic() + listen
    out = output.console()
    with Subscription(target) as subscription:
        if not common.json:
            out.print(
                f"Listening to {target.bus} on {target.describe()}" + ("" if follow else f" for {listen}s"), style="dim"
            )
        while deadline is None or time.monotonic() < deadline:
            wait = 5.0 if deadline is None else max(0.0, min(5.0, deadline - time.monotonic()))
            for announcement in subscription.receive(wait):
                if common.json:
                    click.echo(json.dumps(announcement, sort_keys=True))
                    continue
                detail_type = announcement.get("detail-type", "")
                text = describe_announcement(detail_type, announcement.get("detail") or {})
                out.print(
                    Text.assemble(
                        (clean(announcement.get("time", "")), "cyan"), "  ", (clean(detail_type), "bold"), "  ", text
                    )
                )


@click.command()
@click.option("--delete", is_flag=True, help="Remove the orphaned ones (without it, they are only listed).")
@click.option(
    "--older-than",
    type=DURATION,
    default=600,
    show_default=True,
    help="Orphaned when unused this long (sooner when its CLI ran on this machine and is gone).",
)
@target_options
def cleanup(common: Common, delete: bool, older_than: int) -> None:
    """Temporary subscriptions (shepherd-cli-* queue and rule) that killed CLIs left behind.

    Lists them, and with --delete removes the orphaned ones; never one a running CLI uses."""
    target = common.target()
    judged = temporary_subscriptions.find(target, datetime.now(UTC), timedelta(seconds=older_than))
    orphans = [item for item in judged if item.orphaned]
    if delete:
        for item in orphans:
            temporary_subscriptions.remove(target, item.found)
    if common.json:
        output.print_json([{**item.to_json(), "removed": delete and item.orphaned} for item in judged])
        return
    for item in judged:
        verdict = ("removed" if delete else "orphaned") if item.orphaned else "kept"
        made_by = f" (host {item.found.host}, pid {item.found.pid})" if item.found.host else ""
        click.echo(clean(f"{item.found.name}  {verdict}: {item.why}{made_by}"))  # names and tags from AWS
    if orphans and not delete:
        click.echo(f"{len(orphans)} orphaned: `shepherd cleanup --delete` removes them.")
    elif not judged:
        click.echo(f"No temporary subscriptions on {target.bus}.")


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option(
    "--host",
    default=None,
    help="Address to bind (default 127.0.0.1). The dashboard has no login: any other address exposes it.",
)
@target_options
def ui(common: Common, port: int, host: str | None) -> None:
    """Serve a read-only dashboard on 127.0.0.1: models, endpoints, rollouts, canary reports, history."""
    from shepherd_cli.ui.guard import new_token
    from shepherd_cli.ui.server import DEFAULT_HOST, address, build_server, check_bind

    bind = host or DEFAULT_HOST
    check_bind(bind, host_given=host is not None)
    target = common.target()  # fail now, not at the first page, when no Shepherd is reachable
    token = new_token()  # this run's: the printed address carries it (ui/guard.py)
    server = build_server(lambda: target, bind, port, token)
    click.echo(f"Shepherd dashboard for {target.describe()}: {address(bind, port, token)}  (Ctrl-C to stop)")
    server.run()
