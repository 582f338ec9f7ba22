"""`shepherd local`: Shepherd on this machine (up, traffic, env, alarm, demo)."""

from __future__ import annotations

import contextlib
import logging
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from shepherd_cli import output
from shepherd_cli.commands.common import Common, handle_errors, target_options
from shepherd_cli.errors import CliError
from shepherd_cli.local.state import read_state
from shepherd_cli.target import LOCAL_CREDENTIALS, resolve


@click.group()
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


def _load(text: str) -> Any:
    """--rps's value as a `load.Load` (imported here: the CLI loads the local modules lazily)."""
    from shepherd_cli.local.load import parse_rps

    try:
        return parse_rps(text)
    except ValueError as error:
        raise CliError(str(error)) from None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@local.command("up")
@_template
@click.option("--port", type=click.IntRange(0, 65535), default=4750, show_default=True, help="0 picks a free port.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Simulated time per real second.")
@click.option(
    "--rps",
    default="300",  # simulation.DEFAULT_RPS (not imported here: it loads moto)
    show_default=True,
    metavar="RPS|RPS@MINUTE,...",
    help="Simulated requests per second to every endpoint (0: no traffic), or a ramp of RPS@MINUTE points "
    "from the first simulated minute, linear between them, the last rate held (100@0,2000@30).",
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
    template: Path | None, port: int, speed: float, rps: str, parameters: tuple[str, ...], **options: Any
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
        rps=_load(rps),
        parameters=_parameters(parameters),
        state_file=state_path(),
        state_dir=options["state_dir"],
        fresh=options["fresh"],
        verbose=options["verbose"],
    )
    sys.exit(code)


@local.command("traffic")
@click.argument("model_name", required=False)
@click.argument("version", type=click.IntRange(min=1), required=False)
@click.option("--latency-ms", type=float, help="Median model latency (required with MODEL_NAME VERSION).")
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
@click.option(
    "--rps",
    default=None,
    metavar="RPS|RPS@MINUTE,...",
    help="The load on every endpoint from the minute in progress: requests per second, or a ramp of "
    "RPS@MINUTE points counted from now, linear between them, the last rate held (100@0,2000@30: "
    "from 100 to 2,000 over 30 simulated minutes). Replaces `local up --rps`.",
)
@target_options
def local_traffic(
    common: Common,
    model_name: str | None,
    version: int | None,
    latency_ms: float | None,
    p99_ms: float | None,
    error_percent: float,
    rps: str | None,
    **more: Any,
) -> None:
    """How VERSION of MODEL_NAME answers local mode's simulated traffic, and (--rps) how much traffic
    every endpoint gets, from the simulated minute in progress.

    \b
    shepherd local traffic churn-predictor 2 --latency-ms 120 --error-percent 2
    shepherd local traffic --rps 100@0,2000@30     # a ramp over 30 simulated minutes
    shepherd local traffic --rps 2000@0,2000@20,300@40   # hold, then fall
    """
    from shepherd_cli.local.load import set_load
    from shepherd_cli.local.traffic_behaviour import Behaviour, parameter_name, set_behaviour

    if common.stack:
        raise CliError("`shepherd local traffic` changes the simulated traffic of `shepherd local up` only")
    if model_name is None and rps is None:
        raise CliError("say what to change: MODEL_NAME VERSION --latency-ms MS (a version's answers), --rps, or both")
    if model_name is not None and (version is None or latency_ms is None):
        raise CliError("MODEL_NAME needs a VERSION and --latency-ms")
    try:
        load = _load(rps) if rps is not None else None
        behaviour = Behaviour.of(latency_ms, p99_ms, error_percent, **more) if latency_ms is not None else None
        named = (model_name, version) if model_name is not None and version is not None else None
        name = parameter_name(*named) if named is not None else None
    except ValueError as error:
        raise CliError(str(error)) from None
    target = resolve(None, True, common.region)
    result: dict[str, Any] = {}
    if load is not None:
        now = target.simulated_now()
        # Minute 0 is the minute in progress (the simulator's minutes start on the minute).
        load = load.starting(now.replace(second=0, microsecond=0)) if now is not None else load
        set_load(target.client("ssm"), load)
        points = [{"rps": point.rps, "minute": point.minute} for point in load.points]
        result["load"] = {"points": points, "start": _iso(load.start)}
        if not common.json:
            click.echo(f"load: {load.describe()}, from the simulated minute in progress")
    if behaviour is not None and named is not None:
        set_behaviour(target.client("ssm"), *named, behaviour)
        result |= {"model_name": model_name, "version": version, "parameter": name, **vars(behaviour)}
        if not common.json:
            click.echo(f"{model_name} v{version}: {behaviour.describe()} (from the simulated minute in progress)")
    if common.json:
        output.print_json(result)


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
