"""Local mode's AWS: template.yaml deployed into an in-process moto server, as `sam deploy` would.

Nothing here lists Shepherd's resources: the template is translated with aws-sam-translator
in-process, its local ``CodeUri``/``ContentUri`` folders are replaced by ``s3://`` objects in a
staging bucket (as ``sam package`` does; the zips are placeholders because functions run in-process,
see ``pump.py``), and the result goes through moto's own CloudFormation. What local mode needs to
run the functions is then read back from the stack and the template: the Outputs, each function's
resolved environment, its code folder and handler, its dead-letter queue and its event sources
(EventBridge rules, EventBridge Scheduler schedules, SNS subscriptions). Changing the template
changes local behaviour; no code here names a Shepherd resource.

Gaps in moto 5.2.5's CloudFormation that are filled here (see ``../shared/EMULATOR-NOTES.md``):

* A bucket's ``NotificationConfiguration`` is ignored: ``EventBridgeConfiguration`` is applied with
  ``PutBucketNotificationConfiguration``. Its ``VersioningConfiguration`` is applied with
  ``PutBucketVersioning``.
* A table's ``TimeToLiveSpecification`` is ignored: applied with ``UpdateTimeToLive`` (moto never
  deletes expired items, as before).
* ``lambda:GetFunctionConfiguration`` has no ``DeadLetterConfig``, and ``AWS::SNS::Subscription`` and
  ``AWS::Scheduler::Schedule`` are not created: their values are read from the translated template,
  with every intrinsic function resolved by moto itself (each expression is added to the stack as an
  extra Output, read back and left out of ``Stack.outputs``).
* ``AWS::Lambda::EventInvokeConfig`` is not created: its ``MaximumRetryAttempts`` is read from the
  template (the pump retries that many times; Lambda's default is two).

What is not emulated is listed in ``Stack.notes`` (and logged), e.g. resource types moto skips (a
static ``AWS::CloudWatch::Alarm`` is one: moto does not create it, and a ``!GetAtt`` on it fails the
stack; alarms created at run time with ``PutMetricAlarm`` work).
Use ``LocalShepherd.start()``: one per process, since moto's state is global to the process.
The deployment is in ``deploy_template.py``, the reading back in ``read_back.py``; ``provision`` runs both.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer
from samtranslator.yaml_helper import yaml_parse

from shepherd_cli.local import atomic_dynamodb, atomic_requests, cloudwatch_emulator, emulator, event_clock
from shepherd_cli.local.deploy_template import (
    RESOLVED_OUTPUT_PREFIX,
    ClientFactory,
    Resolver,
    create_stack,
    fill_gaps,
    plan_read_back,
    stage_code,
    translate,
)
from shepherd_cli.local.pump import EventHook, Pump
from shepherd_cli.local.read_back import read_event_sources, read_functions, unsupported_sources
from shepherd_cli.local.simulated_time import SimulatedClock
from shepherd_cli.local.stack_description import Stack

logger = logging.getLogger(__name__)

DEFAULT_STACK_NAME = "shepherd-local"
DEFAULT_REGION = "eu-west-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
LOCAL_IMAGE = "shepherd-local-serving@sha256:" + "0" * 64


def provision(
    template_path: Path,
    client: ClientFactory,
    *,
    region: str = DEFAULT_REGION,
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: dict[str, str] | None = None,
) -> Stack:
    """Deploy a SAM template into the emulator `client` talks to, and describe what was built."""
    template_path = Path(template_path).resolve()
    parameters = dict(parameters or {})
    template = yaml_parse(template_path.read_text())
    if "DefaultInferenceImage" in template.get("Parameters", {}):
        # The emulator pulls no image; the template has no default (a digest is only its owner's), so
        # a digest-pinned placeholder in the account's own ECR lets manifests without an image deploy.
        account = client("sts").get_caller_identity()["Account"]
        parameters.setdefault("DefaultInferenceImage", f"{account}.dkr.ecr.{region}.amazonaws.com/{LOCAL_IMAGE}")
    staged = stage_code(template, template_path.parent, client("s3"))
    translated = translate(template, parameters, region)
    resolver = Resolver(translated)
    plan = plan_read_back(translated, resolver)

    # moto 5.2.5 makes a CommaDelimitedList a list only when its value is passed, not from its default
    # (a !Join of it then joins the default's characters): such defaults are passed as values.
    lists = {
        name: str(parameter["Default"])
        for name, parameter in template.get("Parameters", {}).items()
        if parameter.get("Type") == "CommaDelimitedList" and "Default" in parameter
    }
    all_outputs, resources, skipped = create_stack(client("cloudformation"), stack_name, translated, lists | parameters)
    resolver.read(all_outputs)
    account_id = client("sts").get_caller_identity()["Account"]

    notes = [*skipped, *fill_gaps(translated, plan, resolver, resources, client), *unsupported_sources(translated)]
    sources, source_notes = read_event_sources(translated, plan, resolver, resources, client, account_id)
    dead_letters = {logical_id: resolver.get(key) for logical_id, key in plan.dead_letters.items()}
    functions, function_notes = read_functions(translated, resources, staged, dead_letters, sources, client("lambda"))
    notes.extend([*source_notes, *function_notes])
    for note in notes:
        logger.info("local mode: %s", note)
    return Stack(
        name=stack_name,
        region=region,
        account_id=account_id,
        outputs={key: value for key, value in all_outputs.items() if not key.startswith(RESOLVED_OUTPUT_PREFIX)},
        resources=resources,
        functions=functions,
        notes=tuple(notes),
    )


# --- the one entry point -----------------------------------------------------------------------------


class LocalShepherd:
    """moto's server on a loopback port, template.yaml deployed into it, and the event pump.

    ``LocalShepherd.start(template_path)`` returns a running instance; use it as a context manager or
    call ``stop()``. The process environment is left alone: clients here get the endpoint explicitly,
    the pump applies each function's environment only while its handler runs, and ``environment()``
    gives the variables another process (the AWS CLI, boto3) needs to reach the emulator.
    """

    _running: LocalShepherd | None = None

    def __init__(self, server: ThreadedMotoServer, endpoint_url: str, region: str) -> None:
        self._server = server
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = boto3.session.Session(region_name=region, **DUMMY_CREDENTIALS)
        self._clients: dict[str, Any] = {}
        self.stack: Stack
        self.pump: Pump

    @classmethod
    def start(
        cls,
        template_path: str | Path,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        parameters: dict[str, str] | None = None,
        region: str = DEFAULT_REGION,
        port: int = 0,
        clock: SimulatedClock | None = None,
        on_event: EventHook | None = None,
        environment_overrides: dict[str, str] | None = None,
        names_seed: int | None = None,
    ) -> LocalShepherd:
        """Start the emulator, deploy the template and wire the pump. One instance per process.

        With `names_seed`, moto's random generator is seeded before the deployment, so the same
        template gets the same physical names (see persistence.py), and re-seeded at random after."""
        if cls._running is not None:
            raise RuntimeError("a LocalShepherd is already running in this process (moto's state is global)")
        emulator.install()
        cloudwatch_emulator.install()
        atomic_dynamodb.install()
        atomic_requests.install()  # the controller's concurrent passes: each emulated request atomic
        if logging.getLogger("werkzeug").level == logging.NOTSET:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        host, bound_port = server.get_host_and_port()
        local = cls(server, f"http://{host}:{bound_port}", region)
        try:
            local._reset_emulator()
            if names_seed is not None:
                local._seed(names_seed)
            local.stack = provision(
                Path(template_path), local.client, region=region, stack_name=stack_name, parameters=parameters
            )
            if names_seed is not None:
                local._seed(secrets.randbelow(2**31))
            local.pump = Pump(
                local.stack,
                local.client,
                endpoint_url=local.endpoint_url,
                clock=clock,
                on_event=on_event,
                environment_overrides=environment_overrides,
            )
        except BaseException:
            server.stop()
            raise
        event_clock.follow(lambda: local.pump.clock.now)  # events are stamped with the simulated time
        cls._running = local
        return local

    @property
    def outputs(self) -> dict[str, str]:
        return self.stack.outputs

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator (dummy credentials, this region), one per service."""
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    def environment(self) -> dict[str, str]:
        """What another process needs in its environment to use the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
        }

    def stop(self) -> None:
        """Stop the server and forget moto's state (stop `pump.serve` first if it runs in another thread)."""
        pump = getattr(self, "pump", None)
        if pump is not None:
            pump.close()
        event_clock.follow(None)
        try:
            self._reset_emulator()
        finally:
            self._server.stop()
            if LocalShepherd._running is self:
                LocalShepherd._running = None

    def _seed(self, seed: int) -> None:
        requests.post(f"{self.endpoint_url}/moto-api/seed", params={"a": str(seed)}, timeout=10).raise_for_status()

    def _reset_emulator(self) -> None:
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        emulator.reset()

    def __enter__(self) -> LocalShepherd:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
