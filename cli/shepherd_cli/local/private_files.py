"""Local mode's files are this user's alone: created private, and refused when someone else could
have written them.

`local up` restores its state from a directory, and every CLI invocation trusts the endpoint named in
`.shepherd/local.json`. A directory or file another user owns, or one that group or others may write
(a shared /tmp, a checkout with a loose umask), could hold state or an endpoint put there by someone
else: it is refused, with what to do about it, rather than read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shepherd_cli.errors import CliError

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


class UnsafeLocalFile(CliError):
    """A local-mode file or directory another user could have written."""


def make_private_directory(path: Path) -> None:
    """Create `path` (and missing parents) readable and writable by this user only; an existing one is
    checked, not changed."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    check_private(path)


def check_private(path: Path) -> None:
    """Raise UnsafeLocalFile when `path` is owned by another user or writable by group or others (a
    symbolic link is judged by what it points to, as reading it would). A missing path passes."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return
    what = "directory" if stat.S_ISDIR(found.st_mode) else "file"
    if found.st_uid != os.getuid():
        raise UnsafeLocalFile(
            f"refusing {what} {path}: owned by uid {found.st_uid}, not by you (uid {os.getuid()}); "
            f"use a {what} of your own, or remove it"
        )
    if found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = PRIVATE_DIRECTORY if what == "directory" else PRIVATE_FILE
        raise UnsafeLocalFile(
            f"refusing {what} {path}: others may write it (mode {stat.S_IMODE(found.st_mode):o}); "
            f"`chmod {mode:o} {path}` if its content is yours"
        )


def write_private(path: Path, data: bytes) -> None:
    """Write `path` atomically (a temporary file renamed over it), readable by this user only."""
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    temporary.replace(path)
