"""Text that came from a person or a file: the characters a terminal or a browser does not show as
themselves.

C0 controls (tab and newline included), DEL and C1 controls drive the terminal: ESC starts sequences
that clear the screen, write the clipboard (OSC 52) or hide text; a carriage return or a newline in a
reason forges a line of output. The bidirectional overrides and isolates (and the line and paragraph
separators) reorder or break what is shown, so a name reads as another. Free text in a contract
refuses them (:func:`refuse_unsafe`); what is printed shows each as an escape, ``\\x1b`` or
``\\u202e`` (:func:`escape_unsafe`).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_unsafe(value: str) -> str:
    """`value` with each unsafe character written as its escape: shown, and inert."""
    return UNSAFE.sub(_escaped, value)


def refuse_unsafe(value: str) -> str:
    """A pydantic validator: the value, or a ValueError naming the first unsafe character and where."""
    found = UNSAFE.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain control or bidirectional-override characters "
            f"(found {_escaped(found)} at position {found.start()})"
        )
    return value


# Free text a person or a file gives (a reason, a tag, a description): a contract field of this type
# refuses the unsafe characters with a validation error that says which and where.
SafeText = Annotated[str, AfterValidator(refuse_unsafe)]
