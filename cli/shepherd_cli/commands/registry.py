"""The registry's commands: models, versions and one version; approve and reject; rejected uploads."""

from __future__ import annotations

from typing import Any, Literal

import click

from shepherd_cli import bus_commands, operations, output
from shepherd_cli.commands.common import (
    Common,
    answered,
    by_option,
    reason_option,
    target_options,
    timeout_option,
    wait_option,
)


@click.command()
@target_options
def models(common: Common) -> None:
    """List the registered models."""
    found = operations.list_models(common.target())
    if common.json:
        output.print_json([model.model_dump(mode="json") for model in found])
    else:
        output.render_models(found)


@click.command()
@click.argument("model")
@target_options
def versions(common: Common, model: str) -> None:
    """List a model's versions, newest first."""
    found = operations.list_versions(common.target(), model)
    if common.json:
        output.print_json([version.model_dump(mode="json") for version in found])
    else:
        output.render_versions(found)


@click.command()
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
    answered(
        common,
        target,
        lambda: bus_commands.request_approval(target, model, version, decision, kw["reason"], by),
        f"{'Approval' if decision == 'approved' else 'Rejection'} of {model} v{version}",
        kw["wait"],
        kw["timeout"],
    )


@click.command()
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@reason_option
@by_option
@wait_option
@timeout_option
@target_options
def approve(common: Common, model: str, version: int, **options: Any) -> None:
    """Approve a REGISTERED version (sends Model Version Approval Requested, waits for the answer)."""
    _decide(common, model, version, "approved", **options)


@click.command()
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@reason_option
@by_option
@wait_option
@timeout_option
@target_options
def reject(common: Common, model: str, version: int, **options: Any) -> None:
    """Reject a REGISTERED version (sends Model Version Approval Requested, waits for the answer)."""
    _decide(common, model, version, "rejected", **options)


@click.command()
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
