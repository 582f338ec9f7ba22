"""Burst: 1,000 registrations of one model through the register_version handler, 16 threads at once.

Against the emulator server local mode uses: template.yaml deployed into moto's ThreadedMotoServer
(`LocalShepherd`, which installs `atomic_dynamodb`, so each DynamoDB request is atomic as in AWS), with
moto's whole-table copy per transaction replaced by a copy of the touched items (see `_support`). The
1,000 artifacts are uploaded first (not timed); then 16 threads hand their `Object Created` events to
the handler, with the function's environment from the stack. The threads share one container's clients
and counter cache (`shepherd.bootstrap`), as concurrent invocations of one warm container would if
Lambda ran them in one process; every registration still races the others through DynamoDB.

An invocation that raises is retried twice, as Lambda retries an asynchronous invocation (under this
contention a registration can lose the counter race MAX_REGISTRATION_ATTEMPTS times and raise
TransientError); the table prints how many needed a retry. Checked afterwards: versions 1..1000 with no
gap and no duplicate, every upload registered exactly once (its claim names its version), and 1,000
`Model Version Registered` announcements on the bus.

    .venv/bin/python bench/burst.py [--uploads 1000] [--threads 16]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import logging
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _support import (
    ROOT,
    CallLog,
    count_calls_on_default_session,
    environment,
    median,
    percentile,
    snapshot_only_touched_items_in_moto_transactions,
    table,
)

MODEL = "churn-predictor"
LAMBDA_ATTEMPTS = 3  # an asynchronous invocation and Lambda's two retries


def upload_events(local: Any, bucket: str, count: int) -> list[dict[str, Any]]:
    s3 = local.client("s3")

    def upload(number: int) -> dict[str, Any]:
        key = f"models/{MODEL}/run-{number:04d}/model.tar.gz"
        put = s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(b"weights"), ChecksumAlgorithm="SHA256")
        version = {"version-id": put["VersionId"]} if "VersionId" in put else {}  # absent: unversioned bucket
        return {
            "version": "0",
            "id": f"burst-{number:04d}",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2026-11-20T09:14:03Z",
            "region": "eu-west-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {"key": key, "size": 7, "etag": "e", "sequencer": "00", **version},
                "request-id": f"R{number}",
                "requester": "123456789012",
                "source-ip-address": "203.0.113.15",
                "reason": "PutObject",
            },
        }

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(upload, range(1, count + 1)))


def announcement_queue(local: Any, bus: str) -> str:
    sqs, events = local.client("sqs"), local.client("events")
    url = sqs.create_queue(QueueName="burst-announcements")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = json.dumps({"source": ["shepherd"], "detail-type": ["Model Version Registered"]})
    events.put_rule(Name="burst-registered", EventBusName=bus, EventPattern=pattern)
    events.put_targets(Rule="burst-registered", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


def drain(local: Any, url: str) -> list[dict[str, Any]]:
    sqs, found = local.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        found.extend(json.loads(m["Body"])["detail"] for m in messages)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )


def stored_versions(local: Any, table_name: str) -> list[dict[str, Any]]:
    dynamodb, items, start = local.client("dynamodb"), [], None
    while True:
        page = dynamodb.query(
            TableName=table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": {"S": f"MODEL#{MODEL}"}, ":v": {"S": "VERSION#"}},
            ConsistentRead=True,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from shepherd import bootstrap
    from shepherd_cli.local.lambda_runtime import LambdaContext, load_handler
    from shepherd_cli.local.stack import LocalShepherd

    snapshot_only_touched_items_in_moto_transactions()
    started = time.perf_counter()
    with LocalShepherd.start(ROOT / "template.yaml") as local:
        outputs = local.outputs
        function = local.stack.functions["RegisterVersionFunction"]
        bucket, table_name, bus = outputs["ArtifactBucketName"], outputs["RegistryTableName"], outputs["EventBusName"]
        queue = announcement_queue(local, bus)
        events = upload_events(local, bucket, args.uploads)
        set_up = time.perf_counter() - started

        env = local.pump.handler_environment(function) | {"POWERTOOLS_LOG_LEVEL": "WARNING"}
        log = CallLog()
        with environment(env), contextlib.redirect_stdout(io.StringIO()), bootstrap.wired(bootstrap.Container()):
            sys.path[:0] = [str(function.code_dir), *(str(d) for d in function.layer_dirs)]
            app = load_handler(function.code_dir / "app.py", "burst_register_app")
            count_calls_on_default_session(log)
            bootstrap.registration_service()  # the container's clients, before the clock starts
            context = LambdaContext(function.name, function.arn, function.memory_mb, function.timeout_seconds)

            latencies: list[float] = []
            outcomes: Counter[str] = Counter()
            errors: list[str] = []
            lock = threading.Lock()

            def register(event: dict[str, Any]) -> None:
                """One asynchronous invocation: Lambda retries a failed one twice, then dead-letters it."""
                began = time.perf_counter()
                result = "dead-lettered"
                for attempt in range(1, LAMBDA_ATTEMPTS + 1):
                    try:
                        result = app.lambda_handler(event, context)["results"][0]["result"]
                        break
                    except Exception as error:  # the Lambda runtime: any exception fails the attempt
                        with lock:
                            errors.append(f"attempt {attempt}: {type(error).__name__}: {error}")
                elapsed = time.perf_counter() - began
                with lock:
                    latencies.append(elapsed)
                    outcomes[result if attempt == 1 or result == "dead-lettered" else f"{result} after a retry"] += 1

            with log.record() as calls:
                wall = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.threads) as pool:
                    list(pool.map(register, events))
                wall = time.perf_counter() - wall

        checking = time.perf_counter()
        items = stored_versions(local, table_name)
        announced = drain(local, queue)
        checking = time.perf_counter() - checking

    numbers = sorted(int(item["version"]["N"]) for item in items)
    keys = Counter(item["artifact"]["M"]["key"]["S"] for item in items)
    expected_keys = {e["detail"]["object"]["key"] for e in events}
    announced_versions = Counter(a["version"] for a in announced)
    transactions = sum(1 for _s, name, _p in calls if name == "TransactWriteItems")
    checks = [
        ("versions are 1..N", numbers == list(range(1, args.uploads + 1))),
        ("no duplicate version", len(numbers) == len(set(numbers))),
        ("every upload registered once", set(keys) == expected_keys and set(keys.values()) == {1}),
        (
            "every event registered (retries included)",
            sum(n for outcome, n in outcomes.items() if outcome.startswith("registered")) == args.uploads,
        ),
        (
            "one announcement per version",
            sorted(announced_versions) == numbers and set(announced_versions.values()) == {1},
        ),
    ]

    print(f"Burst: {args.uploads} registrations of one model, {args.threads} threads, emulator server\n")
    print(
        table(
            [
                "registrations",
                "threads",
                "wall s",
                "registrations/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "TransactWriteItems/registration",
            ],
            [
                [
                    args.uploads,
                    args.threads,
                    f"{wall:.1f}",
                    f"{args.uploads / wall:.0f}",
                    f"{median(latencies) * 1000:.0f}",
                    f"{percentile(latencies, 0.99) * 1000:.0f}",
                    f"{max(latencies) * 1000:.0f}",
                    f"{transactions / args.uploads:.2f}",
                ]
            ],
        )
    )
    print()
    print(table(["check", "result"], [[name, "ok" if passed else "FAILED"] for name, passed in checks]))
    print(f"\noutcomes: {dict(outcomes)}; set-up (stack + uploads) {set_up:.0f} s; checks {checking:.0f} s")
    for error, count in Counter(errors).most_common(5):
        print(f"  failed attempt ({count}x): {error}")
    return 0 if all(passed for _name, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
