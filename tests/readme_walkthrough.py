"""The README's "Try it locally" walkthrough as steps a test can run.

Each ```bash block of the section is a step: its commands in order (a command may continue over
lines, inside quotes or after a backslash), its commented-out alternatives (``# or: shepherd ...``),
and, when a ```text block follows it directly, the output its last command prints. A trailing comment
``# exits 1`` says the command's exit status when it is not 0.

In the shown output, ``...`` stands for anything on the line (alone on a line: lines left out), a run
of spaces for any run of spaces, and a ``<placeholder>`` (``<rollout id>``) for a word, which is
captured: a later command's ``<rollout id>`` is the latest one captured, as a reader copies it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## Try it locally"

_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```\n(?P<after>\s*)", re.MULTILINE | re.DOTALL)
_PLACEHOLDER = re.compile(r"<(?P<name>[a-z][a-z _]*)>")
_SHOWN_PART = re.compile(r"(<[a-z][a-z _]*>|\.\.\.|\s+)")
_EXITS = re.compile(r"\bexits (?P<code>\d+)\b")


@dataclass(frozen=True)
class Command:
    code: str  # the shell code, its trailing comment removed
    comment: str
    exit_code: int  # 0 unless the comment says `exits N`


@dataclass(frozen=True)
class Step:
    commands: tuple[Command, ...]
    alternatives: tuple[str, ...]  # commented-out commands (`# or: ...`)
    shown: tuple[str, ...]  # the output the last command prints, as shown


def section(text: str, heading: str = HEADING) -> str:
    """The section under ``heading``, up to the next heading of its level."""
    start = text.index(f"\n{heading}\n") + 1
    level = heading.split(" ", 1)[0]
    following = re.search(rf"^{level} ", text[start + len(heading) :], re.MULTILINE)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def steps(text: str) -> list[Step]:
    """The walkthrough's steps, in order."""
    found: list[Step] = []
    blocks = list(_FENCE.finditer(section(text)))
    for index, block in enumerate(blocks):
        if block["lang"] != "bash":
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        adjacent = following is not None and following.start() == block.end() and following["lang"] == "text"
        shown = tuple(following["body"].splitlines()) if following is not None and adjacent else ()
        commands, alternatives = split_commands(block["body"])
        found.append(Step(tuple(commands), tuple(alternatives), shown))
    return found


def split_commands(body: str) -> tuple[list[Command], list[str]]:
    """A bash block's commands (multi-line ones joined) and its comment lines."""
    commands: list[Command] = []
    comments: list[str] = []
    pending = ""
    for line in body.splitlines():
        if not pending and line.lstrip().startswith("#"):
            comments.append(line.lstrip("# ").strip())
            continue
        if not pending and not line.strip():
            continue
        pending = f"{pending}\n{line}" if pending else line
        if not _unfinished(pending):
            commands.append(_command(pending))
            pending = ""
    assert not pending, f"unfinished command in the README: {pending!r}"
    return commands, comments


def fill(code: str, values: Mapping[str, str]) -> str:
    """The command with its placeholders replaced by the values captured so far."""

    def value(match: re.Match[str]) -> str:
        assert match["name"] in values, f"<{match['name']}> is used before any output showed it"
        return values[match["name"]]

    return _PLACEHOLDER.sub(value, code)


def find_shown(shown: tuple[str, ...], output: str) -> dict[str, str] | None:
    """The placeholders captured when every shown line is found in ``output``, in order; else None."""
    captured: dict[str, str] = {}
    position = 0
    for line in shown:
        if line.strip() in ("", "..."):
            continue
        pattern, names = _pattern(line)
        match = pattern.search(output, position)
        if match is None:
            return None
        position = match.end()
        captured.update({name: match[group] for group, name in names.items()})
    return captured


def _pattern(line: str) -> tuple[re.Pattern[str], dict[str, str]]:
    regex = ""
    names: dict[str, str] = {}
    for part in _SHOWN_PART.split(line.strip()):
        placeholder = _PLACEHOLDER.fullmatch(part)
        if placeholder is not None:
            group = f"p{len(names)}"
            names[group] = placeholder["name"]
            regex += rf"(?P<{group}>[\w-]+)"
        elif part == "...":
            regex += ".*?"
        elif part.isspace():
            regex += r"[^\S\n]+"
        else:
            regex += re.escape(part)
    return re.compile(regex), names


def _command(text: str) -> Command:
    cut = _comment_start(text)
    code, comment = (text, "") if cut is None else (text[:cut].rstrip(), text[cut + 1 :].strip())
    exits = _EXITS.search(comment)
    return Command(code, comment, int(exits["code"]) if exits else 0)


def _unfinished(text: str) -> bool:
    """Whether the shell would read on: a quote left open, or a backslash ending the text."""
    *_, (_, state) = _scan(text)
    return state != "done"


def _comment_start(text: str) -> int | None:
    for index, kind in _scan(text):
        if kind == "comment":
            return index
    return None


def _scan(text: str) -> Iterator[tuple[int, str]]:
    """Yields (index, "comment") where a comment starts, then (-1, state): "done", "quote" or "continued"."""
    quote, index = "", 0
    while index < len(text):
        char = text[index]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif quote == '"':
            index += 1 if char == "\\" else 0
            quote = "" if char == '"' else quote
        elif char == "\\":
            if index == len(text) - 1:
                yield -1, "continued"
                return
            index += 1
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            yield index, "comment"
            break
        index += 1
    yield -1, "quote" if quote else "done"
