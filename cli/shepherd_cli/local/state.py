"""The small file through which `shepherd local up` tells other CLI invocations where it runs.

``.shepherd/local.json`` in the directory `local up` was started from: the emulator's endpoint URL,
region, stack name and outputs, the process id, and the simulated clock (its time when the pump
started following real time, and how much faster it runs), so commands sent from another process
can carry the simulated time. Written atomically; removed when `local up` exits.

Every CLI invocation trusts the endpoint this file names, so it is looked for only up to the
repository root (the folder holding ``.git``) or the home directory, whichever comes first, never in
the folders above them (another user's, or a shared one); and it is refused when another user could
have written it (private_files.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shepherd_cli.local.private_files import check_private, make_private_directory, write_private

STATE_DIR = ".shepherd"
STATE_FILE = "local.json"


def state_path(directory: Path | None = None) -> Path:
    return (directory or Path.cwd()) / STATE_DIR / STATE_FILE


def find_state(directory: Path | None = None) -> Path:
    """The state file of `directory` or of the nearest folder above it that has one, up to the
    repository root or the home directory (whichever comes first), else `directory`'s own (which does
    not exist)."""
    start = (directory or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if state_path(folder).exists():
            return state_path(folder)
        if (folder / ".git").exists() or folder == _home():
            break
    return state_path(start)


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (KeyError, RuntimeError):  # no HOME and no passwd entry: only the repository root stops the walk
        return None


@dataclass(frozen=True)
class ClockState:
    """Simulated time = ``origin`` + (wall time - ``real_origin``) x ``speed``."""

    origin: str  # ISO 8601, the simulated time when the pump started following real time
    real_origin: float  # time.time() at that moment
    speed: float

    def now(self, wall_time: float) -> datetime:
        elapsed = max(0.0, wall_time - self.real_origin) * self.speed
        return datetime.fromisoformat(self.origin) + timedelta(seconds=elapsed)


@dataclass(frozen=True)
class LocalState:
    endpoint_url: str
    region: str
    stack_name: str
    pid: int
    outputs: dict[str, str] = field(default_factory=dict)
    clock: ClockState | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocalState:
        data: dict[str, Any] = json.loads(text)
        clock = data.pop("clock", None)
        return cls(**data, clock=ClockState(**clock) if clock else None)


def write_state(state: LocalState, path: Path) -> None:
    make_private_directory(path.parent)
    write_private(path, (state.to_json() + "\n").encode())


def read_state(path: Path) -> LocalState | None:
    """The state file's content, or None when there is none (or it cannot be read as one); raises
    UnsafeLocalFile when another user could have written it or its folder."""
    check_private(path.parent)
    check_private(path)
    try:
        return LocalState.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        return None


def remove_state(path: Path, pid: int) -> None:
    """Remove the file if it is still this process's."""
    state = read_state(path)
    if state is not None and state.pid == pid:
        path.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
