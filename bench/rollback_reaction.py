"""Rollback reaction in local mode: from an alarm's state change to the traffic flip, over N trials.

Local mode (`LocalShepherd`: template.yaml deployed into moto's server, the event pump running each
function in-process) rolls a canary out; at 10% its per-rollout error-rate alarm goes to ALARM with
`pump.set_alarm_state`, which does what CloudWatch does: the state change goes to EventBridge and the
alarm's Lambda action invokes the rollback function. The clock starts just before that call and stops
when SageMaker (the emulator) receives the UpdateEndpointWeightsAndCapacities that takes the candidate
to weight 0. Each trial is a new version and a new rollout; between trials the controller removes the
rolled-back candidate.

What this includes: moto's CloudWatch/EventBridge/SQS round trips, the pump's queue polling, and a
cold container per invocation (the pump builds new boto3 clients for every invocation) - it is an
upper bound for the code path, not a prediction of AWS's own delivery latency (EventBridge and
Lambda's asynchronous invocation add their own, typically well under a second).

    .venv/bin/python bench/rollback_reaction.py [--trials 50]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
import time
from typing import Any

from _support import ROOT, median, percentile, table

MODEL = "churn-predictor"
ENDPOINT = "churn-prod"
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": 3600, "post_deploy_watch_seconds": 0}


class FlipClock:
    """Wraps the emulator's UpdateEndpointWeightsAndCapacities: when did a candidate go to weight 0?"""

    def __init__(self) -> None:
        from moto.sagemaker.models import SageMakerModelBackend

        self.flips: list[float] = []
        original = SageMakerModelBackend.update_endpoint_weights_and_capacities
        clock = self

        def timed(backend: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]) -> Any:
            if any(float(w.get("DesiredWeight", 1.0)) == 0.0 for w in desired_weights_and_capacities):
                clock.flips.append(time.perf_counter())
            return original(backend, endpoint_name, desired_weights_and_capacities)

        SageMakerModelBackend.update_endpoint_weights_and_capacities = timed  # type: ignore[method-assign]


class Scenario:
    def __init__(self, local: Any) -> None:
        self.local = local
        self.pump = local.pump
        self.outputs = local.outputs

    def command(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.local.client("events").put_events(
            Entries=[
                {
                    "EventBusName": self.outputs["EventBusName"],
                    "Source": "bench.ml-platform",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                }
            ]
        )
        self.pump.run_until_idle()

    def release(self, version: int) -> None:
        """Upload v<version>, approve it, promote it as a canary, and run the controller to 10%."""
        key = f"models/{MODEL}/run-{version:03d}/model.tar.gz"
        self.local.client("s3").put_object(
            Bucket=self.outputs["ArtifactBucketName"],
            Key=key,
            Body=gzip.compress(b"weights"),
            ChecksumAlgorithm="SHA256",
        )
        self.pump.run_until_idle()
        who = {"requested_by": "bench@example.com", "reason": "bench"}
        self.command(
            "Model Version Approval Requested", {"model_name": MODEL, "version": version, "decision": "approved", **who}
        )
        strategy = {"type": "all_at_once", "post_deploy_watch_seconds": 0} if version == 1 else CANARY
        self.command(
            "Model Promotion Requested",
            {"model_name": MODEL, "version": version, "endpoint_name": ENDPOINT, "strategy": strategy, **who},
        )
        for _ in range(10):
            if version == 1 and self.lock() is None:
                return
            if version > 1 and self.weights().get(f"{MODEL}-v{version}") == 0.1:
                return
            self.pump.advance(60)
        raise RuntimeError(f"v{version} did not reach its first step: {self.weights()}")

    def settle_after_rollback(self) -> None:
        for _ in range(10):
            if self.lock() is None:
                return
            self.pump.advance(60)
        raise RuntimeError("the rolled-back rollout never finished")

    def lock(self) -> str | None:
        item = (
            self.local.client("dynamodb")
            .get_item(
                TableName=self.outputs["RegistryTableName"],
                Key={"pk": {"S": f"ENDPOINT#{ENDPOINT}"}, "sk": {"S": "LOCK"}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return item["rollout_id"]["S"] if item else None

    def weights(self) -> dict[str, float]:
        described = self.local.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
        return {v["VariantName"]: float(v.get("CurrentWeight", 0.0)) for v in described["ProductionVariants"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("shepherd_cli").setLevel(logging.ERROR)

    if not (ROOT / "functions" / "rollback" / "app.py").exists():
        print("functions/rollback/app.py is not there yet: nothing to measure")
        return 0
    from shepherd_cli.local.stack import LocalShepherd

    reactions: list[float] = []
    invocations: list[int] = []
    started = time.perf_counter()
    with LocalShepherd.start(ROOT / "template.yaml") as local:
        flips = FlipClock()
        scenario = Scenario(local)
        scenario.release(1)
        for trial in range(args.trials):
            version = trial + 2
            scenario.release(version)
            alarm = f"shepherd-bench--{ENDPOINT}-{scenario.lock()}-error-rate"
            before = len(local.pump.history)
            flips.flips.clear()
            began = time.perf_counter()
            local.pump.set_alarm_state(alarm, "ALARM", "Threshold Crossed: bench")
            if not flips.flips:
                raise RuntimeError(f"trial {trial}: no flip; weights {scenario.weights()}")
            reactions.append(flips.flips[0] - began)
            invocations.append(
                sum(1 for i in list(local.pump.history)[before:] if "rollback" in i.function_name.lower())
            )
            scenario.settle_after_rollback()

    print(f"Rollback reaction in local mode: alarm state change -> traffic flip, {args.trials} trials\n")
    print(
        table(
            ["trials", "median ms", "p99 ms", "min ms", "max ms", "rollback invocations per alarm"],
            [
                [
                    args.trials,
                    f"{median(reactions) * 1000:.0f}",
                    f"{percentile(reactions, 0.99) * 1000:.0f}",
                    f"{min(reactions) * 1000:.0f}",
                    f"{max(reactions) * 1000:.0f}",
                    f"{median(invocations):g}",
                ]
            ],
        )
    )
    print(f"\n(total run {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
