"""The AWS managed policies SAM may attach to a function's role, as data.

Copied from the AWS Managed Policy Reference Guide (docs.aws.amazon.com/aws-managed-policy/latest/
reference/<name>.html), default versions as of 2026-12: AWSLambdaBasicExecutionRole v1 and
AWSXrayWriteOnlyAccess v2 (the one SAM attaches for `Tracing: Active`). A role naming any other
managed policy fails the proof until its document is added here.
"""

from __future__ import annotations

from typing import Any

MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": ["*"],
        }
    ],
}
