"""What the README names exists: every `shepherd` command and option, every alarm name it shows is one
Shepherd makes, every command event it puts with the AWS CLI keeps its contract; and a newcomer meets
the walkthrough, the CLI and the dashboard before the rules. (The walkthrough itself is run by
tests/e2e/test_readme_examples.py.)"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest
from samtranslator.yaml_helper import yaml_parse

from shepherd.contracts import COMMANDS
from shepherd.rollouts.naming import ROLLOUT_ID_PATTERN, rollout_alarm_names
from shepherd_cli.main import cli
from tests import readme_walkthrough as walkthrough

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CODE_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
FENCE = re.compile(r"^```\w*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INVOCATION = re.compile(r"(?<![\w.-])shepherd(?P<rest>(?: +[^\s`|;&]+)+)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
ALARM = re.compile(r"shepherd-(?:[^\s`\"'<>|,;()]|<[^<>\n]+>)*?-(?:error-rate|latency-p99)\b")
SAMPLES = {"env": "dev", "environment": "dev", "endpoint": "churn-prod", "rollout id": "20261120T100000Z-3fa9c1d2e4"}
SAMPLES["rollout_id"] = SAMPLES["rollout id"]
# The template's Environment parameter: the namespace is shepherd-<environment>; local mode deploys its default.
ENVIRONMENT = yaml_parse((ROOT / "template.yaml").read_text())["Parameters"]["Environment"]


def code_texts() -> list[str]:
    """Every inline code span and every line of every fenced block."""
    outside = FENCE.sub("", README)
    lines = [line for block in FENCE.findall(README) for line in block.splitlines()]
    return [span.replace("\\|", "|") for span in CODE_SPAN.findall(outside)] + lines


def invocations() -> list[str]:
    """Each `shepherd ...` in code, up to a comment, a line's end or a closing bracket of the shell."""
    found = {
        f"shepherd{m['rest']}".split(" #")[0].strip().rstrip(')"') for t in code_texts() for m in INVOCATION.finditer(t)
    }
    return sorted(found)


def resolve(invocation: str) -> tuple[click.Command, str]:
    """The click command an invocation names, and its path (`local up`); fails when there is none."""
    command: click.Command = cli
    path: list[str] = []
    for word in invocation.split()[1:]:
        if not isinstance(command, click.Group) or not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        sub = command.commands.get(word)
        assert sub is not None, f"`{invocation}`: shepherd {' '.join(path)} has no command {word!r}"
        command, path = sub, [*path, word]
    return command, " ".join(path)


def options_of(command: click.Command) -> set[str]:
    commands = [command, *getattr(command, "commands", {}).values()]  # a group: any of its commands
    return {"--help"} | {name for c in commands for p in c.params for name in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("invocation", invocations(), ids=lambda invocation: " ".join(invocation.split()))
def test_every_shepherd_command_the_readme_names_exists_with_its_options(invocation):
    command, path = resolve(invocation)
    assert path, f"`{invocation}` names no command"
    unknown = set(OPTION.findall(invocation)) - options_of(command)
    assert not unknown, f"`{invocation}`: shepherd {path} has no option {', '.join(sorted(unknown))}"


def cli_table_rows() -> list[tuple[list[str], list[str]]]:
    """The CLI reference table: each row's commands (first cell) and code spans (second cell)."""
    table = walkthrough.section(README, "## The `shepherd` CLI")
    rows = []
    for line in table.splitlines():
        if line.startswith("| `"):
            first, second = re.split(r"(?<!\\)\|", line)[1:3]
            spans = [s.replace("\\|", "|") for s in CODE_SPAN.findall(first)]
            rows.append((spans, [s.replace("\\|", "|") for s in CODE_SPAN.findall(second)]))
    return rows


def test_the_cli_reference_names_real_commands_and_options():
    rows = cli_table_rows()
    documented = set()
    for commands, described in rows:
        resolved = [resolve(f"shepherd {command}") for command in commands]
        documented |= {path for _, path in resolved}
        known = set().union(*(options_of(command) for command, _ in resolved))
        mentioned = {option for text in commands + described for option in OPTION.findall(text)}
        assert mentioned <= known, f"{commands}: no option {', '.join(sorted(mentioned - known))}"
    # and every command of the CLI is in the table
    leaves = {
        f"{name} {sub}" if sub else name
        for name, command in cli.commands.items()
        for sub in (getattr(command, "commands", None) or [""])
    }
    leaves -= {"analysis show"}  # documented as `analysis ROLLOUT_ID`
    assert leaves <= documented | {"analysis"}, sorted(leaves - documented)


def test_the_commands_that_take_json_are_the_ones_the_readme_says():
    said = re.search(r"Every command but (?P<but>.+?) takes `--json`", README)
    assert said is not None
    leaves = {
        f"{name} {sub}" if sub else name: leaf
        for name, command in cli.commands.items()
        for sub, leaf in (getattr(command, "commands", None) or {"": command}).items()
    }
    assert {path for path, leaf in leaves.items() if "--json" not in options_of(leaf)} == set(
        CODE_SPAN.findall(said["but"])
    )


def alarm_names() -> list[str]:
    return sorted(set(ALARM.findall(README)))


def concrete(name: str) -> str:
    return re.sub(r"<([^<>]+)>", lambda m: SAMPLES.get(m[1], m[0]), name)


@pytest.mark.parametrize("name", alarm_names())
def test_every_alarm_name_the_readme_shows_is_one_shepherd_makes(name):
    namespaces = [f"shepherd-{value}" for value in ENVIRONMENT["AllowedValues"]]
    example = concrete(name)
    shape = re.fullmatch(
        rf"(?P<namespace>shepherd-[a-z]+)--(?P<endpoint>.+)-(?P<rollout>{ROLLOUT_ID_PATTERN.pattern})-(?:error-rate|latency-p99)",
        example,
    )
    assert shape is not None, f"{name}: not <namespace>--<endpoint>-<rollout id>-error-rate|latency-p99"
    assert shape["namespace"] in namespaces, f"{name}: the namespace is shepherd-<environment>, one of {namespaces}"
    assert example in rollout_alarm_names(shape["namespace"], shape["endpoint"], shape["rollout"])


def test_the_walkthrough_shows_local_modes_alarm_names():
    local = [name for name in ALARM.findall(walkthrough.section(README)) if not name.startswith("shepherd-<")]
    assert local, "the walkthrough shows no alarm name"
    assert all(name.startswith(f"shepherd-{ENVIRONMENT['Default']}--") for name in local), local


def put_events_examples() -> list[str]:
    blocks = re.findall(r"^```bash\n(.*?)^```", README, re.MULTILINE | re.DOTALL)
    commands = [command.code for block in blocks for command in walkthrough.split_commands(block)[0]]
    return [code for code in commands if code.startswith("aws events put-events")]


@pytest.mark.parametrize("example", put_events_examples())
def test_every_command_the_readme_puts_on_the_bus_keeps_its_contract(example):
    contracts = {contract.DETAIL_TYPE: contract for contract in COMMANDS}
    words = shlex.split(example)
    entries = json.loads(words[words.index("--entries") + 1])
    for entry in entries:
        assert entry["Source"] != "shepherd"  # only Shepherd announces (Who may do what)
        contracts[entry["DetailType"]].model_validate(json.loads(entry["Detail"]))


def test_a_newcomer_meets_the_walkthrough_the_cli_and_the_dashboard_first():
    headings = [line for line in README.splitlines() if line.startswith("## ")]
    first_screens = README.splitlines()[:80]
    assert "## Try it locally" in first_screens
    order = ["## Quick start", "## Try it locally", "## The `shepherd` CLI", "## The dashboard: `shepherd ui`"]
    assert headings[:4] == order
    assert headings.index("## Event contracts") > headings.index("## Architecture") > 3


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_every_link_to_a_section_finds_its_heading():
    links = re.findall(r"\]\((?P<path>[^)#\s]*)#(?P<anchor>[^)\s]+)\)", README)
    assert links
    broken = [f"{path}#{anchor}" for path, anchor in links if anchor not in anchors(ROOT / (path or "README.md"))]
    assert broken == []
