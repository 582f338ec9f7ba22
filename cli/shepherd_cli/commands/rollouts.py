"""The rollouts' commands: promote (and its strategy flags), rollback, resume; an endpoint's status,
its rollouts and one rollout."""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

import click

from shepherd_cli import bus_commands, operations, output
from shepherd_cli.commands.common import (
    DURATION,
    Common,
    answered,
    by_option,
    reason_option,
    target_options,
    timeout_option,
    wait_option,
)
from shepherd_cli.endpoint_view import endpoint_status
from shepherd_cli.errors import CliError
from shepherd_cli.follow import follow
from shepherd_cli.subscription import Subscription


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


@click.command()
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
@click.option(
    "--headroom",
    type=click.FloatRange(1, 4),
    help="Size the candidate at each step to ceil(live count x share x HEADROOM) (default 1.2; "
    "an update without --instance-count).",
)
@click.option(
    "--min-capacity",
    type=click.IntRange(min=1),
    help="Auto scaling minimum of the new live variant once it takes over (default: the old variant's).",
)
@click.option(
    "--max-capacity",
    type=click.IntRange(min=1),
    help="Auto scaling maximum of the new live variant once it takes over (default: the old variant's).",
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
@by_option
@wait_option
@timeout_option
@click.option("--follow", is_flag=True, help="Once started, follow the rollout to its end (as status --watch).")
@target_options
def promote(common: Common, model: str, version: str, endpoint: str, **options: Any) -> None:
    """Roll a version out to a SageMaker endpoint (sends Model Promotion Requested).

    \b
    Examples:
      shepherd promote churn-predictor 4 churn-prod --canary 10 --bake 10m --watch 15m
      shepherd promote churn-predictor latest-approved churn-prod --linear 20 --interval 5m
      shepherd promote churn-predictor 4 churn-prod --all-at-once --alarm churn-prod-p99
      shepherd promote churn-predictor 4 churn-prod --canary 10 --headroom 1.5 --max-capacity 8
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
        return bus_commands.request_promotion(
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
            headroom=options["headroom"],
            min_capacity=options["min_capacity"],
            max_capacity=options["max_capacity"],
        )

    summary = f"Promotion of {model} {version} to {endpoint}"
    sent = answered(common, target, send, summary, options["wait"] or options["follow"], options["timeout"])
    if options["follow"]:
        with Subscription(target) as subscription:
            sys.exit(
                follow(target, endpoint, subscription=subscription, rollout_id=sent["rollout_id"], as_json=common.json)
            )
    if not common.json:
        output.console().print(f"Follow it with: shepherd status {endpoint} --watch (it says so if it is refused)")


@click.command()
@click.argument("endpoint")
@click.option("--to-version", type=click.IntRange(min=1), help="Version to redeploy (default: the one live before).")
@reason_option
@by_option
@wait_option
@timeout_option
@target_options
def rollback(
    common: Common, endpoint: str, to_version: int | None, reason: str, by: str | None, **options: Any
) -> None:
    """Roll an endpoint back (sends Model Rollback Requested, waits for the answer)."""
    target = common.target()
    answered(
        common,
        target,
        lambda: bus_commands.request_rollback(target, endpoint, to_version, reason, by or target.caller()),
        f"Rollback of {endpoint}",
        options["wait"],
        options["timeout"],
    )
    if not common.json:
        output.console().print(f"See it with: shepherd status {endpoint}")


@click.command()
@click.argument("endpoint")
@click.argument("rollout_id", metavar="[ROLLOUT_ID]", required=False)
@reason_option
@by_option
@wait_option
@timeout_option
@target_options
def resume(common: Common, endpoint: str, rollout_id: str | None, reason: str, by: str | None, **options: Any) -> None:
    """Resume a rollout the canary judge held (sends Model Rollout Resume Requested, waits for the answer)."""
    target = common.target()
    answered(
        common,
        target,
        lambda: bus_commands.request_resume(target, endpoint, rollout_id, reason, by or target.caller()),
        f"Resume of {rollout_id or 'the active rollout'} on {endpoint}",
        options["wait"],
        options["timeout"],
    )


@click.command()
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
    found = endpoint_status(common.target(), endpoint)
    if common.json:
        output.print_json(found)
    else:
        output.render_status(found)


@click.command()
@click.argument("endpoint")
@target_options
def rollouts(common: Common, endpoint: str) -> None:
    """The rollouts of an endpoint, newest first."""
    found = operations.list_rollouts(common.target(), endpoint)
    if common.json:
        output.print_json(found)
    else:
        output.render_rollouts(endpoint, found)


@click.command()
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
