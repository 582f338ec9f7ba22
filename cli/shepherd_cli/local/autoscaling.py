"""Local mode's Application Auto Scaling: target tracking on each registered variant's InvocationsPerInstance.

moto stores scalable targets and policies but never scales (see `autoscaling_emulator`). Here, once a
simulated minute (after `traffic` has published the minute), each variant registered as a scalable target
with a target-tracking policy on ``SageMakerVariantInvocationsPerInstance`` is evaluated the way
Application Auto Scaling's two alarms for the policy would be:

* **Scale out** when the minute's ``InvocationsPerInstance`` (Sum over 60 s) has been above the target for
  ``HIGH_MINUTES`` (3) minutes in a row: the desired count becomes ``ceil(current * metric / target)``
  (`shepherd.capacity.target_tracking`), within [min, max], if that is more than the desired count now.
  During a scale-out cooldown the capacity already added counts (it is in the desired count), so a
  further scale-out happens only if the load asks for more than that.
* **Scale in** when the metric has been below 90% of the target for ``LOW_MINUTES`` (15) minutes in a
  row, never while a scale-in or scale-out cooldown runs, never with ``DisableScaleIn``. Several
  policies: any one may scale out, all must agree to scale in (the largest count wins).
* A minute without a datum (no invocations) breaks both runs: SageMaker publishes nothing then, and
  target tracking does not scale in on missing data.
* ``SuspendedState`` holds back scaling in or out; a desired count outside [min, max] (after
  ``RegisterScalableTarget`` changed the limits) is brought inside at once, as Application Auto Scaling does.

A scaling activity is SageMaker's ``UpdateEndpointWeightsAndCapacities`` with ``DesiredInstanceCount``,
made only on an ``InService`` endpoint (an update in progress blocks scaling, as in SageMaker; the next
minute tries again). It makes the endpoint ``Updating`` like any such call, so a rollout's UpdateEndpoint
at that moment meets "Cannot update in-progress endpoint", as it can in AWS. Like Application Auto
Scaling, the simulator then follows its activity with ``DescribeEndpoint`` each minute, which (in
`emulator`) lets the change settle: the current count follows the desired one a minute or two later.

Not simulated: step scaling, predictive and scheduled scaling, customized metrics, the CloudWatch alarms
target tracking creates (none are created), ``DescribeScalingActivities``, and instance warm-up.

Every evaluation is recorded in ``history`` (the dashboard's instances-per-variant chart reads it).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from moto.sagemaker.models import sagemaker_backends

from shepherd.adapters.autoscaling import ApplicationAutoScaling
from shepherd.capacity.scaling import INVOCATIONS_PER_INSTANCE, ScalableTarget, TargetTracking
from shepherd.capacity.target_tracking import clamp, tracked_capacity
from shepherd_cli.local import autoscaling_emulator

logger = logging.getLogger(__name__)

HIGH_MINUTES = 3  # datapoints above the target before a scale-out (target tracking's high alarm)
LOW_MINUTES = 15  # datapoints below LOW_FRACTION of the target before a scale-in (its low alarm)
LOW_FRACTION = 0.9
DEFAULT_COOLDOWN_SECONDS = 300  # Application Auto Scaling's default for SageMaker variants
HISTORY_SIZE = 10_000
NAMESPACE = "AWS/SageMaker"


@dataclass(frozen=True)
class CapacitySample:
    """One variant at one simulated minute: its counts, and what scaling did (``activity``: '' for nothing)."""

    at: datetime
    endpoint_name: str
    variant_name: str
    current: int | None
    desired: int | None
    invocations_per_instance: float | None = None
    activity: str = ""


@dataclass
class _Runs:
    """Consecutive minutes above / below a policy's thresholds, and when scaling last acted."""

    high: int = 0
    low: int = 0
    last_scale_out: datetime | None = None
    last_scale_in: datetime | None = None


@dataclass
class TargetTrackingScaler:
    sagemaker: Any
    cloudwatch: Any
    scaling: ApplicationAutoScaling
    account_id: str
    region: str
    history: deque[CapacitySample] = field(default_factory=lambda: deque(maxlen=HISTORY_SIZE))
    _runs: dict[tuple[str, str], _Runs] = field(default_factory=dict)
    _following: set[str] = field(default_factory=set)  # endpoints with an activity not yet settled
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def evaluate(self, moment: datetime) -> list[CapacitySample]:
        """Evaluate the minute that ended at ``moment`` for every registered variant; returns the samples."""
        with self._lock:
            samples = []
            backend = sagemaker_backends[self.account_id][self.region]
            for endpoint in list(backend.endpoints.values()):
                samples.extend(self._evaluate_endpoint(endpoint, moment))
            self.history.extend(samples)
            # Last, so that the minute was judged on the instance count that served it (the count the
            # metric was divided by), not on instances that arrived since.
            self._follow_activities()
            return samples

    def samples(self, endpoint_name: str) -> list[CapacitySample]:
        with self._lock:
            return [sample for sample in self.history if sample.endpoint_name == endpoint_name]

    # --- one endpoint ---------------------------------------------------------------------------------

    def _evaluate_endpoint(self, endpoint: Any, moment: datetime) -> list[CapacitySample]:
        name = endpoint.endpoint_name
        registered = autoscaling_emulator.registered_variants(self.account_id, self.region, name)
        variants = {variant["VariantName"]: variant for variant in list(endpoint.production_variants)}
        samples = []
        for variant_name, variant in variants.items():
            current, desired = variant.get("CurrentInstanceCount"), variant.get("DesiredInstanceCount")
            metric = self._invocations_per_instance(name, variant_name, moment) if variant_name in registered else None
            activity = ""
            if variant_name in registered and desired is not None and current is not None:
                target = self.scaling.scalable_target(name, variant_name)
                if target is not None:
                    new_desired, activity = self._decide(target, current, desired, metric, moment)
                    if new_desired != desired and not self._scale(endpoint, variant_name, new_desired):
                        activity = f"{activity} (waiting: endpoint {endpoint.endpoint_status})"
                    elif new_desired != desired:
                        self._started(name, variant_name, new_desired > desired, moment)
                        desired = new_desired
            samples.append(CapacitySample(moment, name, variant_name, current, desired, metric, activity))
        for key in [key for key in self._runs if key[0] == name and key[1] not in registered]:
            del self._runs[key]  # a deregistered variant starts again from nothing
        return samples

    def _started(self, endpoint_name: str, variant_name: str, out: bool, moment: datetime) -> None:
        """A scaling activity started: its cooldown runs from now."""
        runs = self._runs.setdefault((endpoint_name, variant_name), _Runs())
        if out:
            runs.last_scale_out = moment
        else:
            runs.last_scale_in = moment

    def _decide(
        self, target: ScalableTarget, current: int, desired: int, metric: float | None, moment: datetime
    ) -> tuple[int, str]:
        """The desired count scaling asks for, and why ('' for no change)."""
        if not target.min_capacity <= desired <= target.max_capacity:
            return clamp(desired, target.min_capacity, target.max_capacity), "brought within limits"
        trackings = [
            policy.target_tracking
            for policy in self.scaling.scaling_policies(target.endpoint_name, target.variant_name)
            if policy.target_tracking is not None
            and policy.target_tracking.predefined_metric == INVOCATIONS_PER_INSTANCE
        ]
        runs = self._runs.setdefault((target.endpoint_name, target.variant_name), _Runs())
        _count(runs, trackings, metric)
        if metric is None or not trackings:
            return desired, ""
        wanted = [
            tracked_capacity(current, metric, t.target_value, target.min_capacity, target.max_capacity)
            for t in trackings
        ]
        scale_out = max(
            (
                count
                for count, t in zip(wanted, trackings, strict=True)
                if runs.high >= HIGH_MINUTES and metric > t.target_value
            ),
            default=desired,
        )
        if scale_out > desired and not target.suspended.dynamic_scaling_out:
            return scale_out, f"scale out: {metric:.0f} invocations per instance"
        if (
            runs.low >= LOW_MINUTES
            and not target.suspended.dynamic_scaling_in
            and all(_may_scale_in(t, metric, runs, moment) for t in trackings)
            and max(wanted) < desired
        ):
            return max(wanted), f"scale in: {metric:.0f} invocations per instance"
        return desired, ""

    def _invocations_per_instance(self, endpoint_name: str, variant_name: str, moment: datetime) -> float | None:
        response = self.cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName="InvocationsPerInstance",
            Dimensions=[
                {"Name": "EndpointName", "Value": endpoint_name},
                {"Name": "VariantName", "Value": variant_name},
            ],
            StartTime=moment - timedelta(minutes=1),
            EndTime=moment,
            Period=60,
            Statistics=["Sum"],
        )
        points = response.get("Datapoints", [])
        return float(sum(point["Sum"] for point in points)) if points else None

    def _scale(self, endpoint: Any, variant_name: str, desired: int) -> bool:
        """Start the scaling activity; False if the endpoint cannot take it now (tried again next minute)."""
        if endpoint.endpoint_status != "InService":
            return False
        try:
            self.sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=endpoint.endpoint_name,
                DesiredWeightsAndCapacities=[{"VariantName": variant_name, "DesiredInstanceCount": desired}],
            )
        except ClientError as error:
            logger.info("scaling %s/%s to %d refused: %s", endpoint.endpoint_name, variant_name, desired, error)
            return False
        self._following.add(endpoint.endpoint_name)
        return True

    def _follow_activities(self) -> None:
        # Application Auto Scaling watches its activity with DescribeEndpoint; in `emulator` that is what
        # lets the change settle.
        for endpoint_name in sorted(self._following):
            try:
                status = self.sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"]
            except ClientError:
                status = "gone"
            if status != "Updating":
                self._following.discard(endpoint_name)


def _count(runs: _Runs, trackings: list[TargetTracking], metric: float | None) -> None:
    """Extend or break the runs of minutes above the target and below its low threshold."""
    if metric is None or not trackings:
        runs.high = runs.low = 0
        return
    runs.high = runs.high + 1 if any(metric > t.target_value for t in trackings) else 0
    runs.low = runs.low + 1 if all(metric < LOW_FRACTION * t.target_value for t in trackings) else 0


def _may_scale_in(tracking: TargetTracking, metric: float, runs: _Runs, moment: datetime) -> bool:
    if tracking.disable_scale_in or metric >= LOW_FRACTION * tracking.target_value:
        return False
    return _cooled(runs.last_scale_in, tracking.scale_in_cooldown, moment) and _cooled(
        runs.last_scale_out, tracking.scale_out_cooldown, moment
    )


def _cooled(last: datetime | None, cooldown: int | None, moment: datetime) -> bool:
    seconds = DEFAULT_COOLDOWN_SECONDS if cooldown is None else cooldown
    return last is None or moment - last >= timedelta(seconds=seconds)
