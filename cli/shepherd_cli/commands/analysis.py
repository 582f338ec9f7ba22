"""`shepherd analysis`: the canary judge's evidence per step of a rollout, and its replay."""

from __future__ import annotations

import json
from typing import Any

import click

from shepherd_cli import operations, output
from shepherd_cli.analysis_view import render_analysis, render_replay
from shepherd_cli.commands.common import Common, target_options
from shepherd_cli.errors import CliError


class _ShowByDefault(click.Group):
    """A group whose first word, when it names no subcommand, is the argument of ``show``:
    ``shepherd analysis ID`` is ``shepherd analysis show ID``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ShowByDefault)
def analysis() -> None:
    """The canary judge's evidence per step of a rollout (`shepherd analysis ID`), and its replay.

    \b
    Examples:
      shepherd analysis 20261120T100000Z-3fa9c1d2e4
      shepherd analysis replay 20261120T100000Z-3fa9c1d2e4 --config stricter-judge.json
    """


@analysis.command("show")
@click.argument("rollout_id", metavar="ID")
@click.option("--endpoint", help="The rollout's endpoint (found by itself when it ever went live).")
@target_options
def analysis_show(common: Common, rollout_id: str, endpoint: str | None) -> None:
    """The canary judge's evidence per step of a rollout: each metric's estimates, interval and rule."""
    found = operations.rollout_analysis(common.target(), rollout_id, endpoint)
    if common.json:
        output.print_json(found)
    else:
        render_analysis(output.console(), found)


@analysis.command("replay")
@click.argument("rollout_id", metavar="ID")
@click.option("--endpoint", help="The rollout's endpoint (found by itself when it ever went live).")
@click.option(
    "--config",
    "config_file",
    type=click.File("r"),
    help="A judge configuration (the strategy's `analysis.judge` object, JSON); default: the rollout's own.",
)
@target_options
def analysis_replay(common: Common, rollout_id: str, endpoint: str | None, config_file: Any) -> None:
    """Judge a past rollout's steps again, minute by minute, from CloudWatch (it keeps 15 days of
    one-minute data): each metric's outcome, the verdict, the decision, and where it differs from
    what happened."""
    config = None
    if config_file is not None:
        try:
            config = json.load(config_file)
        except json.JSONDecodeError as error:
            raise CliError(f"--config is not JSON: {error}") from None
    found = operations.replay_analysis(common.target(), rollout_id, endpoint, config)
    if common.json:
        output.print_json(found)
    else:
        render_replay(output.console(), found)
