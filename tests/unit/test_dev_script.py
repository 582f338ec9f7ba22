"""`python3 dev.py test` is every check: the security scans included (issue 20)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def dev_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_test_command_runs_bandit_and_checkov_before_the_suite(monkeypatch):
    dev = dev_script()
    commands: list[str] = []
    monkeypatch.setattr(dev, "run", lambda *command, env=None: commands.append(" ".join(map(str, command))))
    monkeypatch.setattr(dev, "ensure_venv", lambda *_, **__: None)
    monkeypatch.setattr(dev, "ensure_system_tools", lambda: None)

    dev.test()

    tools = [Path(command.split()[0]).name for command in commands]
    assert tools.index("bandit") < tools.index("python")
    assert tools.index("checkov") < tools.index("python")
    [checkov] = [command for command in commands if Path(command.split()[0]).name == "checkov"]
    assert "-f template.yaml" in checkov
