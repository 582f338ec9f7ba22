"""Cold start: import time of each handler module against the floor every handler pays, in the same run.

Each measurement is a fresh interpreter that imports one module the way Lambda does (the function's
folder and the layer first on sys.path, the template's POWERTOOLS_* environment) and reports the time
the import took inside the process (interpreter start-up excluded). For a handler, the time also
includes wiring its service (`bootstrap.<service>()`, which imports the adapters and services the
function uses on its first call), with boto3 clients stubbed: building a client costs the same in
any design and the floor does not include it either. Median of 10 processes per
target, interleaved so that drift hits every target alike; one warm-up process per target first
(bytecode caches written). The floor is what any handler here needs before a line of Shepherd: boto3,
pydantic and Powertools' Logger, Metrics and Tracer. Goal: every handler at most 1.2x the floor.
`import boto3` alone is printed too, for scale.

Two configurations: "traced" is Lambda with `Tracing: Active` (the template's setting: Powertools'
Tracer imports the X-Ray SDK and patches botocore at import), "untraced" has POWERTOOLS_TRACE_DISABLED.
For the slowest handler, `python -X importtime` says which packages the time goes to.

    .venv/bin/python bench/cold_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

from _support import FUNCTIONS, LAMBDA_ENVIRONMENT, LAYER, ROOT, SERVICE_OF, TEMPLATE_ENVIRONMENT, median, table

GOAL = 1.2
PROBE = """
import sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
{then}
print(time.perf_counter() - started)
"""
# Shepherd's models build their validators on first use (pydantic's defer_build): the function's first
# invocation builds those it touches. The upper bound builds every model the handler's modules define,
# as an import did before deferral; the real first invocation lies between the two numbers.
BUILD_EVERY_MODEL = """import pydantic
for module in [m for name, m in list(sys.modules.items()) if name.startswith("shepherd")]:
    for value in list(vars(module).values()):
        mine = isinstance(value, type) and value.__module__.startswith("shepherd")
        if mine and issubclass(value, pydantic.BaseModel) and not value.__pydantic_complete__:
            value.model_rebuild()
        elif isinstance(value, pydantic.TypeAdapter):
            value.rebuild()"""
# What any handler here needs before a line of Shepherd: boto3, pydantic, Powertools' three decorators.
# `import pydantic` alone imports almost nothing (pydantic loads its model machinery on first use), so
# the floor defines one model: every handler here uses pydantic models, and pays for that machinery.
FLOOR = "floor"
FLOOR_STATEMENT = """import boto3, pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer
Logger(); Metrics(); Tracer()
class Floor(pydantic.BaseModel):
    x: int"""


def child_environment(traced: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_", "PYTHON"))}
    env |= TEMPLATE_ENVIRONMENT | LAMBDA_ENVIRONMENT
    if not traced:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


HANDLER_STATEMENT = """import app
from shepherd import bootstrap
bootstrap.client = lambda service: object()
bootstrap.{service}()"""


def target(function: str | None) -> tuple[str, list[str]]:
    """(what to time, sys.path entries): boto3 alone, the floor, or a handler with its folder and the layer."""
    if function is None:
        return "import boto3", []
    if function == FLOOR:
        return FLOOR_STATEMENT, []
    return HANDLER_STATEMENT.format(service=SERVICE_OF[function]), [str(ROOT / "functions" / function), str(LAYER)]


def measure(function: str | None, traced: bool, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    statement, paths = target(function)
    then = BUILD_EVERY_MODEL if function not in (None, FLOOR) else ""
    return subprocess.run(
        [sys.executable, *extra, "-c", PROBE.format(paths=paths, statement=statement, then=then)],
        env=child_environment(traced),
        capture_output=True,
        text=True,
        check=True,
        cwd="/",  # nothing of the repository on sys.path but what the probe adds
    )


def import_seconds(function: str | None, traced: bool) -> tuple[float, float]:
    """(import and wiring, the same with every model built)."""
    lines = measure(function, traced).stdout.strip().splitlines()
    return float(lines[-2]), float(lines[-1])


def breakdown(function: str, traced: bool, top: int = 8) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Self time per top-level package, and the slowest single modules (python -X importtime)."""
    stderr = measure(function, traced, ("-X", "importtime")).stderr
    per_package: dict[str, float] = defaultdict(float)
    per_module: dict[str, float] = {}
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            seconds = int(match.group(1)) / 1e6
            per_package[match.group(4).split(".")[0]] += seconds
            per_module[match.group(4)] = seconds

    def slowest(values: dict[str, float]) -> list[tuple[str, float]]:
        return sorted(values.items(), key=lambda item: -item[1])[:top]

    return slowest(per_package), slowest(per_module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    targets: list[str | None] = [None, FLOOR, *FUNCTIONS]

    rows = []
    slowest: dict[bool, tuple[float, str]] = {}
    for traced in (True, False):
        samples: dict[str | None, list[tuple[float, float]]] = {t: [] for t in targets}
        for t in targets:
            import_seconds(t, traced)  # warm-up: bytecode caches
        for _ in range(args.runs):
            for t in targets:
                samples[t].append(import_seconds(t, traced))
        baseline = median([wired for wired, _ in samples[FLOOR]])
        for t in targets:
            value = median([wired for wired, _ in samples[t]])
            built = median([every for _, every in samples[t]])
            ratio = value / baseline
            if t in (None, FLOOR):
                name = "import boto3" if t is None else "floor: boto3 + pydantic (one model) + Logger/Metrics/Tracer"
                verdict, upper = "", ""
            else:
                name, verdict = f"functions/{t}/app.py", ("ok" if ratio <= GOAL else "MISSED")
                upper = f"{built * 1000:.0f} ({built / baseline:.2f}x)"
            label = "traced" if traced else "untraced"
            rows.append([label, name, f"{value * 1000:.0f}", f"{ratio:.2f}x", verdict, upper])
            if t not in (None, FLOOR) and ratio > slowest.get(traced, (0.0, ""))[0]:
                slowest[traced] = (ratio, t)

    print(f"Handler import and wiring vs the floor (median of {args.runs} fresh processes; goal <= {GOAL}x)\n")
    print(table(["config", "module", "ms", "vs floor", "goal", "every model built: ms (vs floor)"], rows))
    for traced, (_ratio, function) in slowest.items():
        label = "traced" if traced else "untraced"
        packages, modules = breakdown(function, traced)
        print(f"\nWhere the time goes, functions/{function}/app.py ({label}), python -X importtime self times:\n")
        rows = [
            [package, f"{p_seconds * 1000:.0f}", module, f"{m_seconds * 1000:.0f}"]
            for (package, p_seconds), (module, m_seconds) in zip(packages, modules, strict=False)
        ]
        print(table(["top-level package", "ms", "module", "ms"], rows))


if __name__ == "__main__":
    main()
