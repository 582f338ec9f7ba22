"""The dashboard's rollout page shows the cost ledger (templates/_cost.html, README, Cost ledger)."""

from __future__ import annotations

from pathlib import Path

from starlette.templating import Jinja2Templates

import shepherd_cli.ui
from tests.unit.test_cli_output import COST

TEMPLATES = Jinja2Templates(directory=str(Path(shepherd_cli.ui.__file__).parent / "templates"))


def rendered(cost: object) -> str:
    return TEMPLATES.get_template("_cost.html").render(data={"cost": cost})


def test_the_rollout_page_shows_the_extra_instance_hours_and_the_estimate_from_the_named_table():
    page = rendered(COST)

    assert "<strong>1.833</strong> extra instance-hours" in page
    assert "candidate 1.833, live-held 0.0" in page
    assert "estimated <strong>$0.42</strong>" in page
    assert "An estimate from Shepherd&#39;s built-in approximate table" in page  # escaped like any text


def test_an_unpriced_type_is_named_and_a_running_ledger_says_so_far():
    page = rendered(
        {
            **{k: v for k, v in COST.items() if k != "estimated_cost_usd"},
            "final": False,
            "unpriced_instance_types": ["ml.p5.48xlarge"],
        }
    )

    assert "extra instance-hours so far" in page
    assert "no estimate, unpriced: ml.p5.48xlarge" in page
    assert "$" not in page


def test_a_rollout_from_before_the_ledger_shows_no_cost_section():
    assert "Cost" not in rendered(None)
