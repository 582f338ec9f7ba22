"""One controller tick over N active judged canaries, without and with 50 ms added to every AWS call.

On moto in-process with Shepherd's SageMaker and CloudWatch emulator extensions (each request atomic, as in
local mode; moto's Query and ListObjectVersions made to cost what they ask for, the same answers:
`_support.query_only_what_is_asked_in_moto`). N endpoints each get v1 as a first deployment, then v2 as a judged canary
(10% for an hour): promotions go through the product's own service (`PromotionService.promote`, as
the start_rollout handler calls it), and controller ticks through `RolloutService.tick`, wired by
`bootstrap.Container` from the controller's environment (CONTROLLER_CONCURRENCY: the template's 16).

Once every canary bakes, consecutive one-minute ticks do the same work (each judges its rollout's
step: one GetMetricData, one verdict committed) and are measured: with no injected latency, then with
`--latency-ms` slept in a botocore `before-sign` hook on every attempt of every call (the network's
share of a call; moto then answers in-process), then, for small N, the same at concurrency 1 (one
rollout after another: the controller before concurrent passes).

    .venv/bin/python bench/controller_scale.py              # N = 10 and 100
    .venv/bin/python bench/controller_scale.py --n 10 100 1000
"""

from __future__ import annotations

import argparse
import gzip
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _support import (
    LAMBDA_ENVIRONMENT,
    TEMPLATE_ENVIRONMENT,
    CallLog,
    environment,
    query_only_what_is_asked_in_moto,
    snapshot_only_touched_items_in_moto_transactions,
    table,
)

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
FIRST = {"type": "all_at_once"}
# The judge on (the default), a bake long enough that every measured tick judges the same step.
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 3600}
SEQUENTIAL_UP_TO = 100  # N up to which the concurrency-1 tick is measured too (it takes N x calls x latency)
GOAL_SECONDS = 60.0
GOAL_OVERHEAD = 0.5


class Latency:
    """Sleeps `seconds` before each attempt of each AWS call the handlers' clients make, while on."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.slept = 0  # attempts delayed (one per call unless the SDK retried)

    def before_sign(self, **_: Any) -> None:
        if self.seconds:
            self.slept += 1
            time.sleep(self.seconds)


class Clock:
    """The services' clock: the simulated minute of the tick being run (thread-safe: read only)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def endpoint(n: int) -> str:
    return f"churn-{n:04d}"


def model(n: int) -> str:
    return f"churn-model-{n:04d}"


def upload(life: Any, model_name: str, run: int) -> dict[str, Any]:
    """The artifact put, and its S3 `Object Created` event (as aws_calls.Lifecycle.upload_event does)."""
    from shepherd_cli.local.lambda_runtime import eventbridge_event

    bucket, key = TEMPLATE_ENVIRONMENT["ARTIFACT_BUCKET_NAME"], f"models/{model_name}/run-{run}/model.tar.gz"
    version_id = life.client("s3").put_object(Bucket=bucket, Key=key, Body=gzip.compress(b"weights"))["VersionId"]
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": {"key": key, "size": 7, "etag": "e", "version-id": version_id, "sequencer": "00"},
        "request-id": "R",
        "requester": "123456789012",
        "source-ip-address": "203.0.113.15",
        "reason": "PutObject",
    }
    return eventbridge_event("aws.s3", "Object Created", detail, START)


def approval(model_name: str, version: int) -> dict[str, Any]:
    from shepherd_cli.local.lambda_runtime import eventbridge_event

    detail = {
        "model_name": model_name,
        "version": version,
        "decision": "approved",
        "requested_by": "alice@example.com",
        "reason": "scale bench",
    }
    return eventbridge_event("acme.ml", "Model Version Approval Requested", detail, START)


class World:
    def __init__(self, size: int, latency: Latency, log: CallLog) -> None:
        import boto3
        from aws_calls import Lifecycle, build_world

        from shepherd import bootstrap

        self.size = size
        self.clock = Clock()
        self.latency = latency
        self.log = log
        probe = boto3.session.Session(region_name="eu-west-1")  # outside the default session: not delayed
        build_world(probe.client)
        self.bootstrap = bootstrap
        self.judged = 0
        self.container = bootstrap.Container(clock=self.clock)
        # Each endpoint serves a model of its own (a version rolls out to one endpoint at a time): v1 and
        # v2 of each registered and approved through their handlers.
        life = Lifecycle(probe.client)
        with bootstrap.wired(self.container):
            for n in range(size):
                for run in (1, 2):
                    life.invoke("register_version", upload(life, model(n), run))
                    life.invoke("decide_approval", approval(model(n), run))

    def promote_all(self, version: int, strategy: dict[str, Any]) -> None:
        from shepherd.inbound.promotion import parse_promotion
        from shepherd_cli.local.lambda_runtime import eventbridge_event

        service = self.container.promotion_service
        for n in range(self.size):
            detail = {
                "model_name": model(n),
                "version": version,
                "endpoint_name": endpoint(n),
                "strategy": strategy,
                "requested_by": "bench@example.com",
                "reason": "scale bench",
            }
            event = eventbridge_event("acme.ml", "Model Promotion Requested", detail, self.clock.now)
            outcome = service.promote(parse_promotion(event))
            assert outcome.result == "started", outcome

    def tick(self, container: Any | None = None) -> tuple[dict[str, str], int, float, int]:
        """One tick a minute after the last: (results, errors, wall seconds, AWS calls made).

        A measured tick must judge every rollout: one GetMetricData each."""
        self.clock.now += timedelta(minutes=1)
        service = (container or self.container).rollout_service
        with self.log.record() as calls:
            began = time.perf_counter()
            report = service.tick(self.clock.now, f"tick-{self.clock.now:%H%M}")
            wall = time.perf_counter() - began
        self.judged = sum(name == "GetMetricData" for _service, name, _params in calls)
        return report.results, report.errors, wall, len(calls)

    def settle(self, done: Any, most: int = 12) -> None:
        """Tick until every active rollout's outcome satisfies `done` (or none is active)."""
        for _ in range(most):
            results, errors, wall, calls = self.tick()
            print(f"  setup tick: {len(results)} rollouts, {errors} errors, {calls} calls, {wall:.1f} s", flush=True)
            if all(done(outcome) for outcome in results.values()):
                return
        raise RuntimeError(f"rollouts did not settle: {sorted(set(results.values()))}")

    def sequential(self) -> Any:
        """A container like the controller's, but serving one endpoint at a time."""
        return self.bootstrap.Container(environ={**os.environ, "CONTROLLER_CONCURRENCY": "1"}, clock=self.clock)


def measure(size: int, latency_ms: float) -> list[Any]:
    import boto3
    from moto import mock_aws

    from shepherd_cli.local import atomic_dynamodb, atomic_requests, cloudwatch_emulator, emulator

    latency, log = Latency(), CallLog()
    with (
        mock_aws(),
        environment(TEMPLATE_ENVIRONMENT | LAMBDA_ENVIRONMENT | {"POWERTOOLS_TRACE_DISABLED": "true"}),
    ):
        emulator.install()
        emulator.reset()
        emulator.configure(settle_after_describes=0)  # fewer set-up ticks; a settled endpoint is all we measure
        cloudwatch_emulator.install()
        atomic_dynamodb.install()
        atomic_requests.install()  # as local mode: each emulated request atomic
        session = boto3._get_default_session()
        session.events.register("before-parameter-build.*.*", log.on_call)
        session.events.register("before-sign.*.*", latency.before_sign)
        began = time.perf_counter()
        world = World(size, latency, log)
        print(f"N={size}: first deployments", flush=True)
        world.promote_all(1, FIRST)
        world.settle(lambda outcome: False)  # until none is active
        print(f"N={size}: judged canaries", flush=True)
        world.promote_all(2, CANARY)
        world.settle(lambda outcome: outcome == "waiting")  # baking at 10%, judged
        print(f"N={size}: set up in {time.perf_counter() - began:.0f} s; measuring", flush=True)

        if os.environ.get("PROFILE_TICK"):
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            world.tick(world.sequential())
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        results, errors, plain, calls = world.tick()
        assert errors == 0 and set(results.values()) == {"waiting"} and len(results) == size, results
        assert world.judged == size, world.judged
        latency.seconds = latency_ms / 1000
        results, errors, delayed, delayed_calls = world.tick()
        assert errors == 0 and set(results.values()) == {"waiting"} and world.judged == size, results
        one_at_a_time: float | None = None
        if size <= SEQUENTIAL_UP_TO:
            results, errors, one_at_a_time, _ = world.tick(world.sequential())
            assert errors == 0 and set(results.values()) == {"waiting"}, results
        latency.seconds = 0.0
        assert calls == delayed_calls, (calls, delayed_calls)
        delayed_ticks = 2 if one_at_a_time is not None else 1
        print(f"  attempts delayed: {latency.slept} (calls in the delayed ticks: {delayed_ticks * calls})", flush=True)
        overhead = delayed / plain - 1
        ok = delayed < GOAL_SECONDS and overhead <= GOAL_OVERHEAD
        return [
            size,
            calls,
            f"{plain:.1f} s",
            f"{delayed:.1f} s",
            f"{overhead:+.0%}",
            f"{one_at_a_time:.1f} s" if one_at_a_time is not None else "-",
            "ok" if ok else "MISSED",
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, help="CONTROLLER_CONCURRENCY (default: the template's)")
    arguments = parser.parse_args()
    if arguments.concurrency:
        TEMPLATE_ENVIRONMENT["CONTROLLER_CONCURRENCY"] = str(arguments.concurrency)
    snapshot_only_touched_items_in_moto_transactions()
    query_only_what_is_asked_in_moto()
    concurrency = TEMPLATE_ENVIRONMENT["CONTROLLER_CONCURRENCY"]
    rows = [measure(size, arguments.latency_ms) for size in arguments.n]
    ms = f"{arguments.latency_ms:g} ms"
    print(f"\nOne controller tick over N judged canaries (concurrency {concurrency}, {os.cpu_count()} CPUs)\n")
    headers = [
        "N",
        "AWS calls per tick",
        "wall, no latency",
        f"wall, {ms} per call",
        "overhead",
        f"one at a time, {ms}",
        f"goal (< {GOAL_SECONDS:g} s, <= +{GOAL_OVERHEAD:.0%})",
    ]
    print(table(headers, rows))
    print(f"\nthreads alive at the end: {threading.active_count()}")


if __name__ == "__main__":
    main()
