"""Starts a rollout (`Model Promotion Requested` on the Shepherd bus), or announces why it cannot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shepherd.cold_start import loading

if TYPE_CHECKING:  # a type only: not imported at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

with loading():  # no garbage collection while the module sets up, nor later over what it loaded (cold_start.py)
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.metrics import MetricUnit

    from shepherd import bootstrap
    from shepherd.inbound.promotion import parse_promotion
    from shepherd.inbound.refusal import answers_malformed_commands

    logger = Logger()
    tracer = Tracer()  # imports the X-Ray SDK (and patches botocore when tracing is active)
    metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@answers_malformed_commands
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = bootstrap.promotion_service().promote(parse_promotion(event))
    metrics.add_metric(name=f"Promotion{outcome.result.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info("promotion handled", extra={"rollout_id": outcome.rollout_id, "result": outcome.result})
    return {"result": outcome.result, "rollout_id": outcome.rollout_id, "reason": outcome.reason}
