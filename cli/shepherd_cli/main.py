"""`shepherd`: operate Shepherd, deployed or local.

Reads (models, versions, show, status, history) use the shared package's adapters and SageMaker and
CloudWatch describes; changes (approve, reject, promote, rollback) are commands sent to the
Shepherd bus, which the stack's functions carry out, and the CLI waits for Shepherd's answer to each
(`subscription.py`, `command_answers.wait_for_answer`). Every command takes ``--json`` for scripts and
exits non-zero, with one line on stderr and no traceback, on an expected error.

Which Shepherd: ``--stack NAME`` (a deployed stack, found by its CloudFormation Outputs) or
``--local`` (a running `shepherd local up`, found through ``.shepherd/local.json`` or
``$SHEPHERD_ENDPOINT_URL``); see `shepherd_cli.target`.
"""

from __future__ import annotations

import signal

import click

from shepherd_cli.commands.analysis import analysis
from shepherd_cli.commands.local import local
from shepherd_cli.commands.registry import approve, models, reject, rejections, show, versions
from shepherd_cli.commands.rollouts import promote, resume, rollback, rollout, rollouts, status
from shepherd_cli.commands.watch import cleanup, events, history, ui
from shepherd_cli.errors import raise_terminated


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="shepherd", prog_name="shepherd")
def cli() -> None:
    """Shepherd: a model registry and safe SageMaker rollouts.

    Point it at a deployed stack with --stack NAME (or SHEPHERD_STACK), or at a running
    `shepherd local up` with --local (found through .shepherd/local.json in the current
    directory or one above it up to the repository root or home, SHEPHERD_ENDPOINT_URL, or
    AWS_ENDPOINT_URL).
    """


REGISTRY = (models, versions, show, approve, reject, rejections)
ROLLOUTS = (promote, rollback, resume, status, rollouts, rollout)
for command in (*REGISTRY, *ROLLOUTS, analysis, history, events, cleanup, ui, local):
    cli.add_command(command)


def main() -> None:
    signal.signal(signal.SIGTERM, raise_terminated)  # cleans up like Ctrl-C (`local up` and `ui` set their own)
    cli(prog_name="shepherd")


if __name__ == "__main__":
    main()
