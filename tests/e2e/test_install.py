"""`pip install <clone>` gives a `shepherd` that runs local mode from any folder.

The wheel is built as pip builds it (an isolated build of a copy of the clone's build inputs) and
installed without its dependencies into a new virtual environment that borrows them from this one, so
nothing is downloaded but the build backend (which pip finds on the configured package index). Then
`shepherd local up`, started from an empty folder with no --template, deploys the template and runs
the functions' code that the wheel carries: before the fix it answered "no template at template.yaml".
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "template.yaml", "functions", "cli", "layers")
START_TIMEOUT_SECONDS = 300  # a loaded 2-core CI machine imports the stack slowly
BANNER_END = "Events as they flow"


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = wheels.glob("shepherd-*.whl")
    return wheel


def install(wheel: Path, tmp_path: Path) -> Path:
    """A new virtual environment with the wheel, its dependencies borrowed from this one; its bin/."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A path (not a site dir): this environment's own .pth files, e.g. an editable install of the
    # clone, are not read, so only the wheel provides `shepherd` and `shepherd_cli`.
    (Path(purelib) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return environment / "bin"


def outside_the_clone() -> dict[str, str]:
    hidden = ("PYTHONPATH", "SHEPHERD_ENDPOINT_URL", "SHEPHERD_STACK", "AWS_ENDPOINT_URL", "AWS_PROFILE")
    return {name: value for name, value in os.environ.items() if name not in hidden}


def test_an_installed_cli_runs_local_mode_from_any_folder(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("shepherd_cli/local/packaged_app/template.yaml") == (ROOT / "template.yaml").read_bytes()
    bin_dir = install(wheel, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [bin_dir / "python", "-c", "import shepherd_cli; print(shepherd_cli.__file__)"],
        cwd=elsewhere,
        env=outside_the_clone(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(tmp_path / "venv") in where  # the installed package, not the clone

    # When `shepherd local up` starts in a folder with no template.yaml
    log = tmp_path / "local-up.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [bin_dir / "shepherd", "local", "up", "--port", "0", "--rps", "0"],
            cwd=elsewhere,
            env=outside_the_clone(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while BANNER_END not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    # Then it deployed the template installed with it, imported every function, and stopped cleanly
    output = log.read_text()
    assert BANNER_END in output, output
    # (The banner wraps to the terminal's width, at spaces and inside a long path: compare without them.)
    assert "packaged_app/template.yamldeployedasstackshepherd-local" in "".join(output.split())
    assert process.returncode == 0, output
