"""`pip install .` gives a working `shepherd` command: the project declares, pinned, every third-party
package the CLI and the shared package import, at the versions the requirement files pin.

A full install into a new virtual environment is in tests/e2e/test_install.py (slow); this checks the
declaration itself, in milliseconds: a module imported but not declared is what made
`shepherd --help` fail with "No module named 'click'". It also checks that the build copies Shepherd's
SAM application (template.yaml, the functions' code) into the package, byte for byte: an installed
CLI said "no template at template.yaml" outside the clone.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

from shepherd_cli.local import application

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT_FILES = (ROOT / "layers/shepherd/requirements.txt", ROOT / "requirements-dev.txt")
PACKAGES = (ROOT / "cli/shepherd_cli", ROOT / "layers/shepherd/shepherd")
FIRST_PARTY = {"shepherd", "shepherd_cli"}
# Imported directly, installed by a declared dependency that pins it exactly: declaring it again could
# only disagree with that pin.
PINNED_BY = {"pydantic_core": "pydantic"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(line: str) -> tuple[str, str]:
    """("moto", "moto[server]==5.2.5") for a pinned requirement line."""
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[a-z,]+\])?==(\S+)", line.strip())
    assert match, f"not pinned with ==: {line!r}"
    return canonical(match.group(1)), line.strip()


def declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(requirement(line) for line in project["dependencies"])


def pinned_in_requirement_files() -> dict[str, str]:
    pins: dict[str, str] = {}
    for path in REQUIREMENT_FILES:
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                name, spec = requirement(line)
                pins[name] = spec
    return pins


def third_party_imports() -> set[str]:
    modules: set[str] = set()
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m not in FIRST_PARTY}


def test_every_dependency_is_pinned_as_the_requirement_files_pin_it():
    dependencies, pins = declared(), pinned_in_requirement_files()

    assert dependencies, "pyproject.toml declares no dependencies"
    for name, spec in dependencies.items():
        assert pins.get(name) == spec, f"{spec} in pyproject.toml, {pins.get(name)} in the requirement files"


def test_every_third_party_module_the_cli_and_the_package_import_is_declared():
    distribution_of = packages_distributions()  # module -> distributions, from this environment
    dependencies = declared()

    undeclared = {
        module: distribution_of.get(module, ["?"])
        for module in third_party_imports()
        if not any(canonical(d) in dependencies for d in distribution_of.get(module, []))
        and PINNED_BY.get(module) not in dependencies
    }

    assert undeclared == {}, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def build_package(tmp_path: Path) -> Path:
    """setup.py's build step (what `pip install .` runs) into `tmp_path`; the built package folder."""
    subprocess.run(
        [sys.executable, "setup.py", "-q", "egg_info", "-e", str(tmp_path), "build_py", "-d", str(tmp_path / "lib")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return tmp_path / "lib"


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_build_copies_the_template_and_the_functions_code_into_the_package_unchanged(tmp_path):
    built = build_package(tmp_path)
    packaged = built / application.PACKAGED.relative_to(ROOT / "cli")

    copied = files_under(packaged)

    repository = {"template.yaml": (ROOT / "template.yaml").read_bytes()}
    repository.update({f"functions/{name}": data for name, data in files_under(ROOT / "functions").items()})
    assert copied == repository


def test_every_local_code_folder_of_the_template_is_shipped_or_is_the_installed_package():
    template = yaml_parse((ROOT / "template.yaml").read_text())
    folders = {
        properties[key].rstrip("/")
        for resource in template["Resources"].values()
        for properties in [resource.get("Properties", {})]
        for key in ("CodeUri", "ContentUri")
        if isinstance(properties.get(key), str)
    }

    # The functions' folders are copied by the build; the layer's code is the `shepherd` package itself.
    assert {folder for folder in folders if not folder.startswith("functions/")} == {"layers/shepherd"}
    assert (ROOT / "layers/shepherd/shepherd/__init__.py").is_file()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "layers/shepherd" in setuptools["packages"]["find"]["where"]


def test_local_mode_finds_a_template_outside_the_clone(tmp_path):
    # A folder with no template.yaml: the repository's (this checkout) or the installed copy is used.
    found = application.default_template(tmp_path)

    assert found is not None and found.read_bytes() == (ROOT / "template.yaml").read_bytes()
    # A template.yaml in the current folder wins (a clone, or a template of one's own).
    (tmp_path / "template.yaml").write_text("Resources: {}\n")
    assert application.default_template(tmp_path) == tmp_path / "template.yaml"
