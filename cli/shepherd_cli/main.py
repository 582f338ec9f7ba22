"""`shepherd`: operate Shepherd, deployed or local.

Reads (models, versions, show, status, history) use the shared package's adapters and SageMaker and
CloudWatch describes; changes (approve, reject, promote, rollback) are commands sent to the
Shepherd bus, which the stack's functions carry out. Every command takes ``--json`` for scripts and
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
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from shepherd.registry.errors import TransientError
from shepherd_cli import operations, output
from shepherd_cli.errors import CliError
from shepherd_cli.target import Target, resolve

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
        click.echo(f"error: {message}", err=True)
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


class Duration(click.ParamType):
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
    directory, or SHEPHERD_ENDPOINT_URL).
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


def _decide(common: Common, model: str, version: int, decision: Literal["approved", "rejected"], **kw: Any) -> None:
    target = common.target()
    by = kw["by"] or target.caller()
    sent = operations.request_approval(target, model, version, decision, kw["reason"], by)
    if kw["wait"]:
        decided = operations.wait_for_decision(target, model, version, kw["wait"])
        sent["status"] = decided.status.value
    if common.json:
        output.print_json(sent)
        return
    output.render_sent(sent, f"{'Approval' if decision == 'approved' else 'Rejection'} of {model} v{version}")
    if "status" in sent:
        output.console().print(f"{model} v{version} is now {sent['status']}.")


_reason = click.option("--reason", required=True, help="Why (kept in the audit trail).")
_by = click.option("--by", help="Who asks (default: your AWS identity, or $USER locally).")
_wait = click.option(
    "--wait", type=click.FloatRange(min=0), default=0, help="Seconds to wait for the decision to be recorded."
)


@cli.command()
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@_reason
@_by
@_wait
@target_options
def approve(common: Common, model: str, version: int, reason: str, by: str | None, wait: float) -> None:
    """Approve a REGISTERED version (sends Model Version Approval Requested)."""
    _decide(common, model, version, "approved", reason=reason, by=by, wait=wait)


@cli.command()
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@_reason
@_by
@_wait
@target_options
def reject(common: Common, model: str, version: int, reason: str, by: str | None, wait: float) -> None:
    """Reject a REGISTERED version (sends Model Version Approval Requested)."""
    _decide(common, model, version, "rejected", reason=reason, by=by, wait=wait)


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
@click.option("--instance-type", default="ml.m5.large", show_default=True)
@click.option("--instance-count", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--reason", default="promoted with the shepherd CLI", show_default=True, help="Why.")
@_by
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
    sent = operations.request_promotion(
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
    )
    if common.json:
        output.print_json(sent)
        return
    output.render_sent(sent, f"Promotion of {model} {version} to {endpoint}")
    output.console().print(f"Follow it with: shepherd status {endpoint}")


@cli.command()
@click.argument("endpoint")
@click.option("--to-version", type=click.IntRange(min=1), help="Version to redeploy (default: the one live before).")
@_reason
@_by
@target_options
def rollback(common: Common, endpoint: str, to_version: int | None, reason: str, by: str | None) -> None:
    """Roll an endpoint back (sends Model Rollback Requested)."""
    target = common.target()
    sent = operations.request_rollback(target, endpoint, to_version, reason, by or target.caller())
    if common.json:
        output.print_json(sent)
        return
    output.render_sent(sent, f"Rollback of {endpoint}")
    output.console().print(f"Follow it with: shepherd status {endpoint}")


@cli.command()
@click.argument("endpoint")
@target_options
def status(common: Common, endpoint: str) -> None:
    """Live and candidate versions, variant weights, rollout phase and step, gating alarms."""
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
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option(
    "--host",
    default=None,
    help="Address to bind (default 127.0.0.1). The dashboard has no login: any other address exposes it.",
)
@target_options
def ui(common: Common, port: int, host: str | None) -> None:
    """Serve a read-only dashboard on 127.0.0.1: models, endpoints, rollouts, canary reports, history."""
    from shepherd_cli.ui.server import DEFAULT_HOST, build_server, check_bind

    bind = host or DEFAULT_HOST
    check_bind(bind, host_given=host is not None)
    target = common.target()  # fail now, not at the first page, when no Shepherd is reachable
    server = build_server(lambda: target, bind, port)
    click.echo(f"Shepherd dashboard for {target.describe()}: http://{bind}:{port}/  (Ctrl-C to stop)")
    server.run()


# --- local mode -----------------------------------------------------------------------------------


@cli.group()
def local() -> None:
    """Shepherd on this machine: template.yaml in an embedded AWS (moto), no account needed."""


_template = click.option(
    "--template",
    type=click.Path(path_type=Path),
    default=Path("template.yaml"),
    show_default=True,
    help="The SAM template to deploy.",
)


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
@click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE", help="A template parameter.")
@click.option("--verbose", is_flag=True, help="Also print controller ticks that only waited.")
@handle_errors
def local_up(template: Path, port: int, speed: float, parameters: tuple[str, ...], verbose: bool) -> None:
    """Run local mode in the foreground until Ctrl-C, printing each event as it flows."""
    from shepherd_cli.local.state import state_path
    from shepherd_cli.local.up import run_up

    code = run_up(
        template,
        out=output.console(),
        port=port,
        speed=speed,
        parameters=_parameters(parameters),
        state_file=state_path(),
        verbose=verbose,
    )
    sys.exit(code)


@local.command("demo")
@_template
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of the timeline.")
@handle_errors
def local_demo(template: Path, as_json: bool) -> None:
    """Register, approve, canary, catch a 5xx spike and roll back, on a simulated clock.

    Exits 0 only if every step happened as expected.
    """
    from shepherd_cli.local.demo import run_demo
    from shepherd_cli.local.demo_output import TimelinePrinter, print_summary

    if not template.is_file():
        raise CliError(f"no template at {template}: run from the Shepherd repository or pass --template")
    logging.getLogger("shepherd_cli.local.pump").setLevel(logging.CRITICAL)  # failures are in the timeline
    out = output.console()
    printer = None if as_json else TimelinePrinter(out, template)
    if as_json:  # anything a handler prints goes to stderr, so stdout is only the JSON
        with contextlib.redirect_stdout(sys.stderr):
            result = run_demo(template)
    else:
        result = run_demo(template, observer=printer, on_start=printer.started if printer else None)
    if as_json:
        output.print_json(result.to_json())
    else:
        print_summary(out, result)
    sys.exit(0 if result.ok else 1)


def main() -> None:
    cli(prog_name="shepherd")


if __name__ == "__main__":
    main()
