"""The capacity options of a promotion as users send them: `shepherd promote --headroom --min-capacity
--max-capacity` puts them in `Model Promotion Requested`, and start_rollout parses them into the request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from shepherd.contracts import ModelPromotionRequested
from shepherd.inbound.promotion import parse_promotion
from shepherd_cli import bus_commands
from shepherd_cli.commands import rollouts

DETAIL = {
    "model_name": "churn-predictor",
    "version": 4,
    "endpoint_name": "churn-prod",
    "strategy": {"type": "canary", "canary_percent": 10, "bake_seconds": 600},
    "requested_by": "alice@example.com",
    "reason": "v4 beats v3 offline",
}


def event(**detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Model Promotion Requested",
        "source": "acme.ml-platform",
        "account": "123456789012",
        "time": "2026-11-20T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": DETAIL | detail,
    }


def test_the_capacity_options_reach_the_promotion_request():
    request = parse_promotion(event(headroom=1.5, min_capacity=2, max_capacity=8))

    assert (request.headroom, request.min_capacity, request.max_capacity) == (1.5, 2, 8)


def test_a_promotion_without_them_is_as_before():
    request = parse_promotion(event())

    assert (request.headroom, request.min_capacity, request.max_capacity) == (None, None, None)


@pytest.mark.parametrize(
    "detail", [{"headroom": 0.9}, {"headroom": 4.5}, {"min_capacity": 0}, {"max_capacity": -1}, {"max_capacity": 2.5}]
)
def test_out_of_range_options_break_the_contract(detail):
    with pytest.raises(ValidationError):
        ModelPromotionRequested.model_validate(DETAIL | detail)


class Sent:
    """What the CLI would put on the bus (the bus itself is not the subject here)."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []

    def __call__(self, target: Any, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        assert detail_type == ModelPromotionRequested.DETAIL_TYPE
        self.details.append(json.loads(json.dumps(detail)))  # as EventBridge carries it
        return {"event_id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "time": "2026-11-20T10:00:00+00:00"}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    sent = Sent()
    monkeypatch.setattr(bus_commands, "send_command", sent)
    monkeypatch.setattr(bus_commands.operations, "get_version", lambda target, model, version: None)
    monkeypatch.setattr(rollouts.Common, "target", lambda self: type("Target", (), {"caller": lambda _: "alice"})())
    monkeypatch.setattr(rollouts, "answered", lambda common, target, send, *rest: send())
    return sent


def promote(*options: str) -> Any:
    return CliRunner().invoke(rollouts.promote, ["churn-predictor", "4", "churn-prod", "--canary", "10", *options])


def test_shepherd_promote_sends_the_capacity_options(sent):
    result = promote("--headroom", "1.5", "--min-capacity", "2", "--max-capacity", "8", "--json")

    assert result.exit_code == 0, result.output
    [detail] = sent.details
    assert (detail["headroom"], detail["min_capacity"], detail["max_capacity"]) == (1.5, 2, 8)
    ModelPromotionRequested.model_validate(detail)


def test_shepherd_promote_leaves_unset_options_out_of_the_command(sent):
    result = promote("--json")

    assert result.exit_code == 0, result.output
    [detail] = sent.details
    assert not {"headroom", "min_capacity", "max_capacity"} & set(detail)


@pytest.mark.parametrize("option", [("--headroom", "0.5"), ("--min-capacity", "0"), ("--max-capacity", "0")])
def test_shepherd_promote_refuses_out_of_range_options(sent, option):
    result = promote(*option)

    assert result.exit_code == 2
    assert sent.details == []
