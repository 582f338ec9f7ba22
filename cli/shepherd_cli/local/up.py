"""`shepherd local up`: local mode in the foreground, following real time, until Ctrl-C.

template.yaml is deployed into the embedded emulator on a loopback port; the pump then serves
(`Pump.serve`): events are handed to the functions as they arrive and schedules fire from a clock
running ``speed`` times faster than real time: from the wall clock's time on a first start, from
where it stopped when a saved state is restored (`persistence.py`). Each invocation and each
announcement is printed as it flows. ``.shepherd/local.json`` tells other CLI invocations where the
emulator is (see `state.py`); it is removed on exit.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from shepherd_cli.announcements import describe_announcement
from shepherd_cli.errors import CliError
from shepherd_cli.local import persistence, simulation
from shepherd_cli.local.autoscaling import CapacitySample
from shepherd_cli.local.load import Load
from shepherd_cli.local.monitor import BusMonitor, describe_invocation, is_idle_tick
from shepherd_cli.local.pump import Outcome, Pump
from shepherd_cli.local.simulated_time import SimulatedClock
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.local.state import ClockState, LocalState, pid_alive, read_state, remove_state, write_state
from shepherd_cli.safe_text import clean

DEFAULT_PORT = 4750
# Handlers' Powertools JSON lines: only errors by default (warnings such as a refusal are announced,
# and printed as one line each); with --verbose, everything from INFO up.
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
VERBOSE = {"POWERTOOLS_LOG_LEVEL": "INFO", "LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "true"}
STOP_TIMEOUT_SECONDS = 30


class EventPrinter:
    """The pump's hook: one line per invocation (idle controller ticks aside) and per announcement."""

    def __init__(self, out: Console, clock: SimulatedClock, verbose: bool) -> None:
        self.out = out
        self.clock = clock
        self.verbose = verbose
        self.monitor: BusMonitor | None = None
        self.prefix = ""

    def __call__(self, function_name: str, event: dict[str, Any], outcome: Outcome) -> None:
        name = function_name.removeprefix(self.prefix)
        if self.verbose or _worth_a_line(event, outcome):
            style = "red" if outcome.status != "ok" else "dim"
            self._line(self.clock.now, Text(clean(describe_invocation(name, event, outcome)), style=style))
        if self.monitor is not None:
            for announcement in self.monitor.drain():
                detail_type = announcement["detail-type"]
                text = Text.assemble(
                    (clean(detail_type), "bold"), "  ", describe_announcement(detail_type, announcement["detail"])
                )
                self._line(self.clock.now, text)

    def capacity(self, samples: list[CapacitySample]) -> None:
        """One line per scaling activity (the simulation's minute), with the variant's counts."""
        for sample in samples:
            if sample.activity:
                text = Text.assemble(
                    ("Auto Scaling", "bold"),
                    f"  {clean(sample.endpoint_name)}/{clean(sample.variant_name)}: "
                    f"{sample.current} instances, desired {sample.desired} ({clean(sample.activity)})",
                )
                self._line(sample.at, text)

    def _line(self, at: datetime, text: Text) -> None:
        self.out.print(Text.assemble((at.strftime("%H:%M:%S"), "cyan"), "  ", text))


def _worth_a_line(event: dict[str, Any], outcome: Outcome) -> bool:
    """Not a failed attempt Lambda will retry (the last one is shown), nor a controller tick with no
    rollout to look after; a tick that waits on a bake is shown (one line per simulated minute)."""
    if outcome.status == "error":
        return False
    if is_idle_tick(event, outcome):
        results = outcome.result.get("results") if isinstance(outcome.result, dict) else None
        return bool(results)
    return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server binds: a port whose last connections are in TIME_WAIT (a restart right
        # after Ctrl-C) is free; one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _banner(out: Console, local: LocalShepherd, template: Path, state_file: Path, speed: float, load: Load) -> None:
    outputs, url, region = local.outputs, local.endpoint_url, local.region
    bucket = outputs["ArtifactBucketName"]
    key = "models/churn-predictor/run-1"
    out.print(Text(f"Shepherd local mode: {template} deployed as stack {local.stack.name}", style="bold"))
    out.print(f"  endpoint URL  {url}   (region {region}, any access key)")
    out.print(f"  bucket        {bucket}")
    out.print(f"  event bus     {outputs['EventBusName']}")
    out.print(f"  table         {outputs['RegistryTableName']}")
    out.print(f"  state file    {state_file}")
    for note in local.stack.notes:
        out.print(f"  not emulated: {note}", style="dim")
    out.print("\nUpload with the AWS CLI from another terminal:", style="bold")
    out.print(
        f"  export AWS_ENDPOINT_URL={url} AWS_DEFAULT_REGION={region} "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
        soft_wrap=True,
    )
    out.print(f"  aws s3 cp manifest.json s3://{bucket}/{key}/manifest.json", soft_wrap=True)
    out.print(f"  aws s3 cp model.tar.gz s3://{bucket}/{key}/model.tar.gz --checksum-algorithm SHA256", soft_wrap=True)
    out.print("or boto3:", style="bold")
    out.print(
        f'  python -c \'import boto3; boto3.client("s3", endpoint_url="{url}", region_name="{region}", '
        f'aws_access_key_id="testing", aws_secret_access_key="testing").upload_file("model.tar.gz", '
        f'"{bucket}", "{key}/model.tar.gz")\'',
        soft_wrap=True,
    )
    out.print("then, from this directory (or with SHEPHERD_ENDPOINT_URL set):", style="bold")
    out.print("  shepherd versions churn-predictor")
    out.print("  shepherd approve churn-predictor 1 --reason 'looks good'")
    out.print("  shepherd promote churn-predictor 1 churn-prod --all-at-once && shepherd status churn-prod")
    out.print(
        f"Simulated traffic: {load.describe()} to every endpoint; make a version slow or failing with", style="bold"
    )
    out.print("  shepherd local traffic churn-predictor 2 --latency-ms 120 --p99-ms 400 --error-percent 2")
    out.print("or ramp the load (RPS@MINUTE points, linear between; autoscaled variants follow it):", style="bold")
    out.print("  shepherd local traffic --rps 100@0,2000@30")
    out.print(f"\nSimulated clock at {speed:g}x real time. Events as they flow (Ctrl-C to stop):\n", style="bold")


def _restore(out: Console, local: LocalShepherd, state_dir: Path, fresh: bool) -> None:
    if fresh:
        persistence.forget(state_dir)
        return
    saved = persistence.saved_outputs(state_dir)
    if saved is None:
        return
    if saved != local.outputs:
        out.print(f"The template's outputs changed since {state_dir} was saved: starting empty.", style="yellow")
        return
    persistence.restore(state_dir)
    out.print(f"Restored the state saved in {state_dir} (--fresh starts empty).", style="dim")


def _serve(pump: Pump, stop: threading.Event, speed: float, failures: list[str]) -> None:
    try:
        pump.serve(stop, speed=speed)
    # The thread's top level: whatever stops the pump is reported and ends `local up`.
    except Exception as error:
        failures.append(f"{type(error).__name__}: {error}")
        stop.set()


def _check_can_start(template: Path, speed: float, state_file: Path, port: int) -> None:
    if not template.is_file():
        raise CliError(f"no template at {template}")
    if speed <= 0:
        raise CliError("--speed must be positive")
    existing = read_state(state_file)
    if existing is not None and existing.pid != os.getpid() and pid_alive(existing.pid):
        raise CliError(f"a local Shepherd is already running (pid {existing.pid}) at {existing.endpoint_url}")
    if port and not _port_free(port):
        raise CliError(f"port {port} is in use: pass --port with a free one (0 picks any)")


def run_up(
    template: Path,
    *,
    out: Console,
    port: int = DEFAULT_PORT,
    speed: float = 1.0,
    rps: float | Load = simulation.DEFAULT_RPS,
    parameters: dict[str, str] | None = None,
    state_file: Path,
    state_dir: Path | None = None,
    fresh: bool = False,
    verbose: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Serve until Ctrl-C, SIGTERM or `stop`; returns the exit code."""
    _check_can_start(template, speed, state_file, port)
    try:
        load = rps if isinstance(rps, Load) else Load.constant(rps)
    except ValueError as error:
        raise CliError(str(error)) from None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stop = stop or threading.Event()
    # One clock across restarts: a saved state continues from its simulated time (persistence.py).
    resumed_at = None if state_dir is None or fresh else persistence.saved_clock(state_dir)
    clock = SimulatedClock(resumed_at)
    printer = EventPrinter(out, clock, verbose)
    out.print("Starting the emulator and deploying the template...", style="dim")
    local = LocalShepherd.start(
        template,
        port=port,
        clock=clock,
        on_event=printer,
        environment_overrides=VERBOSE if verbose else QUIET,
        parameters=parameters,
        names_seed=persistence.NAMES_SEED,
    )
    failures: list[str] = []
    try:
        if state_dir is not None:
            _restore(out, local, state_dir, fresh)
        local.pump.warm_up()
        printer.prefix = f"{local.stack.name}-"
        printer.monitor = BusMonitor(local)
        simulation.attach(local, rps=load).on_capacity = printer.capacity
        if resumed_at is None:
            # A first start: the simulated clock starts at the wall clock's time. It started before the
            # template was deployed: catch up.
            local.pump.advance(max(0.0, (datetime.now(UTC) - clock.now).total_seconds()))
        else:
            out.print(f"The simulated clock continues from {resumed_at.isoformat()}.", style="dim")
        clock_state = ClockState(origin=clock.now.isoformat(), real_origin=time.time(), speed=speed)
        state = LocalState(local.endpoint_url, local.region, local.stack.name, os.getpid(), local.outputs, clock_state)
        write_state(state, state_file)
        _banner(out, local, template, state_file, speed, load)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda _signum, _frame: stop.set())
        server = threading.Thread(target=_serve, args=(local.pump, stop, speed, failures), name="pump", daemon=True)
        server.start()
        while not stop.wait(0.5):
            pass
        server.join(STOP_TIMEOUT_SECONDS)
        if state_dir is not None and not server.is_alive():
            local.pump.run_until_idle()  # what was sent before the stop is handled, then kept
            persistence.save(state_dir, local.outputs, clock.now)
            out.print(f"State saved in {state_dir}.", style="dim")
    finally:
        remove_state(state_file, os.getpid())
        local.stop()
    for failure in failures:
        out.print(Text(f"the pump stopped: {failure}", style="red"))
    out.print("Stopped.", style="dim")
    return 1 if failures else 0
