"""Cold import from the shared layer without and with the bytecode layers/shepherd/Makefile compiles.

Lambda mounts the layer read-only at /opt, so Python cannot cache what it compiles there: a layer
without .pyc files (what SAM's python3.12 builder ships: it leaves out every *.pyc) compiles each
module it imports at every cold start. layers/shepherd/Makefile (the layer's build since
`BuildMethod: makefile`) ships unchecked-hash .pyc files instead.

This builds the layer with that Makefile for this machine's architecture (ARCH=x86_64 here: the
template's arm64 wheels do not import on an x86_64 machine), into a temporary folder, and makes a copy
of it without any .pyc file, i.e. the same packages as SAM's python3.12 builder ships them. Each
measurement is a fresh `python3.12 -B` (nothing written, as on the read-only /opt) with the function's
folder (app.py alone, no bytecode, as SAM's builder ships a function) and the layer first on sys.path,
the template's environment, Tracing active, and times in the process:

- floor: `import boto3`, pydantic with one model, Powertools' Logger, Metrics and Tracer, all from the
  layer (its pinned boto3 shadows the runtime's);
- handler: `import app`, then its service wiring (`bootstrap.<service>()`, boto3 clients stubbed).

Medians of `--runs` processes per function and layer, the layers taking turns. `--layer NAME=DIR` adds a
layer's python/ folder as built elsewhere, e.g. by `sam build` for x86_64 with the old build method.

    .venv/bin/python bench/layer_bytecode.py [--runs 7] [--layer NAME=DIR ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _support import FUNCTIONS, LAMBDA_ENVIRONMENT, LAYER, ROOT, SERVICE_OF, TEMPLATE_ENVIRONMENT, median, table

PROBE = """
import sys, time
start = time.perf_counter()
sys.path[:0] = {paths!r}
import boto3
import pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer
Logger(); Metrics(); Tracer()
class Floor(pydantic.BaseModel):
    x: int
floor = time.perf_counter()
import app
from shepherd import bootstrap
with bootstrap.wired(bootstrap.Container(clients=lambda service: object())):
    bootstrap.{service}()
handler = time.perf_counter()
assert boto3.__file__.startswith({layer!r}), boto3.__file__
print(floor - start, handler - floor)
"""


def build_layer(python: str, into: Path) -> Path:
    """layers/shepherd/Makefile's build, for this machine's architecture; returns its python/ folder."""
    completed = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(LAYER),
            "build-SharedLayer",
            f"ARTIFACTS_DIR={into}",
            f"ARCH={platform.machine()}",
            f"PYTHON={python}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        sys.exit(f"building the layer failed:\n{completed.stdout}{completed.stderr}")
    return into / "python"


def without_bytecode(source: Path, into: Path) -> Path:
    shutil.copytree(source, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def function_folder(function: str, into: Path) -> Path:
    """The function as SAM's builder ships it: app.py, no bytecode."""
    folder = into / function
    folder.mkdir(parents=True)
    shutil.copy2(ROOT / "functions" / function / "app.py", folder / "app.py")
    return folder


def census(layer: Path) -> str:
    sources = sum(1 for _ in layer.rglob("*.py"))
    compiled = sum(1 for _ in layer.rglob("*.cpython-312.pyc"))
    size = sum(path.stat().st_size for path in layer.rglob("*") if path.is_file())
    return f"{sources} .py, {compiled} .cpython-312.pyc, {size / 1e6:.1f} MB"


def seconds(python: str, function_dir: Path, layer: Path, service: str) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_", "PYTHON"))}
    env |= TEMPLATE_ENVIRONMENT | LAMBDA_ENVIRONMENT
    probe = PROBE.format(paths=[str(function_dir), str(layer)], layer=str(layer), service=service)
    completed = subprocess.run(
        [python, "-B", "-s", "-c", probe], env=env, capture_output=True, text=True, check=True, cwd="/"
    )
    floor, handler = map(float, completed.stdout.split())
    return floor, handler


def measure(
    python: str, runs: int, folders: dict[str, Path], layers: dict[str, Path]
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(floor, handler) seconds per (function, layer), after one warm-up process each (the file
    system's cache), the layers taking turns."""
    for function, folder in folders.items():
        for layer in layers.values():
            seconds(python, folder, layer, SERVICE_OF[function])
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(runs):
        for function, folder in folders.items():
            for name, layer in layers.items():
                samples.setdefault((function, name), []).append(seconds(python, folder, layer, SERVICE_OF[function]))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--python", default=shutil.which("python3.12"), help="CPython 3.12 (default: on PATH)")
    parser.add_argument("--function", action="append", choices=FUNCTIONS, help="default: every function")
    parser.add_argument("--layer", action="append", default=[], metavar="NAME=DIR", help="another layer's python/")
    args = parser.parse_args()
    if not args.python:
        sys.exit("python3.12 is not on PATH (pass --python)")
    functions = args.function or FUNCTIONS

    with tempfile.TemporaryDirectory(prefix="layer-bytecode-") as temporary:
        work = Path(temporary)
        compiled = build_layer(args.python, work / "compiled")
        layers = {
            "no .pyc (SAM python3.12 builder)": without_bytecode(compiled, work / "source-only"),
            "unchecked-hash .pyc (Makefile)": compiled,
        }
        for extra in args.layer:
            name, _, folder = extra.partition("=")
            layers[name] = Path(folder).resolve()
        folders = {function: function_folder(function, work / "functions") for function in functions}

        version = subprocess.run([args.python, "-V"], capture_output=True, text=True, check=True).stdout.strip()
        print(f"{args.python} ({version}, {platform.machine()}), layers:")
        for name, layer in layers.items():
            print(f"  {name}: {census(layer)}")
        samples = measure(args.python, args.runs, folders, layers)

    rows = []
    for function in functions:
        for name in layers:
            measured = samples[(function, name)]
            floor_ms = median([f for f, _ in measured]) * 1000
            handler_ms = median([h for _, h in measured]) * 1000
            total_ms = median([f + h for f, h in measured]) * 1000
            rows.append([function, name, f"{floor_ms:.0f}", f"{handler_ms:.0f}", f"{total_ms:.0f}"])
    print(f"\nCold import from the layer, traced, medians of {args.runs} processes (ms)\n")
    print(table(["function", "layer", "floor", "handler", "floor + handler"], rows))


if __name__ == "__main__":
    main()
