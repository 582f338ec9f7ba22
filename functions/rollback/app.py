"""Rolls an endpoint back: CloudWatch alarms (alarm action, EventBridge, SNS) and operator commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shepherd.cold_start import loading

if TYPE_CHECKING:  # a type only: not imported at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

with loading():  # no garbage collection while the module sets up, nor later over what it loaded (cold_start.py)
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.metrics import MetricUnit

    from shepherd import bootstrap
    from shepherd.inbound.refusal import answers_malformed_commands
    from shepherd.inbound.rollback import parse_rollback_trigger

    logger = Logger()
    tracer = Tracer()  # imports the X-Ray SDK (and patches botocore when tracing is active)
    metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@answers_malformed_commands
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = bootstrap.rollback_service()
    results = []
    for trigger in parse_rollback_trigger(event):
        for outcome in service.handle(trigger):
            if outcome.seconds_to_flip is not None:  # only a flip this invocation observed
                metrics.add_metric(name="RollbackLatency", unit=MetricUnit.Seconds, value=outcome.seconds_to_flip)
            metric = f"Rollback{outcome.result.title().replace('_', '')}"
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
            results.append(
                {
                    "result": outcome.result,
                    "reason": outcome.reason,
                    "rollout_id": outcome.rollout_id,
                    "seconds_to_flip": outcome.seconds_to_flip,
                }
            )
    logger.info("rollback handled", extra={"results": results})
    return {"results": results}
