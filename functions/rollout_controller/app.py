"""Moves every active rollout forward: every minute, and at once when a rollout starts; and resumes
a rollout the canary judge held, on an operator's ``Model Rollout Resume Requested``."""

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
    from shepherd.inbound.tick import is_resume, parse_tick

    logger = Logger()
    tracer = Tracer()  # imports the X-Ray SDK (and patches botocore when tracing is active)
    metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@answers_malformed_commands
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_resume(event):
        from shepherd.inbound.resume import parse_resume  # a rare command: not imported at cold start

        answer = bootstrap.holds().resume(parse_resume(event))
        logger.info("resume answered", extra={"answer": answer})
        return {"answer": answer}  # the next tick (within a minute) takes the step
    now, event_id = parse_tick(event)
    report = bootstrap.rollout_service().tick(now, event_id)
    metrics.add_metric(name="ActiveRollouts", unit=MetricUnit.Count, value=len(report.results))
    # A rollout whose pass failed is isolated and retried by the next tick: alarm on this, not on errors.
    metrics.add_metric(name="RolloutErrors", unit=MetricUnit.Count, value=report.errors)
    logger.info("controller tick", extra={"now": now.isoformat(), "results": report.results})
    return {"now": now.isoformat(), "results": report.results, "errors": report.errors}
