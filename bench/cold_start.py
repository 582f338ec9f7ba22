"""Cold start: each handler's import and wiring against the floor every handler pays, in one process.

Each measurement is a fresh interpreter that does what a Lambda cold start does before the first event
(the function's folder and the layer first on sys.path, the template's POWERTOOLS_* environment and
what Lambda sets) and times three steps in the same process, so that the machine's load hits them alike:

1. `import boto3`, for scale;
2. the floor: the rest of what any handler here needs before a line of Shepherd, pydantic (with one
   model: `import pydantic` alone loads almost nothing, the first model loads its machinery) and
   Powertools' Logger, Metrics and Tracer. Floor = steps 1 + 2;
3. the handler: `import app`, then its service wiring (`bootstrap.<service>()`, which imports the
   adapters and services the function uses on its first call), with boto3 clients stubbed: building a
   client costs the same in any design, and the floor does not include it either.

Ratio = (floor + handler) / floor, per process; the table shows medians of `--runs` processes per
function, after one warm-up process (bytecode caches written). Goal: every handler at most 1.2x.
Shepherd's models build their validators on first use (pydantic's defer_build), so the first event
builds those it touches: the "first event" column adds what the function's usual first event adds
(`FIRST_EVENT`, read from its path: an alarm that rolls a canary back, a tick that shifts a step, a
promotion, an approval, an upload): the validators it builds and the modules it imports on first use.
The last column is an upper bound that builds every model the loaded modules define, as an import did
before deferral.

Two configurations: "traced" is Lambda with `Tracing: Active` (the template's setting: Powertools'
Tracer imports the X-Ray SDK and patches botocore), "untraced" has POWERTOOLS_TRACE_DISABLED.
For the slowest handler, `python -X importtime` says which modules the handler's time goes to.

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
# What a function's usual first event adds: the models (and type adapters) whose validators it builds,
# as "module:name" under shepherd (a nested model is built inside its parent's validator), and the
# modules it imports on first use, as "module".
FIRST_EVENT = {
    "decide_approval": "inbound.eventbridge:EventBridgeEvent inbound.approval:ApprovalRequestedEvent "
    "registry.model:ModelVersion registry.model:AuditEntry contracts:ModelVersionApproved",
    "register_version": "inbound.uploads:_S3EventBridgeEvent registry.model:ArtifactFacts registry.model:Lineage "
    "registry.manifest:Manifest registry.model:ModelVersion registry.model:AuditEntry contracts:ModelVersionRegistered",
    "rollback": "inbound.alarm_action:AlarmActionEvent rollouts.record:Rollout rollouts.ports:RolloutRequest "
    "rollouts.rollback_cause:RollbackCause registry.model:AuditEntry rollouts.ports:EndpointAuditEntry "
    "rollouts.ports:Incident contracts:RolloutRolledBack",
    "rollout_controller": "rollouts.flip inbound.eventbridge:EventBridgeEvent rollouts.record:Rollout "
    "rollouts.ports:RolloutRequest rollouts.ports:EndpointAuditEntry contracts:RolloutTrafficShifted",
    "start_rollout": "inbound.eventbridge:EventBridgeEvent inbound.promotion:PromotionRequestedEvent "
    "rollouts.strategy:_ADAPTER registry.model:ModelVersion rollouts.record:LiveDeployment "
    "rollouts.record:Rollout rollouts.ports:RolloutRequest registry.model:AuditEntry "
    "rollouts.ports:EndpointAuditEntry contracts:RolloutStarted",
}
PROBE = """
import sys, time
marks = [time.perf_counter()]
import boto3
marks.append(time.perf_counter())
import pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer
Logger(); Metrics(); Tracer()
class Floor(pydantic.BaseModel):
    x: int
marks.append(time.perf_counter())
print("--- handler ---", file=sys.stderr)
sys.path[:0] = {paths!r}
import app
from shepherd import bootstrap
with bootstrap.wired(bootstrap.Container(clients=lambda service: object())):
    bootstrap.{service}()
marks.append(time.perf_counter())
import importlib
for spec in {first_event!r}.split():
    module, _, name = spec.partition(":")
    imported = importlib.import_module("shepherd." + module)
    if not name:
        continue
    built = getattr(imported, name)
    if isinstance(built, pydantic.TypeAdapter):
        built.rebuild()
    elif not built.__pydantic_complete__:
        built.model_rebuild()
marks.append(time.perf_counter())
for module in [m for name, m in list(sys.modules.items()) if name.startswith("shepherd")]:
    for value in list(vars(module).values()):
        mine = isinstance(value, type) and value.__module__.startswith("shepherd")
        if mine and issubclass(value, pydantic.BaseModel) and not value.__pydantic_complete__:
            value.model_rebuild()
        elif isinstance(value, pydantic.TypeAdapter):
            value.rebuild()
marks.append(time.perf_counter())
print(*[later - earlier for earlier, later in zip(marks, marks[1:])])
"""


def child_environment(traced: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_", "PYTHON"))}
    env |= TEMPLATE_ENVIRONMENT | LAMBDA_ENVIRONMENT
    if not traced:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def measure(function: str, traced: bool, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    paths = [str(ROOT / "functions" / function), str(LAYER)]
    return subprocess.run(
        [
            sys.executable,
            *extra,
            "-c",
            PROBE.format(paths=paths, service=SERVICE_OF[function], first_event=FIRST_EVENT[function]),
        ],
        env=child_environment(traced),
        capture_output=True,
        text=True,
        check=True,
        cwd="/",  # nothing of the repository on sys.path but what the probe adds
    )


def seconds(function: str, traced: bool) -> tuple[float, float, float, float, float]:
    """(import boto3, the rest of the floor, the handler's import and wiring, building what the first
    event builds, building every other model)."""
    boto3, rest, handler, first_event, models = map(float, measure(function, traced).stdout.split())
    return boto3, rest, handler, first_event, models


def breakdown(function: str, traced: bool, top: int = 8) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Self time per top-level package, and the slowest single modules (python -X importtime)."""
    stderr = measure(function, traced, ("-X", "importtime")).stderr.split("--- handler ---")[-1]
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

    rows = []
    slowest: dict[bool, tuple[float, str]] = {}
    for traced in (True, False):
        label = "traced" if traced else "untraced"
        samples: dict[str, list[tuple[float, float, float, float, float]]] = {f: [] for f in FUNCTIONS}
        for function in FUNCTIONS:
            seconds(function, traced)  # warm-up: bytecode caches
        for _ in range(args.runs):
            for function in FUNCTIONS:
                samples[function].append(seconds(function, traced))
        every = [sample for function in FUNCTIONS for sample in samples[function]]
        boto3_ms = median([b for b, *_ in every]) * 1000
        floor_ms = median([b + r for b, r, *_ in every]) * 1000
        rows.append([label, "import boto3", f"{boto3_ms:.0f}", "", "", "", "", ""])
        rows.append(
            [
                label,
                "floor: boto3 + pydantic (one model) + Logger/Metrics/Tracer",
                f"{floor_ms:.0f}",
                "",
                "1.00x",
                "",
                "",
                "",
            ]
        )
        for function in FUNCTIONS:
            measured = samples[function]
            ratio = median([(b + r + h) / (b + r) for b, r, h, _, _ in measured])
            first = median([(b + r + h + e) / (b + r) for b, r, h, e, _ in measured])
            upper = median([(b + r + h + e + m) / (b + r) for b, r, h, e, m in measured])
            verdict = "ok" if ratio <= GOAL else "MISSED"
            handler_ms = median([h for _, _, h, _, _ in measured]) * 1000
            rows.append(
                [
                    label,
                    f"functions/{function}/app.py",
                    "",
                    f"+{handler_ms:.0f}",
                    f"{ratio:.2f}x",
                    verdict,
                    f"{first:.2f}x",
                    f"{upper:.2f}x",
                ]
            )
            if ratio > slowest.get(traced, (0.0, ""))[0]:
                slowest[traced] = (ratio, function)

    print(f"Cold start vs the floor, measured in one process (median of {args.runs} processes; goal <= {GOAL}x)\n")
    headers = ["config", "step", "ms", "handler ms", "vs floor", "goal", "first event", "every model built"]
    print(table(headers, rows))
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
