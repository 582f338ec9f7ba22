"""`shepherd`: operate Shepherd, deployed or local.

Reads (models, versions, show, status, history) use the shared package's adapters and SageMaker and
CloudWatch describes; changes (approve, reject, promote, rollback) are commands sent to the
Shepherd bus, which the stack's functions carry out, and the CLI waits for Shepherd's answer to each
(`subscription.py`, `operations.wait_for_answer`). Every command takes ``--json`` for scripts and
exits non-zero, with one line on stderr and no traceback, on an expected error.

Which Shepherd: ``--stack NAME`` (a deployed stack, found by its CloudFormation Outputs) or
``--local`` (a running `shepherd local up`, found through ``.shepherd/local.json`` or
``$SHEPHERD_ENDPOINT_URL``); see `shepherd_cli.target`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.text import Text

from shepherd.registry.errors import TransientError
from shepherd_cli import cleanup as temporary_subscriptions
from shepherd_cli import operations, output
from shepherd_cli.analysis_view import render_analysis, render_replay
from shepherd_cli.announcements import REFUSALS, describe_announcement
from shepherd_cli.errors import CliError, Terminated, raise_terminated
from shepherd_cli.follow import follow
from shepherd_cli.local.state import read_state
from shepherd_cli.safe_text import clean
from shepherd_cli.subscription import Subscription
from shepherd_cli.target import LOCAL_CREDENTIALS, Target, resolve

F = TypeVar("F", bound=Callable[..., Any])
_DURATION = re.compile(r"(\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


# --- shared options and error handling ------------------------------------------------------------


@dataclass(frozen=True)
class Common:
    stack: str | None
    local: bool
    region: str | None
    json: bool

    def target(self) -> Target:
        return resolve(self.stack, self.local, self.region)


def _fail(message: str, as_json: bool, exit_code: int = 1) -> None:
    if as_json:
        click.echo(json.dumps({"error": message}), err=True)
    else:
        click.echo(f"error: {clean(message)}", err=True)  # a refusal's reason, a name: not trusted
    sys.exit(exit_code)


def handle_errors(function: F) -> F:
    """Expected failures become one line on stderr and a non-zero exit."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        common = kwargs.get("common")
        as_json = bool(kwargs.get("as_json")) or (isinstance(common, Common) and common.json)
        try:
            return function(*args, **kwargs)
        except CliError as error:
            _fail(error.message, as_json, error.exit_code)
        except NoCredentialsError:
            _fail("no AWS credentials: configure them (aws configure, AWS_PROFILE) or use --local", as_json)
        except TransientError as error:
            _fail(f"AWS is failing or throttling, try again: {error}", as_json)
        except ClientError as error:
            details = error.response.get("Error", {})
            _fail(f"AWS refused: {details.get('Code')}: {details.get('Message')}", as_json)
        except BotoCoreError as error:
            _fail(f"AWS: {error}", as_json)
        except KeyboardInterrupt:
            _fail("interrupted", as_json, 130)
        except Terminated:
            _fail("terminated", as_json, Terminated.EXIT_CODE)

    return wrapper  # type: ignore[return-value]


def target_options(function: F) -> F:
    """--stack, --local, --region and --json, passed on as `common`; errors handled."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
    @click.option("--region", envvar="AWS_REGION", help="AWS region of the stack (default: your AWS configuration).")
    @click.option("--local", "local", is_flag=True, help="Use the running `shepherd local up`.")
    @click.option("--stack", help="Name of a deployed Shepherd stack (or set SHEPHERD_STACK).", metavar="NAME")
    @functools.wraps(function)
    def wrapper(*args: Any, stack: str | None, local: bool, region: str | None, as_json: bool, **kwargs: Any) -> Any:
        return handle_errors(function)(*args, common=Common(stack, local, region, as_json), **kwargs)

    return wrapper  # type: ignore[return-value]


class Duration(click.ParamType[int]):
    """Seconds: 600, 600s, 10m, 2h or 1d."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _DURATION.fullmatch(str(value).strip())
        if match is None:
            self.fail(f"{value!r} is not a duration (e.g. 600, 90s, 10m, 2h, 1d)", param, ctx)
        return int(match.group(1)) * _UNITS[match.group(2)]


DURATION = Duration()


# --- the commands ---------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="shepherd", prog_name="shepherd")
def cli() -> None:
    """Shepherd: a model registry and safe SageMaker rollouts.

    Point it at a deployed stack with --stack NAME (or SHEPHERD_STACK), or at a running
    `shepherd local up` with --local (found through .shepherd/local.json in the current
    directory or one above it up to the repository root or home, SHEPHERD_ENDPOINT_URL, or
    AWS_ENDPOINT_URL).
    """


@cli.command()
@target_options
def models(common: Common) -> None:
    """List the registered models."""
    found = operations.list_models(common.target())
    if common.json:
        output.print_json([model.model_dump(mode="json") for model in found])
    else:
        output.render_models(found)


@cli.command()
@click.argument("model")
@target_options
def versions(common: Common, model: str) -> None:
    """List a model's versions, newest first."""
    found = operations.list_versions(common.target(), model)
    if common.json:
        output.print_json([version.model_dump(mode="json") for version in found])
    else:
        output.render_versions(found)


@cli.command()
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@target_options
def show(common: Common, model: str, version: int) -> None:
    """Show one version: artifact, checksum, manifest, lineage, status."""
    found = operations.get_version(common.target(), model, version)
    if common.json:
        output.print_json(found.model_dump(mode="json"))
    else:
        output.render_version(found)


def _answered(
    common: Common, target: Target, send: Callable[[], dict[str, Any]], summary: str, wait: bool, timeout: float
) -> dict[str, Any]:
    """Send a command and, unless --no-wait, wait for Shepherd's answer to it; a refusal exits 1."""
    if not wait:
        sent = send()
        if common.json:
            output.print_json(sent)
        else:
            output.render_sent(sent, summary)
        return sent
    with Subscription(target) as subscription:  # subscribed before sending: the answer cannot be missed
        sent = send()
        if not common.json:
            output.render_sent(sent, summary)
        sent["answer"] = operations.wait_for_answer(target, subscription, sent, timeout)
    answer = sent["answer"]
    detail_type, detail = answer["detail-type"], answer.get("detail") or {}
    if common.json:
        output.print_json(sent)
    elif detail_type not in REFUSALS:  # a refusal is said once: on stderr, with exit 1
        output.console().print(
            Text.assemble((clean(detail_type), "bold"), "  ", describe_announcement(detail_type, detail))
        )
    if detail_type in REFUSALS:
        raise CliError(f"refused: {detail.get('reason')}")
    return sent


def _decide(common: Common, model: str, version: int, decision: Literal["approved", "rejected"], **kw: Any) -> None:
    target = common.target()
    by = kw["by"] or target.caller()
    _answered(
        common,
        target,
        lambda: operations.request_approval(target, model, version, decision, kw["reason"], by),
        f"{'Approval' if decision == 'approved' else 'Rejection'} of {model} v{version}",
        kw["wait"],
        kw["timeout"],
    )


_reason = click.option("--reason", required=True, help="Why (kept in the audit trail).")
_by = click.option("--by", help="Who asks (default: your AWS identity, or $USER locally).")
_wait = click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait for Shepherd's answer (exit 1 if refused)."
)
_timeout = click.option(
    "--timeout", type=DURATION, default=60, show_default=True, help="How long to wait for the answer (exit 3 after)."
)


@cli.command()
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@_reason
@_by
@_wait
@_timeout
@target_options
def approve(common: Common, model: str, version: int, **options: Any) -> None:
    """Approve a REGISTERED version (sends Model Version Approval Requested, waits for the answer)."""
    _decide(common, model, version, "approved", **options)


@cli.command()
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@_reason
@_by
@_wait
@_timeout
@target_options
def reject(common: Common, model: str, version: int, **options: Any) -> None:
    """Reject a REGISTERED version (sends Model Version Approval Requested, waits for the answer)."""
    _decide(common, model, version, "rejected", **options)


def _parse_steps(text: str) -> list[dict[str, int]]:
    """'5:300,50:10m,100' -> [{percent 5, bake 300}, {percent 50, bake 600}, {percent 100}]."""
    steps = []
    for part in text.split(","):
        percent, _, bake = part.strip().partition(":")
        if not percent.strip().isdigit():
            raise CliError(f"--steps: {part!r} is not PERCENT[:BAKE]")
        step = {"percent": int(percent)}
        if bake:
            step["bake_seconds"] = DURATION.convert(bake, None, None)
        steps.append(step)
    return steps


def build_strategy(  # noqa: C901 - one branch per shorthand
    *,
    strategy: str | None,
    canary: int | None,
    bake: int | None,
    linear: int | None,
    interval: int | None,
    steps: str | None,
    all_at_once: bool,
    watch: int | None,
) -> dict[str, Any]:
    """The strategy JSON from --strategy or the shorthand flags (exactly one of them)."""
    flags = {"--strategy": strategy, "--canary": canary, "--linear": linear, "--steps": steps}
    chosen = [name for name, value in flags.items() if value is not None] + (["--all-at-once"] if all_at_once else [])
    if len(chosen) != 1:
        given = f" (got {', '.join(chosen)})" if chosen else ""
        raise CliError(
            f"give one strategy: --strategy JSON, --canary PCT, --linear PCT, --steps or --all-at-once{given}"
        )
    if bake is not None and canary is None:
        raise CliError("--bake goes with --canary")
    if interval is not None and linear is None:
        raise CliError("--interval goes with --linear")
    result: dict[str, Any]
    if strategy is not None:
        try:
            result = json.loads(strategy)
        except json.JSONDecodeError as error:
            raise CliError(f"--strategy is not JSON: {error}") from None
        if not isinstance(result, dict):
            raise CliError("--strategy must be a JSON object")
    elif canary is not None:
        result = {"type": "canary", "canary_percent": canary, "bake_seconds": 600 if bake is None else bake}
    elif linear is not None:
        result = {"type": "linear", "step_percent": linear, "interval_seconds": 300 if interval is None else interval}
    elif steps is not None:
        result = {"type": "steps", "steps": _parse_steps(steps)}
    else:
        result = {"type": "all_at_once"}
    if watch is not None:
        result["post_deploy_watch_seconds"] = watch
    return result


def _version_or_latest(value: str) -> int | Literal["latest-approved"]:
    if value == "latest-approved":
        return "latest-approved"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise CliError(f"VERSION must be a number or 'latest-approved', got {value!r}", exit_code=2)


@cli.command()
@click.argument("model")
@click.argument("version", metavar="VERSION|latest-approved")
@click.argument("endpoint")
@click.option("--strategy", help='Strategy JSON, e.g. \'{"type":"canary","canary_percent":10,"bake_seconds":600}\'.')
@click.option("--canary", type=int, metavar="PCT", help="Canary: PCT% of traffic, baked, then 100%.")
@click.option("--bake", type=DURATION, help="Canary bake time (default 600 s; 90s, 10m, 2h, 1d).")
@click.option("--linear", type=int, metavar="PCT", help="Linear: steps of PCT% each held --interval.")
@click.option("--interval", type=DURATION, help="Linear step interval (default 300 s).")
@click.option("--steps", metavar="PCT[:BAKE],...", help="Explicit steps, e.g. 5:5m,50:10m,100.")
@click.option("--all-at-once", is_flag=True, help="Straight to 100%.")
@click.option("--watch", type=DURATION, help="Post-deploy watch window (default 900 s).")
@click.option("--alarm", "alarms", multiple=True, metavar="NAME", help="A CloudWatch alarm that gates every step.")
@click.option("--instance-type", help="Default: as the live variant (ml.m5.large on a first deployment).")
@click.option(
    "--instance-count", type=click.IntRange(1, 100), help="Default: as the live variant (1 on a first deployment)."
)
@click.option("--reason", default="promoted with the shepherd CLI", show_default=True, help="Why.")
@click.option(
    "--allow-rolled-back",
    is_flag=True,
    help="Deploy a ROLLED_BACK version again (after a false alarm, say); recorded in the audit.",
)
@click.option(
    "--replace-model",
    is_flag=True,
    help="Put this model on an endpoint that serves another (it is then bound to this one).",
)
@_by
@_wait
@_timeout
@click.option("--follow", is_flag=True, help="Once started, follow the rollout to its end (as status --watch).")
@target_options
def promote(common: Common, model: str, version: str, endpoint: str, **options: Any) -> None:
    """Roll a version out to a SageMaker endpoint (sends Model Promotion Requested).

    \b
    Examples:
      shepherd promote churn-predictor 4 churn-prod --canary 10 --bake 10m --watch 15m
      shepherd promote churn-predictor latest-approved churn-prod --linear 20 --interval 5m
      shepherd promote churn-predictor 4 churn-prod --all-at-once --alarm churn-prod-p99
    """
    chosen_version = _version_or_latest(version)
    strategy = build_strategy(
        strategy=options["strategy"],
        canary=options["canary"],
        bake=options["bake"],
        linear=options["linear"],
        interval=options["interval"],
        steps=options["steps"],
        all_at_once=options["all_at_once"],
        watch=options["watch"],
    )
    target = common.target()

    def send() -> dict[str, Any]:
        return operations.request_promotion(
            target,
            model_name=model,
            version=chosen_version,
            endpoint_name=endpoint,
            strategy=strategy,
            alarms=tuple(options["alarms"]),
            instance_type=options["instance_type"],
            instance_count=options["instance_count"],
            by=options["by"] or target.caller(),
            reason=options["reason"],
            allow_rolled_back=options["allow_rolled_back"],
            replace_model=options["replace_model"],
        )

    summary = f"Promotion of {model} {version} to {endpoint}"
    sent = _answered(common, target, send, summary, options["wait"] or options["follow"], options["timeout"])
    if options["follow"]:
        with Subscription(target) as subscription:
            sys.exit(
                follow(target, endpoint, subscription=subscription, rollout_id=sent["rollout_id"], as_json=common.json)
            )
    if not common.json:
        output.console().print(f"Follow it with: shepherd status {endpoint} --watch (it says so if it is refused)")


@cli.command()
@click.argument("endpoint")
@click.option("--to-version", type=click.IntRange(min=1), help="Version to redeploy (default: the one live before).")
@_reason
@_by
@_wait
@_timeout
@target_options
def rollback(
    common: Common, endpoint: str, to_version: int | None, reason: str, by: str | None, **options: Any
) -> None:
    """Roll an endpoint back (sends Model Rollback Requested, waits for the answer)."""
    target = common.target()
    _answered(
        common,
        target,
        lambda: operations.request_rollback(target, endpoint, to_version, reason, by or target.caller()),
        f"Rollback of {endpoint}",
        options["wait"],
        options["timeout"],
    )
    if not common.json:
        output.console().print(f"See it with: shepherd status {endpoint}")


@cli.command()
@click.argument("endpoint")
@click.argument("rollout_id", metavar="[ROLLOUT_ID]", required=False)
@_reason
@_by
@_wait
@_timeout
@target_options
def resume(common: Common, endpoint: str, rollout_id: str | None, reason: str, by: str | None, **options: Any) -> None:
    """Resume a rollout the canary judge held (sends Model Rollout Resume Requested, waits for the answer)."""
    target = common.target()
    _answered(
        common,
        target,
        lambda: operations.request_resume(target, endpoint, rollout_id, reason, by or target.caller()),
        f"Resume of {rollout_id or 'the active rollout'} on {endpoint}",
        options["wait"],
        options["timeout"],
    )


class _ShowByDefault(click.Group):
    """A group whose first word, when it names no subcommand, is the argument of ``show``:
    ``shepherd analysis ID`` is ``shepherd analysis show ID``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_ShowByDefault)
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


@cli.command()
@click.argument("endpoint")
@click.option(
    "--watch",
    is_flag=True,
    help="Redraw until the rollout ends: exit 0 once the candidate serves 100%, 1 if rolled back or failed.",
)
@click.option("--timeout", type=DURATION, help="With --watch: give up after this long (exit 3).")
@target_options
def status(common: Common, endpoint: str, watch: bool, timeout: int | None) -> None:
    """Live and candidate versions, variant weights, rollout phase and step, gating alarms."""
    if watch:
        target = common.target()
        with Subscription(target) as subscription:
            sys.exit(follow(target, endpoint, subscription=subscription, timeout=timeout, as_json=common.json))
    found = operations.endpoint_status(common.target(), endpoint)
    if common.json:
        output.print_json(found)
    else:
        output.render_status(found)


@cli.command()
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


@cli.command()
@click.argument("endpoint")
@target_options
def rollouts(common: Common, endpoint: str) -> None:
    """The rollouts of an endpoint, newest first."""
    found = operations.list_rollouts(common.target(), endpoint)
    if common.json:
        output.print_json(found)
    else:
        output.render_rollouts(endpoint, found)


@cli.command()
@click.argument("rollout_id", metavar="ID")
@click.option("--endpoint", help="The rollout's endpoint (found by itself when it ever went live).")
@target_options
def rollout(common: Common, rollout_id: str, endpoint: str | None) -> None:
    """One rollout: plan, timeline, outcome and incident."""
    found = operations.get_rollout(common.target(), rollout_id, endpoint)
    if common.json:
        output.print_json(found)
    else:
        output.render_rollout(found)


@cli.command()
@click.argument("model", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@target_options
def rejections(common: Common, model: str | None, limit: int) -> None:
    """Rejected uploads with their reasons, newest first (of MODEL, when given)."""
    found = operations.list_rejections(common.target(), model, limit)
    if common.json:
        output.print_json(found)
    else:
        output.render_rejections(found)


@cli.command()
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


@cli.command()
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


@cli.command()
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


# --- local mode -----------------------------------------------------------------------------------


@cli.group()
def local() -> None:
    """Shepherd on this machine: template.yaml in an embedded AWS (moto), no account needed."""


_template = click.option(
    "--template",
    type=click.Path(path_type=Path),
    default=None,
    help="The SAM template to deploy (default: ./template.yaml, else the one installed with the CLI).",
)


def _template_path(given: Path | None) -> Path:
    """--template, else ./template.yaml, else the copy installed with the CLI (local/application.py)."""
    from shepherd_cli.local.application import candidates, default_template

    if given is not None:
        if not given.is_file():
            raise CliError(f"no template at {given}")
        return given
    found = default_template()
    if found is None:
        looked = ", ".join(str(path) for path in candidates(Path.cwd()))
        raise CliError(f"no template.yaml found (looked at {looked}): pass --template")
    return found


def _parameters(values: tuple[str, ...]) -> dict[str, str]:
    parameters = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key:
            raise CliError(f"--parameter {value!r}: expected KEY=VALUE")
        parameters[key] = setting
    return parameters


@local.command("up")
@_template
@click.option("--port", type=click.IntRange(0, 65535), default=4750, show_default=True, help="0 picks a free port.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Simulated time per real second.")
@click.option(
    "--rps",
    type=click.FloatRange(min=0),
    default=300.0,  # simulation.DEFAULT_RPS (not imported here: it loads moto)
    show_default=True,
    help="Simulated requests per second to every endpoint (0: no traffic).",
)
@click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE", help="A template parameter.")
@click.option(
    "--state",
    "state_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".shepherd/state"),
    show_default=True,
    help="Where the emulator's state is kept across restarts.",
)
@click.option("--fresh", is_flag=True, help="Start empty (forget the saved state).")
@click.option("--verbose", is_flag=True, help="Also print idle controller ticks and the handlers' JSON logs.")
@handle_errors
def local_up(
    template: Path | None, port: int, speed: float, rps: float, parameters: tuple[str, ...], **options: Any
) -> None:
    """Run local mode in the foreground until Ctrl-C, printing each event as it flows.

    The emulator's state (bucket, versions, endpoints, alarms) is saved in --state on the way out
    and restored on the next start."""
    from shepherd_cli.local.state import state_path
    from shepherd_cli.local.up import run_up

    code = run_up(
        _template_path(template),
        out=output.console(),
        port=port,
        speed=speed,
        rps=rps,
        parameters=_parameters(parameters),
        state_file=state_path(),
        state_dir=options["state_dir"],
        fresh=options["fresh"],
        verbose=options["verbose"],
    )
    sys.exit(code)


@local.command("traffic")
@click.argument("model_name")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--latency-ms", type=float, required=True, help="Median model latency.")
@click.option("--p99-ms", type=float, help="99th percentile latency (default: twice the median).")
@click.option("--error-percent", type=float, default=0.0, show_default=True, help="Share of requests failing 5xx.")
@click.option(
    "--error-bursts",
    type=float,
    default=0.0,
    metavar="CV",
    help="Errors come in bursts: each minute this version's error rate is multiplied by a random factor "
    "of mean 1 and this coefficient of variation (1: a bad minute often has twice the errors).",
)
@click.option(
    "--common-shocks",
    type=float,
    default=0.0,
    metavar="CV",
    help="Like --error-bursts, but drawn once per endpoint and minute: every version given the same CV "
    "has the same bad minutes (a shared dependency).",
)
@click.option(
    "--warmup-minutes",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="A new variant of this version warms up for this many minutes after it starts taking traffic.",
)
@click.option(
    "--warmup-latency-x",
    type=float,
    default=1.0,
    show_default=True,
    metavar="F",
    help="How much slower it answers in its first minute, easing back to normal over the warm-up.",
)
@click.option(
    "--warmup-5xx",
    "warmup_5xx_percent",
    type=float,
    default=0.0,
    show_default=True,
    metavar="PCT",
    help="Extra share of requests failing 5xx in its first minute.",
)
@target_options
def local_traffic(
    common: Common,
    model_name: str,
    version: int,
    latency_ms: float,
    p99_ms: float | None,
    error_percent: float,
    **more: Any,
) -> None:
    """How VERSION of MODEL_NAME answers local mode's simulated traffic, from the minute in progress."""
    from shepherd_cli.local.traffic_behaviour import Behaviour, parameter_name, set_behaviour

    if common.stack:
        raise CliError("`shepherd local traffic` changes the simulated traffic of `shepherd local up` only")
    try:
        behaviour = Behaviour.of(latency_ms, p99_ms, error_percent, **more)
        name = parameter_name(model_name, version)
    except ValueError as error:
        raise CliError(str(error)) from None
    target = resolve(None, True, common.region)
    set_behaviour(target.client("ssm"), model_name, version, behaviour)
    if common.json:
        output.print_json({"model_name": model_name, "version": version, "parameter": name, **vars(behaviour)})
    else:
        click.echo(f"{model_name} v{version}: {behaviour.describe()} (from the simulated minute in progress)")


@local.command("env")
@handle_errors
def local_env() -> None:
    """Print the exports that point the AWS CLI (and the shepherd CLI) at the running local mode.

    \b
    eval "$(shepherd local env)"
    aws s3 ls
    """
    from shepherd_cli.local.state import find_state

    target = resolve(None, True, None, None)
    state = read_state(find_state())
    exports = {
        "AWS_ENDPOINT_URL": target.endpoint_url,
        "AWS_DEFAULT_REGION": target.region,
        "AWS_REGION": target.region,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "SHEPHERD_ENDPOINT_URL": target.endpoint_url,
    }
    for name, value in exports.items():
        click.echo(f"export {name}={shlex.quote(str(value))}")
    if state is not None:
        click.echo(f"# bucket {target.bucket}, bus {target.bus}, table {target.table}")


@local.command("alarm")
@click.argument("name")
@click.argument("state", type=click.Choice(["ALARM", "OK", "INSUFFICIENT_DATA"]))
@click.option("--reason", default="set with shepherd local alarm", show_default=True)
@handle_errors
def local_alarm(name: str, state: str, reason: str) -> None:
    """Set an alarm's state in local mode (as `aws cloudwatch set-alarm-state` does): local mode
    delivers the change as CloudWatch would (EventBridge, alarm action, SNS)."""
    target = resolve(None, True, None, None)
    cloudwatch = target.client("cloudwatch")
    if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        raise CliError(f"no alarm {name} in {target.describe()}")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    click.echo(f"{name} -> {state}")


@local.command("demo")
@_template
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of the timeline.")
@click.option(
    "--keep",
    "keep",
    type=click.Path(path_type=Path, file_okay=False),
    is_flag=False,
    flag_value=Path(".shepherd/state"),
    default=None,
    help="Save the demo's world as `local up --state` keeps it (default folder .shepherd/state), so that "
    "`shepherd local up` then `shepherd ui` show its rollouts.",
)
@handle_errors
def local_demo(template: Path | None, as_json: bool, keep: Path | None) -> None:
    """Register, approve, canary, catch a failing canary and roll back, on a simulated clock.

    Exits 0 only if every step happened as expected.
    """
    from shepherd_cli.local.demo import run_demo
    from shepherd_cli.local.demo_output import TimelinePrinter, print_summary

    template = _template_path(template)
    logging.getLogger("shepherd_cli.local.pump").setLevel(logging.CRITICAL)  # failures are in the timeline
    out = output.console()
    printer = None if as_json else TimelinePrinter(out, template)
    if as_json:  # anything a handler prints goes to stderr, so stdout is only the JSON
        with contextlib.redirect_stdout(sys.stderr):
            result = run_demo(template, keep_state=keep)
    else:
        result = run_demo(template, observer=printer, on_start=printer.started if printer else None, keep_state=keep)
    if as_json:
        output.print_json(result.to_json())
    else:
        print_summary(out, result)
        if keep is not None:
            out.print(f"The demo's world is saved in {keep}: `shepherd local up --state {keep}` starts from it.")
    sys.exit(0 if result.ok else 1)


def main() -> None:
    signal.signal(signal.SIGTERM, raise_terminated)  # cleans up like Ctrl-C (`local up` and `ui` set their own)
    cli(prog_name="shepherd")


if __name__ == "__main__":
    main()
