"""The dashboard's views: the timeline (from the audit trail's fields), the canary report, incidents,
the current verdict, charts in ms and %, paging, and the page shown when the target cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from shepherd.analysis.verdict import MetricEvidence, Verdict
from shepherd.rollouts.ports import EndpointAuditEntry, Incident, RolloutRequest, StoredRollout
from shepherd.rollouts.record import Phase
from shepherd.rollouts.step_analysis import MinuteSeries, StepAnalysis
from shepherd_cli.endpoint_metrics import variant_minutes
from shepherd_cli.errors import CliError
from shepherd_cli.target import Target
from shepherd_cli.ui.app import create_app
from shepherd_cli.ui.guard import Access
from shepherd_cli.ui.instances import configured_instances
from shepherd_cli.ui.paging import page_number, paginate
from shepherd_cli.ui.server import check_bind, is_loopback
from shepherd_cli.ui.views import analysis_of, current_verdict, incident_row, rollout_timeline
from tests.unit.test_controller_analysis import baking

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class _Rollout:
    rollout_id = "r1"
    ended_at = None
    updated_at = T0 + timedelta(minutes=5)


class _Stored:
    rollout = _Rollout()


def entry(
    minutes: int, action: str, rollout_id: str = "r1", traffic: tuple[int, int] | None = None, version: int = 2
) -> EndpointAuditEntry:
    return EndpointAuditEntry(
        endpoint_name="e", rollout_id=rollout_id, action=action, model_name="m", version=version, detail="why",
        actor="bob", at=T0 + timedelta(minutes=minutes), event_id=f"ev{minutes}",
        from_percent=traffic[0] if traffic else None, to_percent=traffic[1] if traffic else None,
    )  # fmt: skip


def test_points_follow_the_weight_requests_fields_and_reach_now():
    trail = [
        entry(0, "started"),
        entry(1, "traffic 0% -> 10%", traffic=(0, 10)),
        entry(2, "progress"),
        entry(3, "traffic 0% -> 50%", "other", traffic=(0, 50)),
    ]
    timeline = rollout_timeline(_Stored(), trail, None, now=T0 + timedelta(minutes=9))  # type: ignore[arg-type]
    assert [(p["at"][11:16], p["percent"]) for p in timeline["points"]] == [("12:00", 0), ("12:01", 10), ("12:09", 10)]
    assert [m["kind"] for m in timeline["markers"]] == ["started", "step", "progress"]
    assert timeline["markers"][1]["label"] == "traffic 0% -> 10%"


def test_the_timeline_reads_the_fields_never_the_words():
    # an action worded otherwise (as a later controller might) still moves the line by its fields
    trail = [entry(0, "started"), entry(1, "weights requested", traffic=(0, 25))]
    timeline = rollout_timeline(_Stored(), trail, None, now=T0 + timedelta(minutes=2))  # type: ignore[arg-type]
    assert [p["percent"] for p in timeline["points"]] == [0, 25, 25]


def test_an_entry_written_before_the_fields_still_shows_as_a_marker():
    trail = [entry(0, "started"), entry(1, "traffic 0% -> 10%")]  # an old item: no percent fields
    timeline = rollout_timeline(_Stored(), trail, None, now=T0 + timedelta(minutes=2))  # type: ignore[arg-type]
    assert [m["label"] for m in timeline["markers"]] == ["started", "traffic 0% -> 10%"]
    assert [p["percent"] for p in timeline["points"]] == [0, 0]


def test_a_rollback_drops_the_line_to_zero_at_the_flip_with_a_marker():
    trail = [
        entry(0, "started"),
        entry(1, "traffic 0% -> 10%", traffic=(0, 10)),
        entry(3, "traffic flipped back", traffic=(10, 0)),
        entry(4, "rolled back"),
    ]
    timeline = rollout_timeline(_Stored(), trail, None, now=T0 + timedelta(minutes=4))  # type: ignore[arg-type]
    assert [(p["at"][14:16], p["percent"]) for p in timeline["points"]] == [("00", 0), ("01", 10), ("03", 0), ("04", 0)]
    assert [m["kind"] for m in timeline["markers"]][-2:] == ["flip", "rollback"]


def test_an_old_trail_without_the_flips_percent_drops_at_the_rollbacks_end():
    trail = [entry(0, "started"), entry(1, "traffic 0% -> 10%", traffic=(0, 10)), entry(4, "rolled back")]
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


# --- the endpoint page's incidents, verdict, charts; paging; the page when the target is gone ----


def incident(minutes: int, **changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "endpoint_name": "e", "rollout_id": f"r{minutes}", "model_name": "m", "version": 3, "restored_version": 2,
        "trigger": "bob", "alarm_name": None, "state_reason": "requested by bob: slow", "state_reason_data": None,
        "alarm_changed_at": T0, "flipped_at": T0 + timedelta(minutes=minutes), "seconds_to_flip": 1.5,
        "weights_before": {}, "weights_after": {}, "timeline": [],
    }  # fmt: skip
    return Incident(**(fields | changes))


def test_an_incident_says_what_triggered_it_and_what_its_seconds_count_from():
    by_alarm = incident_row(incident(1, trigger="shepherd-e-r1-error-rate", alarm_name="shepherd-e-r1-error-rate"))
    by_judge = incident_row(incident(2, trigger="analysis", state_reason="canary analysis failed"))
    by_operator = incident_row(incident(3))
    assert [(row["cause"], row["since"]) for row in (by_alarm, by_judge, by_operator)] == [
        ("alarm", "after the alarm"),
        ("canary judge", "after the judge's verdict"),
        ("operator", "after the request"),
    ]
    assert by_operator["rollout_id"] == "r3" and "timeline" not in by_operator


def test_the_endpoint_page_verdict_is_the_current_steps():
    at = datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    verdict = Verdict(outcome="INCONCLUSIVE", critical_failure=False, minutes=2, metrics=())
    first = StepAnalysis(step=0, percent=10, judged_at=at, verdict=verdict.model_copy(update={"outcome": "PASS"}))
    rollout = baking(step_index=1, current_percent=50).with_step_analysis(first)
    rollout = rollout.with_step_analysis(StepAnalysis(step=1, percent=50, judged_at=at, verdict=verdict))
    shown = current_verdict(StoredRollout(rollout, RolloutRequest(requested_by="a", reason="b", event_id="e")))
    assert shown is not None
    assert (shown["step"], shown["percent"], shown["verdict"], shown["final"]) == (2, 50, "INCONCLUSIVE", False)


def test_pages_cut_a_long_list_and_clamp_the_page_number():
    rows = list(range(120))
    assert paginate(rows, 1, 50)["rows"] == rows[:50]
    last = paginate(rows, 9, 50)
    assert (last["page"], last["pages"], last["total"], last["rows"]) == (3, 3, 120, rows[100:])
    assert paginate([], 1, 50) | {"rows": None} == {"rows": None, "page": 1, "pages": 1, "total": 0, "page_size": 50}
    assert [page_number(value) for value in ("2", "0", "-1", "x", None)] == [2, 1, 1, 1, 1]


class _CloudWatch:
    """GetMetricData's answer for two variants' minute: latency in microseconds, counts of requests."""

    def get_metric_data(self, **params: Any) -> dict[str, Any]:
        minute = T0 + timedelta(minutes=1)
        values = {"v0_req": 1800.0, "v0_err": 9.0, "v0_p99": 79_815.0, "v1_req": 0.0, "v1_err": 0.0}
        return {
            "MetricDataResults": [
                {"Id": query["Id"], "Timestamps": [minute], "Values": [values[query["Id"]]]}
                for query in params["MetricDataQueries"]
                if query["Id"] in values
            ]
        }


def test_the_endpoint_charts_say_latency_in_ms_and_errors_in_percent():
    found = variant_minutes(_CloudWatch(), "e", ["m-v1", "m-v2"], T0 + timedelta(minutes=5))
    v1, v2 = found["variants"]
    assert found["minutes"] == [(T0 + timedelta(minutes=1)).timestamp()]
    assert (v1["requests"], v1["error_rate_percent"], v1["latency_p99_ms"]) == ([1800.0], [0.5], [79.815])
    # no request that minute: no rate at all rather than a 0% never measured
    assert (v2["requests"], v2["error_rate_percent"], v2["latency_p99_ms"]) == ([0.0], [None], [None])


def test_instances_follow_the_rollouts_configs_and_end_with_what_sagemaker_reports():
    request = RolloutRequest(requested_by="a", reason="b", event_id="e")
    done = baking(phase=Phase.COMPLETED, ended_at=T0 + timedelta(minutes=20))
    now = T0 + timedelta(minutes=30)
    described = [{"variant_name": done.candidate.variant_name, "instance_count": 3}]  # autoscaled since

    chart = configured_instances([StoredRollout(done, request)], described, now)

    assert chart["times"] == [t.timestamp() for t in (done.started_at, T0 + timedelta(minutes=20), now)]
    assert {row["variant_name"]: row["instances"] for row in chart["variants"]} == {
        done.live.variant_name: [1, None, None],  # type: ignore[union-attr]
        done.candidate.variant_name: [1, 1, 3],
    }


def test_with_local_mode_stopped_a_page_says_what_to_run_instead_of_a_500():
    from starlette.testclient import TestClient

    gone = Target(
        "local", "shepherd-local", "eu-west-1",
        {"ArtifactBucketName": "b", "RegistryTableName": "t", "EventBusName": "bus"},
        boto3.session.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"),
        endpoint_url="http://127.0.0.1:9",  # the discard port: nothing answers
    )  # fmt: skip
    client = TestClient(create_app(lambda: gone, Access(token="t", port=8765)), base_url="http://127.0.0.1:8765")
    client.cookies.set("shepherd_ui_8765", "t")  # as the printed address sets it (test_dashboard_guard.py)

    page = client.get("/endpoints")
    assert page.status_code == 503
    assert "Local mode is not running" in page.text and "shepherd local up" in page.text
    polled = client.get("/api/endpoints/e")
    assert polled.status_code == 503 and polled.json()["title"] == "Local mode is not running"


def test_a_reached_step_shows_alike_whether_its_entry_has_the_field_or_only_the_words():
    new = EndpointAuditEntry.model_validate({**entry(2, "progress").model_dump(), "reached_step": 0})
    old = entry(2, "progress")  # written before reached_step existed
    shown = [
        rollout_timeline(_Stored(), [entry(0, "started"), step], None, now=T0 + timedelta(minutes=3))  # type: ignore[arg-type]
        for step in (new, old)
    ]
    assert shown[0] == shown[1]
    assert [m["label"] for m in shown[0]["markers"]] == ["started", "step reached"]
