"""What the CLI prints for a person says what the records say, character for character."""

from __future__ import annotations

from typing import Any

from shepherd_cli import output

RULE = "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


def rejection(reason: str) -> dict[str, Any]:
    return {
        "kind": "upload",
        "rejected_at": "2026-11-20T09:14:04+00:00",
        "model_name": "Churn_Predictor",
        "artifact": {"bucket": "b", "key": "models/Churn_Predictor/[v1]/model.tar.gz", "s3_version_id": "v1"},
        "code": "INVALID_MODEL_NAME",
        "reason": reason,
    }


def test_reasons_and_keys_are_printed_as_given_not_read_as_rich_markup(capsys):
    output.render_rejections([rejection(f"model name 'Churn_Predictor' must match {RULE}")])

    printed = capsys.readouterr().out
    assert RULE in printed and "models/Churn_Predictor/[v1]/model.tar.gz" in printed


def incident(trigger: str, alarm_name: str | None) -> dict[str, Any]:
    return {
        "trigger": trigger,
        "alarm_name": alarm_name,
        "state_reason": "threshold crossed",
        "restored_version": 1,
        "flipped_at": "2026-11-20T10:05:03+00:00",
        "seconds_to_flip": 3.2,
        "weights_before": {"churn-v1": 0.9, "churn-v2": 0.1},
        "weights_after": {"churn-v1": 1.0, "churn-v2": 0.0},
    }


def a_rollout(with_incident: dict[str, Any]) -> dict[str, Any]:
    return {
        "rollout_id": "20261120T100000Z-3fa9c1d2e4",
        "endpoint_name": "churn-prod",
        "previous_version": 1,
        "model_name": "churn",
        "version": 2,
        "phase": "ROLLED_BACK",
        "failure_reason": "rolled back",
        "plan": [{"percent": 10, "bake_seconds": 600}, {"percent": 100, "bake_seconds": 0}],
        "post_deploy_watch_seconds": 900,
        "requested_by": "alice",
        "started_at": "2026-11-20T10:00:00+00:00",
        "reason": "better",
        "timeline": [],
        "incident": with_incident,
    }


def test_an_incident_says_what_the_flip_is_timed_from_and_the_weights_in_percent(capsys):
    for trigger, alarm, after in [
        ("churn-prod-p99", "churn-prod-p99", "after the alarm"),
        ("bob", None, "after bob's request"),
        ("analysis", None, "after the canary judge's verdict"),
    ]:
        output.render_rollout(a_rollout(incident(trigger, alarm)))
        printed = capsys.readouterr().out
        assert f"(3.2s {after})" in printed
        assert "weights before: churn-v1 90%, churn-v2 10%; after: churn-v1 100%, churn-v2 0%" in printed
        assert "{'" not in printed


# --- the cost ledger (README, Cost ledger) --------------------------------------------------------------

COST = {
    "extra_instance_hours": 1.833,
    "extra_instance_hours_by_role": {"candidate": 1.833, "live-held": 0.0},
    "extra_instance_hours_by_type": {"ml.m5.xlarge": 1.833},
    "estimated_cost_usd": 0.42,
    "unpriced_instance_types": [],
    "price_table": "Shepherd's built-in approximate table (us-east-1 on-demand, 2026-12-06)",
    "as_of": "2026-11-20T11:01:00+00:00",
    "final": True,
}


def test_a_rollout_shows_its_extra_instance_hours_and_their_estimate_from_the_named_table(capsys):
    output.render_rollout({**a_rollout(None), "cost": COST})  # type: ignore[arg-type]

    printed = capsys.readouterr().out
    assert "Cost:      1.833 extra instance-hours (candidate 1.833, live-held 0), estimated $0.42" in printed
    assert "(estimate from Shepherd's built-in approximate table" in printed


def test_an_unpriced_type_is_named_instead_of_an_estimate_and_a_running_ledger_says_so_far(capsys):
    unpriced = {k: v for k, v in COST.items() if k != "estimated_cost_usd"}
    unpriced |= {"unpriced_instance_types": ["ml.p5.48xlarge"], "final": False, "price_table": "SSM parameter /acme/p"}

    output.render_rollout({**a_rollout(None), "cost": unpriced})  # type: ignore[arg-type]

    printed = capsys.readouterr().out
    assert "1.833 extra instance-hours so far" in printed
    assert "unpriced: ml.p5.48xlarge (estimate from SSM parameter /acme/p)" in printed
    assert "$" not in printed


def test_a_rollout_says_how_its_candidate_is_sized_and_the_limits_it_takes_over(capsys):
    sized = {
        "instance_type": "ml.m5.large",
        "candidate_instances": 3,
        "sized_to_share": True,
        "headroom": 1.2,
        "live_instances_at_start": 4,
        "min_capacity": 3,
        "max_capacity": 10,
    }
    output.render_rollout({**a_rollout(None), "capacity": sized})  # type: ignore[arg-type]

    printed = " ".join(capsys.readouterr().out.split())  # as read, whatever the terminal's width
    assert "Capacity: candidate ml.m5.large x 3 (sized to its share of 4 live, headroom 1.2)" in printed
    assert "once live: min 3, max 10" in printed

    fixed = {**sized, "sized_to_share": False, "headroom": None, "min_capacity": None, "max_capacity": None}
    output.render_rollout({**a_rollout(None), "capacity": fixed})  # type: ignore[arg-type]
    printed = " ".join(capsys.readouterr().out.split())
    assert "candidate ml.m5.large x 3 (fixed" in printed and "once live" not in printed


def test_a_rollout_from_before_the_ledger_shows_no_cost_line(capsys):
    output.render_rollout({**a_rollout(None), "cost": None})  # type: ignore[arg-type]

    assert "Cost:" not in capsys.readouterr().out
