"""What the CLI prints of text it did not write is shown, inert: no Rich markup, no terminal control.

A reason, a tag, a key or an alarm name may carry Rich markup (`[/]`), an escape sequence (OSC 52
writes the clipboard, CSI 2J clears the screen), a carriage return that overwrites the line, or a
bidirectional override that makes a name read backwards. Each is printed as its escape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from shepherd.registry.model import ArtifactRef, Lineage, ModelVersion, VersionStatus
from shepherd_cli import main, operations, output
from shepherd_cli.announcements import describe_announcement
from shepherd_cli.commands import common
from shepherd_cli.errors import CliError

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"  # OSC 52: puts `rm -rf ~` on the clipboard
HOSTILE = f"[/] [red]x[/red] {CLIPBOARD} \x1b[2J ok\rFORGED \u202eevil\nline2 \x9b31m"
# What each character becomes: its escape, visible and inert
SHOWN = ["[/]", "[red]x[/red]", "\\x1b]52;c;cm0gLXJmIH4=\\x07", "\\x1b[2J", "ok\\x0dFORGED", "\\u202eevil\\x0aline2"]
RAW = ["\x1b", "\x07", "\r", "\u202e", "\x9b"]


def assert_inert(printed: str) -> None:
    for shown in SHOWN:
        assert shown in printed
    for raw in RAW:
        assert raw not in printed


def a_version() -> ModelVersion:
    return ModelVersion(
        model_name="churn",
        version=1,
        artifact=ArtifactRef(bucket="b", key=f"models/churn/{HOSTILE}/model.tar.gz", s3_version_id="v1"),
        etag="e",
        size=1,
        checksum=None,
        metadata={"note": HOSTILE},
        metrics={HOSTILE: 0.5},
        tags={"[/]": HOSTILE},
        lineage=Lineage(),
        status=VersionStatus.APPROVED,
        created_at=AT,
        uploaded_at=AT,
        uploaded_by=None,
        registered_by_event="evt",
        decided_by=HOSTILE,
        decision_reason=HOSTILE,
    )


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr(common, "resolve", lambda *_: object())
    monkeypatch.setattr(operations, "list_versions", lambda _target, _model: [a_version()])
    monkeypatch.setattr(operations, "get_version", lambda _target, _model, _number: a_version())
    return lambda *args: CliRunner().invoke(main.cli, [*args, "--local"])


@pytest.mark.parametrize("command", [["versions", "churn"], ["show", "churn", "1"]])
def test_versions_and_show_print_hostile_names_tags_and_reasons_inert(cli, command):
    result = cli(*command)

    assert result.exit_code == 0, result.output
    assert_inert(result.output)


def test_a_refusal_reason_is_printed_inert_on_stderr(monkeypatch, cli):
    def refused(*_: Any) -> None:
        raise CliError(f"refused: {HOSTILE}")

    monkeypatch.setattr(operations, "list_versions", refused)
    result = cli("versions", "churn")

    assert result.exit_code == 1
    assert_inert(result.output)


def a_status() -> dict[str, Any]:
    return {
        "endpoint_name": "churn-prod",
        "model_name": "churn",
        "endpoint": None,
        "serving": [],
        "standby": [],
        "rollout": {
            "rollout_id": "r1",
            "model_name": "churn",
            "version": 2,
            "phase": "ROLLED_BACK",
            "requested_by": HOSTILE,
            "reason": HOSTILE,
            "failure_reason": HOSTILE,
        },
        "alarms": [{"alarm_name": HOSTILE, "state": "ALARM", "reason": HOSTILE}],
        "refused": None,
    }


def test_status_history_and_announcements_print_hostile_text_inert(capsys):
    output.render_status(a_status())
    output.render_history(
        "churn",
        {
            "model": [
                {
                    "at": AT.isoformat(),
                    "version": 1,
                    "action": "approved",
                    "from_status": "REGISTERED",
                    "to_status": "APPROVED",
                    "actor": HOSTILE,
                    "reason": HOSTILE,
                }
            ],
            "endpoint": [],
        },
    )
    output.console().print(describe_announcement("Model Version Approved", {"requested_by": "x", "reason": HOSTILE}))

    printed = capsys.readouterr().out
    assert printed.count("\\x1b]52;c;") == 8  # every hostile value is shown, once
    assert_inert(printed)


def test_whatever_reaches_the_console_unescaped_is_escaped_there(capsys):
    # The net under the views: a line built without clean() still cannot drive the terminal.
    output.console().print(f"raw {HOSTILE}")

    printed = capsys.readouterr().out
    assert "\\x1b]52;c;" in printed and "\x1b" not in printed and "\u202e" not in printed
