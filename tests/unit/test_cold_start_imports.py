"""Each handler's cold start imports what its function needs, and nothing for the other functions.

A fresh interpreter per function imports its app.py the way Lambda does and wires its service (as the
first invocation does, boto3 clients stubbed), then reports the modules loaded. The time itself is
measured by bench/cold_start.py; this keeps the imports that made it slow from coming back.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench_support() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_support", ROOT / "bench" / "_support.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


SERVICE_OF: dict[str, str] = _bench_support().SERVICE_OF  # the same wiring the benchmark times
PROBE = """
import gc, json, sys
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
sys.path[:0] = [{function_dir!r}, {layer!r}]
import boto3, pydantic  # loaded first, as in Lambda: what a collection during the handler's import would scan
gc.collect()  # counts from zero, so that the few objects made before the handler's `with loading()` trigger nothing
collections.clear()
import app
during_import = list(collections)
from shepherd import bootstrap
with bootstrap.wired(bootstrap.Container(clients=lambda service: object())):
    bootstrap.{service}()
print(json.dumps({{"modules": sorted(sys.modules), "collections_during_import": during_import,
                  "collector_enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}))
"""
PARSER_OF = {
    "decide_approval": "approval",
    "register_version": "uploads",
    "rollback": "rollback",
    "rollout_controller": "tick",
    "start_rollout": "promotion",
}
ENVIRONMENT = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "POWERTOOLS_SERVICE_NAME": "shepherd",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "REGISTRY_TABLE_NAME": "registry",
    "EVENT_BUS_NAME": "bus",
    "ARTIFACT_BUCKET_NAME": "bucket",
    "REQUIRE_APPROVAL": "true",
    "DEFAULT_INFERENCE_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve@sha256:" + "5e" * 32,
    "ALLOWED_IMAGE_REGISTRIES": "",
    "REQUIRE_IMAGE_DIGEST": "true",
    "NETWORK_ISOLATION": "true",
    "STACK_ACCOUNT_ID": "123456789012",
    "STACK_REGION": "eu-west-1",
    "SAGEMAKER_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
    "SHEPHERD_NAMESPACE": "shepherd",
    "SHEPHERD_STACK_NAME": "shepherd-test",
    "ALLOWED_INSTANCE_TYPES": "ml.m5.large,ml.c5.xlarge",
    "MAX_INSTANCE_COUNT": "10",
    "CONTROLLER_CONCURRENCY": "16",
    "INSTANCE_PRICE_TABLE": "",
}


def cold_start_of(function: str) -> dict[str, Any]:
    code = PROBE.format(
        function_dir=str(ROOT / "functions" / function),
        layer=str(ROOT / "layers" / "shepherd"),
        service=SERVICE_OF[function],
    )
    env = {"PATH": "/usr/bin:/bin", **ENVIRONMENT}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd="/")
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def modules_loaded_by(function: str) -> set[str]:
    return set(cold_start_of(function)["modules"])


@pytest.mark.parametrize("function", sorted(SERVICE_OF))
def test_a_handler_imports_its_own_parser_and_not_powertools_parser(function):
    loaded = modules_loaded_by(function)

    parsers = {name.removeprefix("shepherd.inbound.") for name in loaded if name.startswith("shepherd.inbound.")}
    # Shared by every command parser: the envelope, and answering a malformed command.
    assert parsers - {"eventbridge", "refusal"} == {PARSER_OF[function]}
    # Powertools' parser package imports every model and envelope it has (about 45 ms).
    assert not any(name.startswith("aws_lambda_powertools.utilities.parser") for name in loaded)


@pytest.mark.parametrize("function", ["decide_approval", "register_version"])
def test_registry_functions_import_nothing_of_the_rollouts(function):
    loaded = modules_loaded_by(function)

    assert not any(name.startswith("shepherd.rollouts") for name in loaded)
    assert "shepherd.adapters.sagemaker" not in loaded and "shepherd.adapters.cloudwatch" not in loaded


def test_the_controller_knows_the_resume_command_by_its_contract_without_importing_it():
    from shepherd.contracts import ModelRolloutResumeRequested
    from shepherd.inbound.tick import RESUME_DETAIL_TYPE

    assert RESUME_DETAIL_TYPE == ModelRolloutResumeRequested.DETAIL_TYPE


@pytest.mark.parametrize("function", sorted(SERVICE_OF))
def test_no_garbage_collection_runs_while_a_handler_imports_and_the_collector_runs_after(function):
    cold_start = cold_start_of(function)

    assert cold_start["collections_during_import"] == []
    assert cold_start["collector_enabled"]
    assert cold_start["frozen"] > 10_000  # what the imports loaded: later collections skip it


def test_an_import_that_fails_leaves_the_collector_running():
    from shepherd.cold_start import loading

    assert gc.isenabled()
    with pytest.raises(ImportError), loading():
        raise ImportError("a module the handler needs is missing")

    assert gc.isenabled()


def test_the_rollback_function_neither_imports_nor_wires_the_controller_or_the_promotion_service():
    loaded = modules_loaded_by("rollback")

    # An alarm's path (abort, flip, record) needs neither; only a redeploy builds the promotion service.
    assert "shepherd.rollouts.tick" not in loaded
    assert "shepherd.rollouts.reconcile" not in loaded
    assert "shepherd.rollouts.promotion" not in loaded
    assert "shepherd.adapters.cloudwatch" not in loaded


@pytest.mark.parametrize(
    ("function", "not_its_own"),
    [("start_rollout", "shepherd.rollouts.tick"), ("rollout_controller", "shepherd.rollouts.promotion")],
)
def test_promotion_and_the_controller_each_load_only_their_own_service(function, not_its_own):
    assert not_its_own not in modules_loaded_by(function)


@pytest.mark.parametrize("function", ["rollback", "rollout_controller", "start_rollout"])
def test_the_canary_judge_is_imported_by_the_first_step_judged_not_at_cold_start(function):
    loaded = modules_loaded_by(function)

    assert "shepherd.analysis.judge" not in loaded
    assert "shepherd.analysis.sequential" not in loaded
