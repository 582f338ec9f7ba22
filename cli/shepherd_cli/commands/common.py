"""What every command shares: the target options (--stack, --local, --region, --json), expected
errors as one line on stderr, durations, and sending a command then waiting for Shepherd's answer."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.text import Text

from shepherd.kernel.errors import TransientError
from shepherd_cli import command_answers, output
from shepherd_cli.announcements import REFUSALS, describe_announcement
from shepherd_cli.errors import CliError, Terminated
from shepherd_cli.safe_text import clean
from shepherd_cli.subscription import Subscription
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


def answered(
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
        sent["answer"] = command_answers.wait_for_answer(target, subscription, sent, timeout)
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


reason_option = click.option("--reason", required=True, help="Why (kept in the audit trail).")
by_option = click.option("--by", help="Who asks (default: your AWS identity, or $USER locally).")
wait_option = click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait for Shepherd's answer (exit 1 if refused)."
)
timeout_option = click.option(
    "--timeout", type=DURATION, default=60, show_default=True, help="How long to wait for the answer (exit 3 after)."
)
