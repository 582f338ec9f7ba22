"""Which template.yaml local mode deploys when `--template` is not given.

First match wins:

1. ``template.yaml`` in the current directory: a clone of the repository, where `sam deploy` reads
   the same file (so an edited template is what local mode runs, as before).
2. The copy installed with the CLI: `pip install .` copies template.yaml and the functions' code
   into the package at build time (setup.py), so an installed `shepherd` runs local mode from any
   directory. The layer's code is the installed `shepherd` package itself.
3. The repository this code runs from (an editable install, or ``PYTHONPATH=cli``), when the current
   directory is elsewhere.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = "template.yaml"
PACKAGED = Path(__file__).resolve().parent / "packaged_app"
REPOSITORY = Path(__file__).resolve().parents[3]


def candidates(directory: Path) -> tuple[Path, ...]:
    return (directory / TEMPLATE, PACKAGED / TEMPLATE, REPOSITORY / TEMPLATE)


def default_template(directory: Path | None = None) -> Path | None:
    """The template to deploy, or None when there is none anywhere."""
    for candidate in candidates(directory or Path.cwd()):
        if candidate.is_file():
            return candidate
    return None
