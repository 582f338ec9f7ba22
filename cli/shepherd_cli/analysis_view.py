"""The canary judge's verdicts in words and tables: a line per metric in `shepherd status`, the
evidence per step in `shepherd analysis`, and the same words for the dashboard (`evidence_text`).

What each kind of metric compares, as an on-call engineer reads it:

- a rate (5xx, 4xx): the share of requests that failed, baseline and candidate (``0.41%``);
- a tail metric (latency): the share of requests slower than a threshold taken from the baseline
  before the step (its p50 or p99, in ms); the candidate's threshold is that plus the tolerance, so
  ``+0%`` means "no more slow requests than the baseline, allowing 10% more latency";
- a paired metric (a KPI): the geometric mean of its per-minute values.

The effect is candidate / baseline - 1 (``+12.0%``) with its interval, and the limit is the
tolerance the candidate may not exceed. An INCONCLUSIVE step says what it is waiting for
(``Verdict.waiting``) when the judge can tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shepherd_cli.safe_text import clean

OUTCOME_STYLES = {"PASS": "green", "FAIL": "bold red", "INCONCLUSIVE": "yellow"}
# Built-in paired metrics compared on SageMaker's ModelLatency, in microseconds: said in ms (a user
# metric cannot take a built-in's name).
MICROSECOND_METRICS = frozenset({"latency_p50"})


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
        head.append(clean(f", resumed by {current['resumed_by']}"))
    lines = [head]
    if waiting := waiting_sentence(verdict):
        lines.append(Text(f"           waiting: {waiting}", style="yellow"))
    thresholds = current.get("thresholds") or {}
    for metric in verdict["metrics"]:
        shown = evidence_text(metric, thresholds)
        line = Text(f"             {metric['metric']:<14} ")
        line.append(f"{metric['outcome']:<13}", style=OUTCOME_STYLES.get(metric["outcome"], ""))
        if metric.get("relative_effect") is None:
            line.append("no data yet  ", style="dim")
        else:
            line.append(f"{shown['effect']} {shown['interval']}  limit {shown['limit']}  ", style="dim")
            line.append(f"{shown['compared']}  ", style="dim")
        line.append(f"n={metric['samples']}/{metric['min_samples']}", style="dim")
        if shown["decided_in"]:
            line.append(f"  {shown['decided_in']}", style="yellow")
        lines.append(line)
    return lines


def waiting_sentence(verdict: Mapping[str, Any]) -> str | None:
    """What an INCONCLUSIVE verdict waits for, when the judge says (``Verdict.waiting``)."""
    waiting = verdict.get("waiting")
    return str(waiting) if waiting and verdict.get("outcome") == "INCONCLUSIVE" else None


def evidence_text(metric: Mapping[str, Any], thresholds: Mapping[str, float]) -> dict[str, str]:
    """One metric's evidence in words: what is compared (``compared``, ``baseline``, ``candidate``),
    the effect, its interval, the limit, and when an undecided metric would be decided."""
    baseline, candidate = metric.get("baseline"), metric.get("candidate")
    if metric.get("kind") in ("rate", "tail"):
        baseline_text, candidate_text = _share(baseline), _share(candidate)
    elif metric.get("metric") in MICROSECOND_METRICS:
        baseline_text, candidate_text = _optional_ms(baseline), _optional_ms(candidate)
    else:
        baseline_text, candidate_text = _number(baseline), _number(candidate)
    compared = f"baseline {baseline_text}, candidate {candidate_text}"
    if metric.get("kind") == "tail":
        threshold = thresholds.get(str(metric.get("metric")))
        if threshold is None:
            compared = "latency threshold not set yet (no latency of the baseline read yet)"
        else:
            allowed = threshold * (1 + float(metric.get("tolerance", 0.0)))
            compared = f"slower than {_ms(threshold)} (candidate: {_ms(allowed)}): {compared}"
    minutes = metric.get("decision_minutes")
    decided_in = (
        f"decided in about {minutes:.0f} more min"
        if minutes is not None and metric.get("outcome") == "INCONCLUSIVE"
        else ""
    )
    return {
        "compared": compared,
        "baseline": baseline_text,
        "candidate": candidate_text,
        "effect": _percent(metric.get("relative_effect")),
        "interval": _interval(metric.get("interval")),
        "limit": _limit(metric),
        "decided_in": decided_in,
    }


def render_analysis(out: Console, analysis: dict[str, Any]) -> None:
    """Every judged step of a rollout: outcome, decision and each metric's evidence."""
    out.print(_heading("Canary analysis of ", analysis, f" ({analysis['phase']})"))
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
        if waiting := waiting_sentence(verdict):
            out.print(Text(f"  waiting: {waiting}", style="yellow"))
        if not verdict["metrics"]:
            out.print("  (evidence of earlier steps is summarised)")
            continue
        thresholds = step.get("thresholds") or {}
        if thresholds:
            limits = ", ".join(f"{name} {_ms(value)}" for name, value in sorted(thresholds.items()))
            out.print(f"  latency thresholds (the baseline's, from before the step): {limits}")
        table = Table(
            "METRIC", "OUTCOME", "BASELINE", "CANDIDATE", "EFFECT", "INTERVAL", "LIMIT", "SAMPLES", "RULE", box=None
        )
        table.columns[8].overflow = "fold"
        for metric in verdict["metrics"]:
            shown = evidence_text(metric, thresholds)
            table.add_row(
                clean(metric["metric"]) + (" (critical)" if metric["critical"] else ""),
                Text(metric["outcome"], style=OUTCOME_STYLES.get(metric["outcome"], "")),
                shown["baseline"],
                shown["candidate"],
                shown["effect"],
                shown["interval"],
                shown["limit"],
                f"{metric['samples']}/{metric['min_samples']}",
                metric["rule"] + (f" ({shown['decided_in']})" if shown["decided_in"] else ""),
            )
        out.print(table)
        out.print(Text("  " + _legend(verdict["metrics"]), style="dim"))


def _legend(metrics: list[dict[str, Any]]) -> str:
    """What BASELINE and CANDIDATE are, for the kinds of metric in the table."""
    kinds = {metric.get("kind") for metric in metrics}
    parts = []
    if "rate" in kinds:
        parts.append("errors: the share of requests that failed")
    if "tail" in kinds:
        parts.append("latency: the share of requests slower than the threshold (the candidate's: plus its limit)")
    if "paired" in kinds:
        parts.append("other metrics: the geometric mean of the per-minute values")
    return "; ".join(parts) + ". EFFECT: candidate / baseline - 1."


def _limit(metric: Mapping[str, Any]) -> str:
    tolerance = 100 * float(metric.get("tolerance", 0.0))
    sign = {"higher_is_worse": "+", "lower_is_worse": "-"}.get(str(metric.get("direction")), "±")
    return f"{sign}{tolerance:.0f}%" if tolerance == round(tolerance) else f"{sign}{tolerance:.1f}%"


def _share(value: float | None) -> str:
    """A share of requests: 0.0041 -> "0.41%"."""
    if value is None:
        return "-"
    return "<0.001%" if 0 < value < 1e-5 else f"{100 * value:.3g}%"


def _optional_ms(microseconds: float | None) -> str:
    return "-" if microseconds is None else _ms(microseconds)


def _ms(microseconds: float) -> str:
    """SageMaker's ModelLatency is in microseconds: 79221 -> "79.2 ms"."""
    ms = microseconds / 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


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


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def _heading(what: str, rollout: dict[str, Any], after: str = "") -> Text:
    """``<what> <rollout id> on <endpoint>: <model> v<version> against v<previous>``, the id in bold."""
    return Text.assemble(
        (what, "bold"),
        (clean(rollout["rollout_id"]), "bold"),
        clean(
            f" on {rollout['endpoint_name']}: {rollout['model_name']} v{rollout['version']}"
            f" against v{rollout['previous_version']}{after}"
        ),
    )


def _interval(interval: list[float | None] | None) -> str:
    if not interval:
        return "-"
    low, high = interval
    return f"[{'-inf' if low is None else f'{100 * low:+.1f}%'}, {'+inf' if high is None else f'{100 * high:+.1f}%'}]"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def render_replay(out: Console, replayed: dict[str, Any]) -> None:
    """A replay, step by step: per minute the verdict, each metric's outcome and the decision."""
    out.print(_heading("Replay of ", replayed))
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
