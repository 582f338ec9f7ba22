#!/usr/bin/env python3
"""The one entry point for the checks, needing nothing but Python 3.11+.

    python3 dev.py test       every check: ruff, mypy, cfn-lint on template.yaml, bandit and checkov,
                              the test suite
    python3 dev.py demo       the whole lifecycle in local mode
    python3 dev.py lint       ruff, mypy and cfn-lint only
    python3 dev.py security   bandit on the code, checkov on the template (a separate venv)

Each creates `.venv` and installs the pinned dependencies first, again only when a requirements
file changed, so it can be run again safely. `make test` and `make demo` call this script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
REQUIREMENTS = ["requirements-dev.txt", "layers/shepherd/requirements.txt", "pyproject.toml"]
SECURITY_VENV = ROOT / ".venv-checkov"


def run(*command: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    completed = subprocess.run([str(part) for part in command], cwd=ROOT, env=env, check=False)  # noqa: S603
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def ensure_venv(path: Path, requirements: list[str], editable: bool) -> None:
    stamp = path / ".installed"
    newest = max((ROOT / name).stat().st_mtime for name in requirements)
    if stamp.exists() and stamp.stat().st_mtime >= newest:
        return
    if not (path / "bin" / "python").exists():
        venv.create(path, with_pip=True)
    pip = [path / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(*pip, "-r", requirements[0])
    if editable:
        run(*pip, "--no-deps", "-e", ".")
    stamp.touch()


def lint() -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")
    run(BIN / "cfn-lint", "template.yaml")


# What the tests drive besides Python, by command: its Debian package, and what is skipped without it.
SYSTEM_TOOLS = {
    "chromium": ("chromium", "the dashboard's browser test"),
    "make": ("make", "the layer build's tests (sam build runs layers/shepherd/Makefile)"),
}


def has(command: str) -> bool:
    if command == "chromium":
        return bool(os.environ.get("SHEPHERD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser"))
    return shutil.which(command) is not None


def ensure_system_tools() -> None:
    """Install what the tests drive besides Python (Debian's Chromium, make) when this machine can.

    One package at a time: a Chromium apt cannot install must not cost the layer build's tests too.
    """
    missing = [command for command in SYSTEM_TOOLS if not has(command)]
    updated = bool(missing) and apt("update", "-qq")
    for command in missing:
        package, skipped = SYSTEM_TOOLS[command]
        if not (updated and apt("install", "-y", "-qq", package)):
            print(f"! no {command}, and it could not be installed: {skipped} will be skipped", flush=True)


def apt(*arguments: str) -> bool:
    """apt-get, as root only; False when it is missing, not allowed or fails."""
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        return False
    print("+ apt-get", *arguments, flush=True)
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run([apt_get, *arguments], env=quiet, check=False).returncode == 0  # noqa: S603


def test() -> None:
    lint()
    security()
    ensure_system_tools()
    run(BIN / "python", "-m", "pytest", "-n", "2")


def demo() -> None:
    run(BIN / "shepherd", "local", "demo")


def security() -> None:
    ensure_venv(SECURITY_VENV, ["requirements-security.txt"], editable=False)
    run(BIN / "bandit", "-r", "layers", "functions", "cli", "-ll", "-q")
    offline = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    checkov = SECURITY_VENV / "bin" / "checkov"
    run(checkov, "-f", "template.yaml", "--quiet", "--compact", "--skip-download", env=offline)


TASKS = {"test": test, "demo": demo, "lint": lint, "security": security}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in TASKS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(TASKS)}}}")
    ensure_venv(VENV, REQUIREMENTS, editable=True)
    TASKS[sys.argv[1]]()


if __name__ == "__main__":
    main()
