"""The dashboard's timeline: the candidate's percent over time, from the endpoint's audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shepherd.analysis.verdict import MetricEvidence, Verdict
from shepherd.rollouts.ports import EndpointAuditEntry, RolloutRequest, StoredRollout
from shepherd.rollouts.step_analysis import MinuteSeries, StepAnalysis
from shepherd_cli.errors import CliError
from shepherd_cli.ui.server import check_bind, is_loopback
from shepherd_cli.ui.views import analysis_of, rollout_timeline
from tests.unit.test_controller_analysis import baking

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class _Rollout:
    rollout_id = "r1"
    ended_at = None
    updated_at = T0 + timedelta(minutes=5)


class _Stored:
    rollout = _Rollout()


def entry(minutes: int, action: str, rollout_id: str = "r1") -> EndpointAuditEntry:
    return EndpointAuditEntry(
        endpoint_name="e", rollout_id=rollout_id, action=action, model_name="m", version=2, detail="why",
        actor="bob", at=T0 + timedelta(minutes=minutes), event_id=f"ev{minutes}",
    )  # fmt: skip


def test_points_follow_the_weight_requests_and_reach_now():
    trail = [
        entry(0, "started"),
        entry(1, "traffic 0% -> 10%"),
        entry(2, "progress"),
        entry(3, "traffic 0% -> 50%", "other"),
    ]
    timeline = rollout_timeline(_Stored(), trail, None, now=T0 + timedelta(minutes=9))  # type: ignore[arg-type]
    assert [(p["at"][11:16], p["percent"]) for p in timeline["points"]] == [("12:00", 0), ("12:01", 10), ("12:09", 10)]
    assert [m["kind"] for m in timeline["markers"]] == ["started", "step", "progress"]


def test_a_rollback_drops_the_line_to_zero_with_a_marker():
    trail = [entry(0, "started"), entry(1, "traffic 0% -> 10%"), entry(4, "rolled back")]
    timeline = rollout_timeline(_Stored(), trail, None, now=T0 + timedelta(minutes=4))  # type: ignore[arg-type]
    assert [p["percent"] for p in timeline["points"]] == [0, 10, 0]
    assert timeline["markers"][-1]["kind"] == "rollback"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_needs_no_flag(host):
    assert is_loopback(host)
    check_bind(host, host_given=False)


def test_another_address_needs_an_explicit_host():
    with pytest.raises(CliError, match="no login"):
        check_bind("0.0.0.0", host_given=False)
    check_bind("0.0.0.0", host_given=True)


def test_the_rollout_page_gets_the_stored_verdicts_in_the_shape_dashboard_js_draws():
    at = datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    p99 = MetricEvidence(
        metric="latency_p99",
        kind="tail",
        outcome="FAIL",
        critical=True,
        direction="higher_is_worse",
        tolerance=0.1,
        samples=6000,
        min_samples=500,
        confidence=0.9975,
        rule="above 1.1",
        candidate=0.065,  # the share of requests slower than the threshold
        baseline=0.01,
        relative_effect=5.5,
        interval=(2.6, 11.4),
    )
    entry = StepAnalysis(
        step=0,
        percent=10,
        judged_at=at,
        verdict=Verdict(outcome="FAIL", critical_failure=True, minutes=6, metrics=(p99,)),
        decision="rollback",
        series={"model_latency_p99": MinuteSeries(minutes=(at,), baseline=(80_000.0,), candidate=(112_000.0,))},
        thresholds={"latency_p99": 79_221.0},
    )
    stored = StoredRollout(
        baking().with_step_analysis(entry), RolloutRequest(requested_by="a", reason="b", event_id="e")
    )

    [step] = analysis_of(stored)

    assert (step["step"], step["percent"], step["verdict"], step["decision"]) == (1, 10, "FAIL", "rollback")
    assert step["waiting"] is None  # decided: nothing to wait for
    assert step["thresholds_ms"] == {"latency_p99": 79.221}
    [metric] = step["metrics"]
    assert (metric["name"], metric["verdict"], metric["relative_effect"], metric["interval"]) == (
        "latency_p99",
        "FAIL",
        5.5,
        [2.6, 11.4],
    )
    # In words, as `shepherd status` says it: shares of slow requests, the effect, the limit.
    assert metric["shown"] == {
        "compared": "slower than 79.2 ms (candidate: 87.1 ms): baseline 1%, candidate 6.5%",
        "baseline": "1%",
        "candidate": "6.5%",
        "effect": "+550.0%",
        "interval": "[+260.0%, +1140.0%]",
        "limit": "+10%",
        "decided_in": "",
    }
    # The per-minute p99 of both variants, charted in ms.
    assert metric["series"] == {"baseline": [80.0], "candidate": [112.0], "label": "model_latency_p99 (ms)"}


def test_an_inconclusive_step_says_what_it_waits_for():
    at = datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    errors = MetricEvidence(
        metric="errors_5xx", kind="rate", outcome="INCONCLUSIVE", critical=True, direction="higher_is_worse",
        tolerance=0.25, samples=900, min_samples=500, confidence=0.9975, rule="interval straddles 1.25",
        candidate=0.004, baseline=0.003, relative_effect=0.33, interval=(-0.5, 2.0),
    )  # fmt: skip
    waiting = "at 3.0 req/s to the candidate, a doubling of errors would be decided in about 40 more minutes"
    verdict = Verdict(outcome="INCONCLUSIVE", critical_failure=False, minutes=5, metrics=(errors,), waiting=waiting)
    entry = StepAnalysis(step=0, percent=10, judged_at=at, verdict=verdict)
    stored = StoredRollout(
        baking().with_step_analysis(entry), RolloutRequest(requested_by="a", reason="b", event_id="e")
    )

    [step] = analysis_of(stored)

    assert step["waiting"] == waiting
    [metric] = step["metrics"]
    assert (metric["shown"]["baseline"], metric["shown"]["candidate"], metric["shown"]["limit"]) == (
        "0.3%",
        "0.4%",
        "+25%",
    )
