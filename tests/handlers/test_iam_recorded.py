"""The IAM proof sees every call a handler makes (tests/iam/recorder.py), the calls of the threads it
starts included: the controller serves several endpoints' passes on worker threads, and a call the
recorder missed would be a call no role is judged for."""

from __future__ import annotations

from tests.handlers.lifecycle import START, promote, promotion, registered_version, tick
from tests.iam.recorder import RECORDER


def sagemaker_resources(function: str, action: str) -> set[str]:
    return {
        request.resource.rsplit("/", 1)[1]
        for call in RECORDER.calls
        if call.function == function
        for request in call.requests
        if request.action == action
    }


def test_the_calls_of_a_controller_pass_on_a_worker_thread_are_recorded(world, sagemaker, lambda_context):
    # Given a first deployment started on each of two endpoints (a version deploys to one at a time)
    for number, endpoint in ((1, "churn-prod"), (2, "churn-eu")):
        version = registered_version(world, lambda_context, number)
        started = promote.lambda_handler(
            promotion(version, {"type": "all_at_once"}, endpoint_name=endpoint), lambda_context
        )
        assert started["result"] == "started"

    # When one tick serves both, one endpoint's passes on each of two worker threads
    tick(lambda_context, START)

    # Then both endpoints' SageMaker calls are recorded for the controller's role
    assert sagemaker_resources("rollout_controller", "sagemaker:CreateEndpoint") == {"churn-prod", "churn-eu"}
