"""The canary judge's verdicts in words and tables: a line per metric in `shepherd status`, and the
evidence per step in `shepherd analysis`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

OUTCOME_STYLES = {"PASS": "green", "FAIL": "bold red", "INCONCLUSIVE": "yellow"}


def current_step_lines(rollout: dict[str, Any]) -> list[Text]:
    """The verdict on the step the rollout is at (status), one line per metric."""
    steps = rollout.get("analysis") or []
    current = next((step for step in steps if step["step"] == rollout["step"] - 1), None)
    if current is None:
        return []
    verdict = current["verdict"]
    head = Text(f"           canary analysis at {current['percent']}%: ")
    head.append(verdict["outcome"], style=OUTCOME_STYLES.get(verdict["outcome"], ""))
    head.append(f" after {verdict['minutes']} min" + (f" -> {current['decision']}" if current["decision"] else ""))
    if current.get("extended_seconds"):
        head.append(f" (bake extended {current['extended_seconds']}s)")
    if current.get("resumed_by"):
        head.append(f", resumed by {current['resumed_by']}")
    lines = [head]
    for metric in verdict["metrics"]:
        line = Text(f"             {metric['metric']:<14} ")
        line.append(f"{metric['outcome']:<13}", style=OUTCOME_STYLES.get(metric["outcome"], ""))
        line.append(f"{_effect(metric)}  n={metric['samples']}/{metric['min_samples']}", style="dim")
        lines.append(line)
    return lines


def render_analysis(out: Console, analysis: dict[str, Any]) -> None:
    """Every judged step of a rollout: outcome, decision and each metric's evidence."""
    out.print(
        Text.assemble(
            ("Canary analysis of ", "bold"),
            (analysis["rollout_id"], "bold"),
            f" on {analysis['endpoint_name']}: {analysis['model_name']} v{analysis['version']}"
            f" against v{analysis['previous_version']} ({analysis['phase']})",
        )
    )
    if not analysis["steps"]:
        out.print("No step was judged (no live variant to compare with, the judge off, or no bake yet).")
        return
    for step in analysis["steps"]:
        verdict = step["verdict"]
        title = Text(f"Step {step['step'] + 1} at {step['percent']}%: ", style="bold")
        title.append(verdict["outcome"], style=OUTCOME_STYLES.get(verdict["outcome"], ""))
        title.append(
            f" over {verdict['minutes']} min"
            + (f" -> {step['decision']}" if step["decision"] else " (still judging)")
            + (f", bake extended {step['extended_seconds']}s" if step.get("extended_seconds") else "")
            + (f", metrics unreadable {step['metrics_unavailable']} times" if step.get("metrics_unavailable") else "")
            + (f", resumed by {step['resumed_by']}" if step.get("resumed_by") else "")
        )
        out.print(title)
        if not verdict["metrics"]:
            out.print("  (evidence of earlier steps is summarised)")
            continue
        table = Table("METRIC", "OUTCOME", "BASELINE", "CANDIDATE", "EFFECT", "INTERVAL", "SAMPLES", "RULE", box=None)
        table.columns[7].overflow = "fold"
        for metric in verdict["metrics"]:
            table.add_row(
                metric["metric"] + (" (critical)" if metric["critical"] else ""),
                Text(metric["outcome"], style=OUTCOME_STYLES.get(metric["outcome"], "")),
                _number(metric.get("baseline")),
                _number(metric.get("candidate")),
                _percent(metric.get("relative_effect")),
                _interval(metric.get("interval")),
                f"{metric['samples']}/{metric['min_samples']}",
                metric["rule"],
            )
        out.print(table)


def _effect(metric: dict[str, Any]) -> str:
    effect = metric.get("relative_effect")
    return f"{_percent(effect)} {_interval(metric.get('interval'))}  " if effect is not None else "no data yet  "


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def _interval(interval: list[float | None] | None) -> str:
    if not interval:
        return "-"
    low, high = interval
    return f"[{'-inf' if low is None else f'{100 * low:+.1f}%'}, {'+inf' if high is None else f'{100 * high:+.1f}%'}]"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
