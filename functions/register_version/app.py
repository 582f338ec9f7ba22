"""Registers a model version for each artifact upload (S3 `Object Created`, any delivery shape)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shepherd.cold_start import loading

if TYPE_CHECKING:  # a type only: not imported at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

with loading():  # no garbage collection while the module sets up, nor later over what it loaded (cold_start.py)
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.metrics import MetricUnit

    from shepherd import bootstrap
    from shepherd.inbound.uploads import parse_uploads

    logger = Logger()
    tracer = Tracer()  # imports the X-Ray SDK (and patches botocore when tracing is active)
    metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = bootstrap.registration_service()
    results = []
    for upload in parse_uploads(event):
        outcome = service.handle_upload(upload)
        metrics.add_metric(name=f"Uploads{outcome.result.capitalize()}", unit=MetricUnit.Count, value=1)
        artifact = outcome.version.artifact if outcome.version else upload.artifact  # the key S3 has
        version = outcome.version.version if outcome.version else None
        results.append({"key": artifact.key, "result": outcome.result, "version": version})
    logger.info("uploads handled", extra={"results": results})
    return {"results": results}
