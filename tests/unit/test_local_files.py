"""Local mode trusts only its user's own files: `.shepherd/local.json` is looked for no higher than
the repository root or the home directory, and a state file or folder another user could have written
is refused with what to do about it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shepherd_cli.local.private_files import UnsafeLocalFile
from shepherd_cli.local.state import LocalState, find_state, read_state, state_path, write_state

STATE = LocalState("http://127.0.0.1:4750", "us-east-1", "shepherd-local", 1)


def test_the_state_file_above_the_repository_root_is_not_found(tmp_path, monkeypatch):
    # Given a local.json in a shared folder above a checkout
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_state(STATE, state_path(tmp_path))
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "src").mkdir()

    # When the CLI looks from inside the checkout, it stops at the checkout's root
    assert find_state(tmp_path / "repo" / "src") == state_path(tmp_path / "repo" / "src")

    # And it still finds one written at the root of the checkout
    write_state(STATE, state_path(tmp_path / "repo"))
    assert find_state(tmp_path / "repo" / "src") == state_path(tmp_path / "repo")


def test_the_state_file_above_the_home_directory_is_not_found(tmp_path, monkeypatch):
    home = tmp_path / "home" / "alice"
    (home / "work").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    write_state(STATE, state_path(tmp_path / "home"))  # /home/.shepherd/local.json, anyone's

    assert find_state(home / "work") == state_path(home / "work")
    write_state(STATE, state_path(home))
    assert find_state(home / "work") == state_path(home)


def test_the_state_file_is_written_private(tmp_path):
    write_state(STATE, state_path(tmp_path))

    assert stat.S_IMODE(state_path(tmp_path).parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(state_path(tmp_path).stat().st_mode) == 0o600
    assert read_state(state_path(tmp_path)) == STATE


@pytest.mark.parametrize("which", ["file", "directory"])
def test_a_state_file_others_may_write_is_refused_with_how_to_fix_it(tmp_path, which):
    path = state_path(tmp_path)
    write_state(STATE, path)
    loose = path if which == "file" else path.parent
    loose.chmod(0o666 if which == "file" else 0o777)

    with pytest.raises(UnsafeLocalFile, match=rf"refusing {which} .*others may write it.*chmod"):
        read_state(path)


def test_a_state_file_of_another_user_is_refused(tmp_path, monkeypatch):
    path = state_path(tmp_path)
    write_state(STATE, path)
    # Files of another uid cannot be made without root: this process pretends to be another user.
    monkeypatch.setattr(os, "getuid", lambda: os.stat(path).st_uid + 1)

    with pytest.raises(UnsafeLocalFile, match=r"owned by uid .* not by you"):
        read_state(path)


def test_an_existing_loose_state_folder_is_refused_not_silently_used(tmp_path):
    (tmp_path / ".shepherd").mkdir(mode=0o777)
    (tmp_path / ".shepherd").chmod(0o777)

    with pytest.raises(UnsafeLocalFile):
        write_state(STATE, state_path(tmp_path))
    assert not Path(state_path(tmp_path)).exists()
