"""How `shepherd local demo` reads to a person: the timeline as it happens, then the final status."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.text import Text

from shepherd_cli import output
from shepherd_cli.local.demo import DemoResult
from shepherd_cli.local.demo_expectations import Step, StepResult
from shepherd_cli.local.demo_world import ENDPOINT, MODEL, Demo
from shepherd_cli.local.monitor import Line

KIND_STYLES = {
    "action": "bold cyan",
    "announcement": "bold",
    "failure": "bold red",
    "controller": "dim",
    "invocation": "dim",
}


def clock(seconds: int) -> str:
    """Simulated time since the demo started: +MM:SS."""
    return f"+{seconds // 60:02d}:{seconds % 60:02d}"


class TimelinePrinter:
    """Prints each step and each timeline line as the demo runs."""

    def __init__(self, out: Console, template: Path) -> None:
        self.out = out
        self.template = template

    def started(self, demo: Demo) -> None:
        self.out.print(
            Text(
                f"Shepherd local demo: {self.template} deployed into an embedded AWS (moto) at "
                f"{demo.local.endpoint_url}, bucket {demo.target.bucket}",
                style="bold",
            )
        )
        self.out.print(
            f"Simulated time starts {output.when(demo.started_at)}; the rollout controller runs every simulated "
            f"minute. Model {MODEL}, endpoint {ENDPOINT}.",
            style="dim",
        )

    def step_started(self, number: int, step: Step, demo: Demo) -> None:
        self.out.print(Text.assemble("\n", (f"{number:>2}. {step.name}", "bold underline")))

    def line(self, line: Line, demo: Demo) -> None:
        self.out.print(
            Text.assemble(
                ("    " + clock(demo.elapsed(line.at)), "cyan"),
                "  ",
                (f"{line.title:<30}", KIND_STYLES.get(line.kind, "")),
                " ",
                line.details,
            )
        )

    def step_finished(self, number: int, result: StepResult, demo: Demo) -> None:
        at = clock(demo.elapsed(result.finished_at))
        if result.ok:
            self.out.print(Text.assemble(("    ✓ ", "bold green"), (f"as expected at {at}", "green")))
        else:
            self.out.print(Text.assemble(("    ✗ ", "bold red"), (f"not as expected at {at}: {result.problem}", "red")))


def print_summary(out: Console, result: DemoResult) -> None:
    out.print(Text("\nFinal status", style="bold"))
    if result.final_status is not None:
        output.render_status(result.final_status)
    out.print("Versions: " + ", ".join(f"{name} {status or '-'}" for name, status in result.versions.items()))
    minutes = result.simulated_seconds / 60
    timing = f"{minutes:.0f} simulated minutes in {result.wall_seconds:.1f} s"
    failed = result.failed_step
    if result.ok:
        out.print(Text(f"\nDemo passed: all {len(result.steps)} steps as expected ({timing}).", style="bold green"))
    elif failed is not None:
        number = result.steps.index(failed) + 1
        out.print(
            Text(f"\nDemo FAILED at step {number} ({failed.name}): {failed.problem} ({timing}).", style="bold red")
        )
    else:
        out.print(Text(f"\nDemo stopped after {len(result.steps)} steps ({timing}).", style="bold red"))
