"""The canary judge's verdict as `shepherd status` and `shepherd analysis` print it (from the JSON the
rollout record gives): tail metrics as shares of slow requests with their thresholds in ms, rates as
shares of failed requests, effects as +x%, and what an INCONCLUSIVE step waits for."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from shepherd_cli.analysis_view import current_step_lines, render_analysis

WAITING = "at 3.0 req/s to the candidate, a doubling of errors would be decided in about 40 more minutes"


def evidence(metric: str, kind: str, outcome: str, **values: Any) -> dict[str, Any]:
    return {
        "metric": metric, "kind": kind, "outcome": outcome, "critical": True, "direction": "higher_is_worse",
        "tolerance": 0.25 if kind == "rate" else 0.1, "samples": 1800, "min_samples": 500, "confidence": 0.9975,
        "rule": "the interval straddles the limit", **values,
    }  # fmt: skip


def step(outcome: str, **more: Any) -> dict[str, Any]:
    metrics = [
        evidence(
            "errors_5xx", "rate", "INCONCLUSIVE", candidate=0.004, baseline=0.003, relative_effect=0.333,
            interval=[-0.5, 2.0], decision_minutes=38.4,
        ),
        evidence(
            "latency_p99", "tail", "PASS", candidate=0.0041, baseline=0.0106, relative_effect=-0.614,
            interval=[-0.819, -0.285],
        ),
        evidence("latency_p50", "tail", "INCONCLUSIVE"),
    ]  # fmt: skip
    verdict = {"outcome": outcome, "critical_failure": False, "minutes": 5, "metrics": metrics, **more}
    return {"step": 0, "percent": 10, "decision": None, "verdict": verdict, "thresholds": {"latency_p99": 79_221.0}}


def printed(lines: list[Any]) -> str:
    console = Console(width=240, record=True)
    for line in lines:
        console.print(line)
    return console.export_text()


def test_status_shows_the_waiting_sentence_and_tail_metrics_in_words():
    rollout = {"step": 1, "analysis": [step("INCONCLUSIVE", waiting=WAITING)]}

    text = printed(current_step_lines(rollout))

    assert "canary analysis at 10%: INCONCLUSIVE after 5 min" in text
    assert f"waiting: {WAITING}" in text
    # A rate: the share of requests that failed, the effect with its interval, and the limit.
    assert "errors_5xx     INCONCLUSIVE +33.3% [-50.0%, +200.0%]  limit +25%  baseline 0.3%, candidate 0.4%" in text
    assert "decided in about 38 more min" in text
    # A tail metric: the share of requests slower than the baseline's threshold (ms), the candidate's with +10%.
    assert (
        "latency_p99    PASS         -61.4% [-81.9%, -28.5%]  limit +10%  "
        "slower than 79.2 ms (candidate: 87.1 ms): baseline 1.06%, candidate 0.41%"
    ) in text
    assert "latency_p50    INCONCLUSIVE no data yet" in text


def test_no_waiting_line_once_the_step_is_decided_or_when_the_judge_gives_none():
    assert "waiting" not in printed(current_step_lines({"step": 1, "analysis": [step("PASS", waiting=WAITING)]}))
    assert "waiting" not in printed(current_step_lines({"step": 1, "analysis": [step("INCONCLUSIVE")]}))


def test_shepherd_analysis_prints_thresholds_shares_and_limits():
    analysis = {
        "rollout_id": "r1", "endpoint_name": "churn-prod", "model_name": "churn", "version": 2,
        "previous_version": 1, "phase": "SHIFTING", "steps": [step("INCONCLUSIVE", waiting=WAITING)],
    }  # fmt: skip
    console = Console(width=240, record=True)

    render_analysis(console, analysis)

    text = console.export_text()
    assert f"waiting: {WAITING}" in text
    assert "latency thresholds (the baseline's, from before the step): latency_p99 79.2 ms" in text
    assert "LIMIT" in text and "+25%" in text and "+10%" in text
    assert "1.06%" in text and "0.41%" in text  # shares of slow requests, not microseconds
    assert "(decided in about 38 more min)" in text
    assert "latency: the share of requests slower than the threshold" in text


def test_a_paired_latency_is_said_in_ms_not_in_sagemakers_microseconds():
    from shepherd_cli.analysis_view import evidence_text

    p50 = evidence("latency_p50", "paired", "FAIL", baseline=39_815.0, candidate=60_840.0, relative_effect=0.528)

    shown = evidence_text(p50, {})

    assert (shown["baseline"], shown["candidate"], shown["effect"]) == ("39.8 ms", "60.8 ms", "+52.8%")
