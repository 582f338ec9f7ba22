"""What the CLI prints of a value it did not write: a model name, a reason, a tag, an S3 key, an alarm
name, an event's detail. Such text is shown as given but inert: Rich markup is off (``[/]`` is two
brackets and a slash, not a closing tag) and every control or bidirectional-override character is
written as its escape (``\\x1b``, ``\\r``, ``\\u202e``), so nothing a record holds can clear the
screen, write the clipboard, hide text or forge a line.

:func:`clean` is the one place a value becomes printable text; the views call it on every value they
show. :class:`SafeConsole` is the net under them: whatever reaches the terminal without passing
through :func:`clean` has its unsafe characters escaped too (newlines, which the console itself
writes between lines, excepted).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

from shepherd.contracts.free_text import escape_unsafe


def clean(value: Any) -> str:
    """`value` as one line of inert text ("" for None)."""
    return "" if value is None else escape_unsafe(str(value))


def text(value: Any, style: str = "") -> Text:
    """`value` cleaned, as a Rich Text (which is never read as markup)."""
    return Text(clean(value), style=style)


class SafeConsole(Console):
    """A Console whose printed text (not its own control sequences) has no unsafe character left."""

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or segment.text == "\n":
                yield segment
            else:
                yield Segment("\n".join(map(escape_unsafe, segment.text.split("\n"))), segment.style)
