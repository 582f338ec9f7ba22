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
    head.append(_advisory_or_held(current))
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
            + _advisory_or_held(step)
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


def _advisory_or_held(step: dict[str, Any]) -> str:
    """What an advisory decision is (not acted on), and how long a step was held."""
    if step.get("advisory"):
        return " (advisory: not acted on)"
    if step.get("held_since"):
        held = f", held since {step['held_since']}"
        if step.get("hold_timed_out"):
            held += " until its deadline"
        return held
    return ""


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


def render_replay(out: Console, replayed: dict[str, Any]) -> None:
    """A replay, step by step: per minute the verdict, each metric's outcome and the decision."""
    out.print(
        Text.assemble(
            ("Replay of ", "bold"),
            (replayed["rollout_id"], "bold"),
            f" on {replayed['endpoint_name']}: {replayed['model_name']} v{replayed['version']}"
            f" against v{replayed['previous_version']}",
        )
    )
    if not replayed["steps"]:
        out.print("No step was judged: nothing to replay.")
    for step in replayed["steps"]:
        title = Text(f"Step {step['step'] + 1} at {step['percent']}%", style="bold")
        if "skipped" in step:
            out.print(title.append(f": skipped ({step['skipped']})", style=""))
            continue
        out.print(title.append(f" from {step['started_at']} to {step['ended_at']}", style=""))
        names = list(step["minutes"][0]["metrics"]) if step["minutes"] else []
        table = Table("MINUTE", "AT", *(name.upper() for name in names), "VERDICT", "DECISION", box=None)
        for minute in step["minutes"]:
            decision = minute["decision"] or "-"
            table.add_row(
                str(minute["minute"]),
                minute["at"][11:16],
                *(_outcome(minute["metrics"].get(name)) for name in names),
                _outcome(minute["outcome"]),
                Text(decision, style="bold" if minute["decided_now"] else "dim"),
            )
        out.print(table)
        happened, replayed = step["happened"], step["replayed"]
        then = f"{happened['decision'] or 'no decision'}" + (" (advisory)" if happened["advisory"] else "")
        if happened["resumed_by"]:
            then += f", resumed by {happened['resumed_by']}"
        now = replayed["decision"] or "no decision"
        line = Text(
            f"  happened: {then} at {happened['decided_at'] or '-'}; replayed: {now} at {replayed['decided_at'] or '-'}"
        )
        if step["differs"]:
            line.append("  DIFFERS", style="bold magenta")
        out.print(line)


def _outcome(outcome: str | None) -> Text:
    return Text(outcome or "-", style=OUTCOME_STYLES.get(outcome or "", ""))
