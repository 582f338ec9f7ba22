"""Local mode's state across restarts: what `local up --state DIR` keeps when it stops.

moto keeps everything in memory. Two things make a restart come back as it was:

* **The same names.** moto draws CloudFormation's physical names (the bucket's random suffix) from
  its own random generator; local mode seeds it (`NAMES_SEED`) before deploying the template, so the
  same template deploys to the same bucket, table and topic names every time. It is re-seeded at
  random afterwards, so event ids and the like do not repeat across restarts.
* **The same data.** On a clean stop (Ctrl-C, SIGTERM) the backends that hold Shepherd's data are
  pickled into DIR: S3 (objects and their version ids), DynamoDB (registry, rollouts, audit),
  SageMaker (models, endpoint configs, endpoints) and CloudWatch (alarms and their states). On the
  next start, after the template is deployed again, each saved backend's contents replace the fresh
  one's. The rest (SQS, EventBridge rules, SNS subscriptions, Lambda) is rebuilt by deploying the
  template and wiring the pump, as on a first start.

* **The same time.** The simulated clock's time at the stop is written to ``clock.json``; the next
  start continues from it (the time local mode was stopped does not count), so a bake or a watch
  window has the time left it had, and the records stay in order. `--fresh` starts from the wall clock.

Not kept: messages queued but not yet handled at the stop (the pump drains before stopping), and
anything after a crash (state is written on the way out only). A template whose outputs changed
since the save starts empty rather than half-restored.

* **Only this user's.** DIR is created 0700 and its files 0600; a DIR or file that another user owns
  or that group or others may write is refused before anything is read from it (private_files.py):
  restoring runs what the files hold.
"""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from moto.backends import get_backend

from shepherd_cli.local.private_files import check_private, make_private_directory, write_private

NAMES_SEED = 4750
PERSISTED_SERVICES = ("s3", "dynamodb", "sagemaker", "cloudwatch")
OUTPUTS_FILE = "outputs.json"
CLOCK_FILE = "clock.json"


def _backends(service: str) -> dict[tuple[str, str], Any]:
    backends: Any = get_backend(service)  # type: ignore[call-overload]
    return {(account, region): backend for account, regions in backends.items() for region, backend in regions.items()}


def save(directory: Path, outputs: dict[str, str], simulated_now: datetime) -> None:
    """Write the persisted backends, the stack outputs they belong to and the simulated time
    (atomically, per file)."""
    make_private_directory(directory)
    for service in PERSISTED_SERVICES:
        _write(directory / f"{service}.pickle", pickle.dumps(_backends(service)))
    _write(directory / OUTPUTS_FILE, json.dumps(outputs, indent=2, sort_keys=True).encode())
    _write(directory / CLOCK_FILE, json.dumps({"simulated_now": simulated_now.isoformat()}).encode())


def _write(path: Path, data: bytes) -> None:
    write_private(path, data)


def _read(path: Path) -> bytes:
    """A saved file's bytes, refused (UnsafeLocalFile) when another user could have written it or its
    directory: what is restored runs the registry's and the rollouts' state."""
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
    """Put the saved backends' contents in place of the running ones (same objects, new contents)."""
    for service in PERSISTED_SERVICES:
        path = directory / f"{service}.pickle"
        if not path.exists():
            continue
        # Our own file, written by `save` above into a directory only we can write (`_read` refuses
        # anything else): unpickling it runs no foreign code.
        saved: dict[tuple[str, str], Any] = pickle.loads(_read(path))  # noqa: S301  # nosec B301
        backends: Any = get_backend(service)  # type: ignore[call-overload]
        for (account, region), backend in saved.items():
            backends[account][region].__dict__.update(backend.__dict__)


def forget(directory: Path) -> None:
    """`--fresh`: remove what an earlier run saved."""
    for service in PERSISTED_SERVICES:
        (directory / f"{service}.pickle").unlink(missing_ok=True)
    (directory / OUTPUTS_FILE).unlink(missing_ok=True)
    (directory / CLOCK_FILE).unlink(missing_ok=True)
