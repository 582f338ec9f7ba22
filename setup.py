"""setuptools' build, plus one step: the installed CLI carries Shepherd's SAM application.

`shepherd local up` deploys template.yaml and runs the functions' code (functions/*/) in-process. In
a clone it reads them from the repository; an installed CLI (`pip install .`, `pipx install .`) has
no repository, so the build copies them into the package, under `shepherd_cli/local/packaged_app/`
(see `shepherd_cli.local.application`). The repository stays the one source: `sam deploy` reads the
same files, and nothing is copied into the source tree. The layer's code is the `shepherd` package
this distribution installs anyway, so it is not copied twice.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PACKAGED_APP = Path("shepherd_cli", "local", "packaged_app")


def application_files() -> list[Path]:
    """template.yaml and every file of the functions' code, relative to the repository."""
    functions = (
        path.relative_to(ROOT)
        for path in sorted((ROOT / "functions").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    return [Path("template.yaml"), *functions]


class BuildPyWithApplication(build_py):
    """build_py, then the application's files copied next to the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the repository itself
            return
        target = Path(self.build_lib) / PACKAGED_APP
        shutil.rmtree(target, ignore_errors=True)  # nothing left over from an earlier build
        for relative in application_files():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / relative, destination)


setup(cmdclass={"build_py": BuildPyWithApplication})
