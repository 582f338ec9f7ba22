"""The shared layer ships compiled bytecode, for the template's runtime and architecture.

Lambda mounts a layer read-only at /opt, so Python cannot cache what it compiles there: without .pyc
files in the layer, every cold start compiles Shepherd, pydantic, Powertools, boto3 and botocore again
(about 500 ms more per cold start, bench/layer_bytecode.py). SAM's python3.12 builder leaves every
*.pyc out, so SharedLayer is built by layers/shepherd/Makefile, which compiles the layer with
unchecked-hash .pyc (a zip keeps mtimes only to 2 seconds: timestamp-checked ones could be stale).

Read from the template and from the commands `make -n` prints for the target SAM runs, without
running them (no network, milliseconds). Each check is shown to fail on a copy with its property
removed (`MUTATIONS`), as in test_template_security.py.
"""

from __future__ import annotations

import copy
import shlex
import shutil
import subprocess
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
LAYER_ID = "SharedLayer"
ARTIFACTS_DIR = "/artifacts"  # what `make -n` is told: nothing is written there
MACHINE_OF = {"arm64": "aarch64", "x86_64": "x86_64"}  # Lambda's architecture -> the wheels' platform tag


def layer(template: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][LAYER_ID]
    return resource


def recipe() -> list[list[str]]:
    """The commands of `build-SharedLayer`, as `sam build` runs them (in a copy of the layer's folder,
    ARTIFACTS_DIR set), each split into its words."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine (sam build needs it too)")
    printed = subprocess.run(
        [make, "--no-print-directory", "-n", "-C", str(ROOT / "layers/shepherd"), f"build-{LAYER_ID}"],
        env={"PATH": "/usr/bin:/bin", "ARTIFACTS_DIR": ARTIFACTS_DIR},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [shlex.split(line) for line in printed.replace("\\\n", " ").splitlines() if line.strip()]


def python_of(template: dict[str, Any]) -> str:
    """python3.12 for `CompatibleRuntimes: [python3.12]`."""
    (runtime,) = layer(template)["Properties"]["CompatibleRuntimes"]
    assert runtime.startswith("python3."), runtime
    return str(runtime)


def option(command: list[str], name: str) -> list[str]:
    """Every value of `name VALUE` and `name=VALUE` in a command."""
    values = [value for flag, value in pairwise(command) if flag == name]
    return values + [word.split("=", 1)[1] for word in command if word.startswith(name + "=")]


def pip_install(commands: list[list[str]]) -> tuple[int, list[str]]:
    found = [
        (i, c) for i, c in enumerate(commands) if c[1:4] == ["-m", "pip", "install"] or c[:2] == ["pip", "install"]
    ]
    assert len(found) == 1, f"one pip install in the recipe, found {len(found)}"
    return found[0]


def compileall(commands: list[list[str]]) -> tuple[int, list[str]]:
    found = [(i, c) for i, c in enumerate(commands) if c[1:3] == ["-m", "compileall"]]
    assert len(found) == 1, f"one compileall in the recipe, found {len(found)}"
    return found[0]


# Each check returns what is wrong, given the parsed template and the recipe's commands.


def check_built_by_the_makefile(template: dict[str, Any], commands: list[list[str]]) -> list[str]:
    resource = layer(template)
    problems = []
    if resource.get("Metadata", {}).get("BuildMethod") != "makefile":
        problems.append("SharedLayer's BuildMethod is not makefile: SAM's Python builder ships no .pyc")
    if resource["Properties"].get("ContentUri") != "layers/shepherd/":
        problems.append("SharedLayer's ContentUri is not layers/shepherd/, the Makefile's folder")
    if not commands:
        problems.append(f"layers/shepherd/Makefile's build-{LAYER_ID} runs nothing")
    return problems


def check_wheels_for_the_template_architecture(template: dict[str, Any], commands: list[list[str]]) -> list[str]:
    resource = layer(template)
    architectures = resource["Properties"]["CompatibleArchitectures"]
    build_architecture = resource.get("Metadata", {}).get("BuildArchitecture")
    if architectures != [build_architecture]:
        return [f"BuildArchitecture {build_architecture} is not the layer's only architecture {architectures}"]
    machine = MACHINE_OF[build_architecture]
    _, pip = pip_install(commands)
    python = python_of(template)
    problems = []
    if option(pip, "-r") != ["requirements.txt"]:  # make runs in (a copy of) layers/shepherd/
        problems.append("pip does not install layers/shepherd/requirements.txt")
    if option(pip, "--target") != [f"{ARTIFACTS_DIR}/python"]:
        problems.append("pip does not install into $(ARTIFACTS_DIR)/python, the layer's python/ folder")
    platforms = option(pip, "--platform")
    if not platforms or any(not p.endswith("_" + machine) or not p.startswith("manylinux") for p in platforms):
        problems.append(f"pip's platforms {platforms} are not manylinux {machine} ones")
    if option(pip, "--python-version") != [python.removeprefix("python")]:
        problems.append(f"pip's --python-version is not {python}'s")
    if "--only-binary=:all:" not in pip or option(pip, "--implementation") != ["cp"]:
        problems.append("pip may build from source or pick a non-CPython wheel")
    return problems


def check_compiled_with_unchecked_hash(template: dict[str, Any], commands: list[list[str]]) -> list[str]:
    at, compile_command = compileall(commands)
    pip_at, pip = pip_install(commands)
    problems = []
    if compile_command[0] != python_of(template) or pip[0] != python_of(template):
        problems.append(f"the bytecode is not compiled by {python_of(template)}, the layer's runtime")
    if option(compile_command, "--invalidation-mode") != ["unchecked-hash"]:
        problems.append("compileall does not write unchecked-hash .pyc")
    if "-f" not in compile_command or "--no-compile" not in pip:
        problems.append("a timestamp .pyc written by pip would be kept (pip needs --no-compile, compileall -f)")
    if compile_command[-1] != f"{ARTIFACTS_DIR}/python":
        problems.append("compileall does not compile the whole layer")
    copied = [i for i, c in enumerate(commands) if c[:2] == ["cp", "-R"] and c[2] == "shepherd"]
    if not copied or at < max([*copied, pip_at]):
        problems.append("compileall runs before the shepherd package and the dependencies are in the layer")
    return problems


CHECKS: dict[str, Callable[[dict[str, Any], list[list[str]]], list[str]]] = {
    check.__name__.removeprefix("check_"): check
    for check in (
        check_built_by_the_makefile,
        check_wheels_for_the_template_architecture,
        check_compiled_with_unchecked_hash,
    )
}


@pytest.fixture(scope="module")
def commands() -> list[list[str]]:
    return recipe()


@pytest.mark.parametrize("name", list(CHECKS))
def test_the_layer_build_has_the_property(name, commands):
    assert CHECKS[name](TEMPLATE, commands) == []


def _metadata(key: str, value: str) -> Callable[[dict[str, Any], list[list[str]]], None]:
    def mutate(template: dict[str, Any], _: list[list[str]]) -> None:
        layer(template)["Metadata"][key] = value

    return mutate


def _replace(old: str, new: str | None) -> Callable[[dict[str, Any], list[list[str]]], None]:
    """Replace (or with None, drop) a word in every command that has it."""

    def mutate(_: dict[str, Any], commands: list[list[str]]) -> None:
        for command in commands:
            command[:] = [word if word != old else new for word in command if word != old or new is not None]

    return mutate


def _architectures(template: dict[str, Any], _: list[list[str]]) -> None:
    layer(template)["Metadata"]["BuildArchitecture"] = "x86_64"
    layer(template)["Properties"]["CompatibleArchitectures"] = ["x86_64"]


def _compile_first(_: dict[str, Any], commands: list[list[str]]) -> None:
    at, _ = compileall(commands)
    commands.insert(0, commands.pop(at))


MUTATIONS: dict[str, tuple[str, Callable[[dict[str, Any], list[list[str]]], None]]] = {
    "SAM's Python builder": ("built_by_the_makefile", _metadata("BuildMethod", "python3.12")),
    "x86_64 in the template, arm64 wheels": ("wheels_for_the_template_architecture", _architectures),
    "wheels for another Python": ("wheels_for_the_template_architecture", _replace("3.12", "3.11")),
    "another requirements file": ("wheels_for_the_template_architecture", _replace("requirements.txt", "../r.txt")),
    "wheels or sdists": ("wheels_for_the_template_architecture", _replace("--only-binary=:all:", None)),
    "timestamp .pyc": ("compiled_with_unchecked_hash", _replace("unchecked-hash", "timestamp")),
    "checked-hash .pyc": ("compiled_with_unchecked_hash", _replace("unchecked-hash", "checked-hash")),
    "pip's own .pyc kept": ("compiled_with_unchecked_hash", _replace("--no-compile", None)),
    "compiled by another python": ("compiled_with_unchecked_hash", _replace("python3.12", "python3")),
    "compiled before the copy": ("compiled_with_unchecked_hash", _compile_first),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_the_check_fails_without_the_property(mutation, commands):
    check, mutate = MUTATIONS[mutation]
    template, mutated = copy.deepcopy(TEMPLATE), copy.deepcopy(commands)
    mutate(template, mutated)
    assert CHECKS[check](template, mutated), f"{check} passed on a layer build with {mutation}"


def test_every_check_has_a_mutation():
    assert {check for check, _ in MUTATIONS.values()} == set(CHECKS)
