"""The demo's world: its model, endpoint and versions (manifests, how each answers traffic), and
`Demo`, local mode driven the way a user drives it (uploads, CLI commands, simulated traffic)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.exceptions import ClientError

from shepherd.rollouts import naming
from shepherd_cli import bus_commands
from shepherd_cli.announcements import describe_announcement
from shepherd_cli.local.monitor import BusMonitor, Line, invocation_summary
from shepherd_cli.local.pump import Outcome
from shepherd_cli.local.stack import DUMMY_CREDENTIALS, LocalShepherd
from shepherd_cli.local.traffic_behaviour import Behaviour, set_behaviour
from shepherd_cli.target import Target

if TYPE_CHECKING:  # the steps are checked against the world: a type only
    from shepherd_cli.local.demo_expectations import Step, StepResult

MODEL = "churn-predictor"
ENDPOINT = "churn-prod"
REQUESTER = "demo@shepherd.local"
TICK_SECONDS = 60  # the controller's schedule: one pass per simulated minute
CANARY_BAKE_SECONDS = 900  # 15 minutes: the judge leaves out about 6 (warm-up, the partial minute, CloudWatch's delay)
CANARY = {"type": "canary", "canary_percent": 10, "bake_seconds": CANARY_BAKE_SECONDS, "post_deploy_watch_seconds": 120}
ROLLBACK_FUNCTION = "RollbackFunction"  # the template's logical id of the rollback function
# Handlers log JSON to stdout: only errors, and no metrics, while the demo prints its timeline.
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
ENDPOINT_ACTIONS = ("CreateEndpoint", "UpdateEndpoint", "DeleteEndpoint")
TRAFFIC_SEED = 12  # the simulated traffic's random draws: the same demo every run
# v2 starts cold: its first minute is twice as slow, its second 1.5 times; the judge's 3-minute
# warm-up leaves both out. (Healthy: median 40 ms, p99 80 ms.)
COLD_START = Behaviour.of(latency_ms=40, warmup_minutes=2, warmup_latency_x=2.0)
# v3's serving code breaks: 30% of requests fail, more in some minutes than others.
FAILING = Behaviour.of(latency_ms=40, error_percent=30, error_bursts=0.3)
# 40% slower than a healthy version, and still far under the 300 ms alarm.
SLOWER = Behaviour.of(latency_ms=56, p99_ms=112)
# v3's canary shows the alarms at work: its judge is off (on, it would see the errors first).
ALARMS_ONLY = {**CANARY, "analysis": {"judge": {"enabled": False}}}

MANIFESTS: dict[int, dict[str, Any]] = {
    1: {
        "description": "Gradient-boosted churn model, October retrain",
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "metrics": {"auc": 0.871, "logloss": 0.262},
        "training_data": {"uri": "s3://acme-datasets/churn/2026-10-01/", "version": "2026-10-01"},
        "source": {"repository": "https://git.example.com/ml/churn", "commit": "4b1d9e0"},
        "tags": {"team": "growth"},
    },
    2: {
        "description": "November retrain, two more features",
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "metrics": {"auc": 0.902, "logloss": 0.238},
        "training_data": {"uri": "s3://acme-datasets/churn/2026-11-01/", "version": "2026-11-01"},
        "source": {"repository": "https://git.example.com/ml/churn", "commit": "9f2c1e4"},
        "tags": {"team": "growth"},
        "parent_version": 1,
    },
    3: {
        "description": "December retrain: better offline, but its serving code breaks on new inputs",
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "metrics": {"auc": 0.915, "logloss": 0.229},
        "training_data": {"uri": "s3://acme-datasets/churn/2026-12-01/", "version": "2026-12-01"},
        "source": {"repository": "https://git.example.com/ml/churn", "commit": "c07a5b2"},
        "parent_version": 2,
        "tags": {"team": "growth"},
    },
    4: {
        "description": "January retrain: a deeper ensemble, as accurate and 40% slower to answer",
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "metrics": {"auc": 0.904, "logloss": 0.236},
        "training_data": {"uri": "s3://acme-datasets/churn/2027-01-01/", "version": "2027-01-01"},
        "source": {"repository": "https://git.example.com/ml/churn", "commit": "e5d81a3"},
        "parent_version": 2,
        "tags": {"team": "growth"},
    },
}


def artifact_folder(version: int) -> str:
    return f"models/{MODEL}/2026-{9 + version:02d}-01"


def variant(version: int) -> str:
    return naming.variant_name(MODEL, version)


def dimensions(version: int) -> list[dict[str, str]]:
    """The CloudWatch dimensions of a version's variant on the demo's endpoint."""
    return [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant(version)}]


# --- the scenario's world ------------------------------------------------------------------------


class Observer(Protocol):
    """Who watches the demo as it runs (the CLI prints; tests need nothing)."""

    def line(self, line: Line, demo: Demo) -> None: ...

    def step_started(self, number: int, step: Step, demo: Demo) -> None: ...

    def step_finished(self, number: int, result: StepResult, demo: Demo) -> None: ...


class Demo:
    """A running local Shepherd, what the scenario did, and what it saw."""

    def __init__(self, local: LocalShepherd, observer: Observer | None = None) -> None:
        self.local = local
        self.pump = local.pump
        self.started_at = self.pump.clock.now
        self.observer = observer
        self.timeline: list[Line] = []
        self.announcements: list[tuple[datetime, dict[str, Any]]] = []
        self.monitor = BusMonitor(local)
        session = boto3.session.Session(region_name=local.region, **DUMMY_CREDENTIALS)
        self.target = Target(
            "local",
            local.stack.name,
            local.region,
            dict(local.outputs),
            session,
            endpoint_url=local.endpoint_url,
            clock=lambda: self.pump.clock.now,
        )
        self._prefix = f"{local.stack.name}-"
        self._logical_ids = {function.name: logical_id for logical_id, function in local.stack.functions.items()}
        self.pump.on_event = self._on_event

    @property
    def now(self) -> datetime:
        return self.pump.clock.now

    def elapsed(self, moment: datetime | None = None) -> int:
        return int(((moment or self.now) - self.started_at).total_seconds())

    def record(self, kind: str, title: str, details: str, data: dict[str, Any] | None = None) -> None:
        line = Line(self.now, kind, title, details, data or {})
        self.timeline.append(line)
        if self.observer is not None:
            self.observer.line(line, self)

    def _on_event(self, function_name: str, event: dict[str, Any], outcome: Outcome) -> None:
        """The pump's hook, after every invocation attempt: failures, endpoint changes, announcements."""
        name = function_name.removeprefix(self._prefix)
        if outcome.status != "ok":
            self.record("failure", f"{name} failed", invocation_summary(event, outcome))
        elif self._logical_ids.get(function_name) == ROLLBACK_FUNCTION:
            self.record("invocation", f"{name} function", invocation_summary(event, outcome))
        elif isinstance(outcome.result, dict) and isinstance(outcome.result.get("results"), dict):
            for action in outcome.result["results"].values():
                if action in ENDPOINT_ACTIONS:
                    self.record("controller", f"SageMaker {action}", f"{ENDPOINT} (rollout controller)")
        self.drain()

    def drain(self) -> None:
        for event in self.monitor.drain():
            self.announcements.append((self.now, event))
            detail_type, detail = event["detail-type"], event["detail"]
            self.record("announcement", detail_type, describe_announcement(detail_type, detail), detail)

    def settle(self) -> None:
        self.pump.run_until_idle()
        self.drain()

    # --- what the steps do ---

    def upload(self, version: int) -> None:
        folder, s3 = artifact_folder(version), self.local.client("s3")
        bucket = self.target.bucket
        manifest = MANIFESTS[version]
        s3.put_object(Bucket=bucket, Key=f"{folder}/manifest.json", Body=json.dumps(manifest).encode())
        s3.put_object(
            Bucket=bucket,
            Key=f"{folder}/model.tar.gz",
            Body=gzip.compress(f"churn-predictor weights {version}\n".encode() * 4096, mtime=0),
            ChecksumAlgorithm="SHA256",
            Metadata={"trained-by": "demo-pipeline"},
        )
        self.record("action", "upload", f"{folder}/manifest.json, then {folder}/model.tar.gz")

    def approve(self, version: int) -> None:
        reason = f"offline AUC {MANIFESTS[version]['metrics']['auc']}, reviewed"
        self.record("action", "shepherd approve", f"{MODEL} v{version}: {reason}")
        bus_commands.request_approval(self.target, MODEL, version, "approved", reason, REQUESTER)

    def promote(self, version: int, strategy: dict[str, Any]) -> None:
        self.record("action", "shepherd promote", f"{MODEL} v{version} -> {ENDPOINT}, {json.dumps(strategy)}")
        bus_commands.request_promotion(
            self.target,
            model_name=MODEL,
            version=version,
            endpoint_name=ENDPOINT,
            strategy=strategy,
            alarms=(),
            instance_type="ml.m5.large",
            instance_count=1,
            by=REQUESTER,
            reason=f"promote v{version}",
        )

    def misbehave(self, version: int, behaviour: Behaviour) -> None:
        """What `shepherd local traffic` does: the version answers the simulated traffic this way."""
        set_behaviour(self.local.client("ssm"), MODEL, version, behaviour)
        self.record("action", "shepherd local traffic", f"{MODEL} v{version}: {behaviour.describe()}")

    # --- what the expectations read ---

    def status_of(self, version: int) -> str | None:
        found = self.target.registry().get_version(MODEL, version)
        return found.status.value if found else None

    def announced(self, detail_type: str, **detail: Any) -> tuple[datetime, dict[str, Any]] | None:
        for at, event in self.announcements:
            if event["detail-type"] == detail_type and all(event["detail"].get(k) == v for k, v in detail.items()):
                return at, event["detail"]
        return None

    def endpoint(self) -> tuple[str, dict[str, float]] | None:
        """(status, variant -> current weight) from DescribeEndpoint, or None when there is none."""
        try:
            described = self.local.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
        except ClientError:
            return None
        weights = {v["VariantName"]: float(v.get("CurrentWeight", 0.0)) for v in described["ProductionVariants"]}
        return described["EndpointStatus"], weights

    def has_function(self, logical_id: str) -> bool:
        return logical_id in self.local.stack.functions
