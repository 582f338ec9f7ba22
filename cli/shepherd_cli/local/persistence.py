"""Local mode's state across restarts: what `local up --state DIR` keeps when it stops.

moto keeps everything in memory. Three things make a restart come back as it was:

* **The same names.** moto draws CloudFormation's physical names (the bucket's random suffix) from
  its own random generator; local mode seeds it (`NAMES_SEED`) before deploying the template, so the
  same template deploys to the same bucket, table and topic names every time. It is re-seeded at
  random afterwards, so event ids and the like do not repeat across restarts.
* **The same data.** On a clean stop (Ctrl-C, SIGTERM) what Shepherd's handlers and CLI read is written
  into DIR as JSON, one document per service (`saved/`): S3 (every object version with its version id,
  and delete markers), DynamoDB (registry, rollouts, audit), SageMaker (models, endpoint configs,
  endpoints with their variants' weights) and CloudWatch (alarms and their states, metric data). On
  the next start, after the template is deployed again, each document is validated whole and then
  written into the fresh backends through their own methods or data, so nothing is announced again:
  no `Object Created` for a restored object, no alarm state change for a restored state. The rest
  (SQS, EventBridge rules and targets, SNS topics and subscriptions, Lambda functions) is the
  template's, rebuilt by deploying it and wiring the pump, as on a first start.
* **The same time.** The simulated clock's time at the stop is written to ``clock.json``; the next
  start continues from it (the time local mode was stopped does not count), so a bake or a watch
  window has the time left it had, and the records stay in order. `--fresh` starts from the wall clock.

Not kept: messages queued but not yet handled at the stop (the pump drains before stopping), the
simulated traffic's per-version behaviour (`local traffic`, kept in SSM), and anything after a crash
(state is written on the way out only). A template whose outputs changed since the save starts empty
rather than half-restored. A document of another format version (or the pickles of shepherd before
it) is refused with what to do, never read.

* **Only this user's.** DIR is created 0700 and its files 0600; a DIR or file that another user owns
  or that group or others may write is refused before anything is read from it (private_files.py).
  What is read is data: a document that does not validate is refused whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shepherd_cli.local import emulator
from shepherd_cli.local.private_files import check_private, make_private_directory, write_private
from shepherd_cli.local.saved import cloudwatch, document, dynamodb, s3, sagemaker
from shepherd_cli.local.saved.document import START_EMPTY, UnreadableState

NAMES_SEED = 4750
OUTPUTS_FILE = "outputs.json"
CLOCK_FILE = "clock.json"
# What shepherd wrote before the JSON documents: refused, never read.
LEGACY_FILES = tuple(f"{service}.pickle" for service in ("s3", "dynamodb", "sagemaker", "cloudwatch"))


@dataclass(frozen=True)
class Service:
    file: str
    kind: type[document.Document]
    capture: Callable[[], document.Document]
    apply: Callable[[Any], None]


# In restore order: objects and items first, then what refers to them.
SERVICES = (
    Service("s3.json", s3.S3Document, s3.capture, s3.apply),
    Service("dynamodb.json", dynamodb.DynamoDBDocument, dynamodb.capture, dynamodb.apply),
    Service("sagemaker.json", sagemaker.SageMakerDocument, sagemaker.capture, sagemaker.apply),
    Service("cloudwatch.json", cloudwatch.CloudWatchDocument, cloudwatch.capture, cloudwatch.apply),
)


def save(directory: Path, outputs: dict[str, str], simulated_now: datetime) -> None:
    """Write each service's document, the stack outputs they belong to and the simulated time
    (atomically, per file)."""
    make_private_directory(directory)
    emulator.settle_pending()
    for service in SERVICES:
        write_private(directory / service.file, document.dump(service.capture()))
    for legacy in LEGACY_FILES:
        (directory / legacy).unlink(missing_ok=True)
    write_private(directory / OUTPUTS_FILE, json.dumps(outputs, indent=2, sort_keys=True).encode())
    write_private(directory / CLOCK_FILE, json.dumps({"simulated_now": simulated_now.isoformat()}).encode())


def _read(path: Path) -> bytes:
    """A saved file's bytes, refused (UnsafeLocalFile) when another user could have written it or its
    directory."""
    check_private(path.parent)
    check_private(path)
    return path.read_bytes()


def saved_outputs(directory: Path) -> dict[str, str] | None:
    try:
        return dict(json.loads(_read(directory / OUTPUTS_FILE)))
    except (FileNotFoundError, ValueError):
        return None


def saved_clock(directory: Path) -> datetime | None:
    """The simulated time when the state was saved, rounded up to the whole second (the clock starts on
    one, and must not start before a record written at the stop); None: nothing saved, or saved
    before clock.json existed."""
    try:
        moment = datetime.fromisoformat(json.loads(_read(directory / CLOCK_FILE))["simulated_now"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if moment.tzinfo is None:
        return None
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def restore(directory: Path) -> None:
    """Put the saved documents' contents into the running backends. Every document is read and
    validated before anything is written: a refused state (UnreadableState, UnsafeLocalFile) leaves
    the backends as deployed."""
    saved_as_json = any((directory / service.file).exists() for service in SERVICES)
    for legacy in LEGACY_FILES:
        if (directory / legacy).exists() and not saved_as_json:
            raise UnreadableState(
                f"refusing the state in {directory}: it was saved by an older shepherd (pickle files, "
                f"which this one never reads); {START_EMPTY}"
            )
    loaded = []
    for service in SERVICES:
        path = directory / service.file
        try:
            data = _read(path)
        except FileNotFoundError:
            continue
        loaded.append((service, document.load(service.kind, data, str(path))))
    for service, saved in loaded:
        service.apply(saved)


def forget(directory: Path) -> None:
    """`--fresh`: remove what an earlier run saved."""
    for name in (*(service.file for service in SERVICES), *LEGACY_FILES, OUTPUTS_FILE, CLOCK_FILE):
        (directory / name).unlink(missing_ok=True)
