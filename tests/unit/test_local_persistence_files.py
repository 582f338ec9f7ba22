"""`local up --state DIR` keeps its state in files only its user can write, and refuses to restore
from a directory or file another user could have written."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime

import pytest

from shepherd_cli.local import persistence
from shepherd_cli.local.private_files import UnsafeLocalFile

OUTPUTS = {"ArtifactBucketName": "b"}
AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_the_state_directory_and_its_files_are_private(tmp_path):
    directory = tmp_path / "state"

    persistence.save(directory, OUTPUTS, AT)

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()} == {0o600}
    assert persistence.saved_outputs(directory) == OUTPUTS


@pytest.mark.parametrize("loose", ["directory", "s3 file", "outputs file"])
def test_a_state_others_may_write_is_refused_before_anything_is_read(tmp_path, loose):
    directory = tmp_path / "state"
    persistence.save(directory, OUTPUTS, AT)
    path = {"directory": directory, "s3 file": directory / "s3.json", "outputs file": directory / "outputs.json"}
    path[loose].chmod(0o777 if loose == "directory" else 0o666)

    with pytest.raises(UnsafeLocalFile, match="others may write it"):
        persistence.saved_outputs(directory)
        persistence.restore(directory)


def test_a_state_of_another_user_is_refused(tmp_path, monkeypatch):
    directory = tmp_path / "state"
    persistence.save(directory, OUTPUTS, AT)
    # Files of another uid cannot be made without root: this process pretends to be another user.
    monkeypatch.setattr(os, "getuid", lambda: directory.stat().st_uid + 1)

    with pytest.raises(UnsafeLocalFile, match="not by you"):
        persistence.restore(directory)


def test_saving_into_an_existing_directory_others_may_write_is_refused(tmp_path):
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o777)

    with pytest.raises(UnsafeLocalFile):
        persistence.save(directory, OUTPUTS, AT)
    assert list(directory.iterdir()) == []
