"""Local mode's simulated minute: traffic and its metrics, then CloudWatch alarm evaluation.

`attach(local)` makes a running `LocalShepherd` behave like an endpoint under load: at each whole
simulated minute the pump (`Pump.every`) first publishes the minute that just ended (`traffic`), then
evaluates the alarms whose period ended (`alarm_evaluator`), whose state changes produce CloudWatch's
three deliveries through `Pump.set_alarm_state`, then lets Application Auto Scaling's target tracking
act on the variants registered for it (`autoscaling`), and records every variant's current and desired
instance counts for the dashboard (`capacity_record`). `shepherd local up` and `shepherd local demo` attach
it; a test that sets alarm states by hand can leave it out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shepherd.adapters.autoscaling import ApplicationAutoScaling
from shepherd_cli.local import capacity_record, cloudwatch_emulator
from shepherd_cli.local.alarm_evaluator import AlarmEvaluator
from shepherd_cli.local.autoscaling import CapacitySample, TargetTrackingScaler
from shepherd_cli.local.load import Load
from shepherd_cli.local.traffic import TrafficSimulator, moto_endpoints

if TYPE_CHECKING:
    from shepherd_cli.local.stack import LocalShepherd

# Enough traffic for the canary judge to decide within a bake: a 10% canary gets 1,800 requests a
# minute. The judge leaves out each step's first 3 minutes (warm-up) and the last 2 (CloudWatch's
# delay), so a 10-minute bake judges 5 minutes, 9,000 requests: enough to be sure that a candidate
# without errors is below the 0.1% the judge calls negligible, and that its share of slow requests is
# not worse than the baseline's. At 50 a second it would judge 1,500 and mostly extend, then hold.
DEFAULT_RPS = 300.0
EVERY_MINUTE = "cron(* * * * ? *)"


@dataclass
class Simulation:
    traffic: TrafficSimulator
    alarms: AlarmEvaluator
    scaling: TargetTrackingScaler | None = None
    on_capacity: Callable[[list[CapacitySample]], None] | None = None  # `local up` prints scaling activities

    def minute(self, moment: datetime) -> None:
        """The pump's callback at each whole minute: the minute before ``moment``, the alarms, then scaling."""
        self.traffic.publish_minute(moment - timedelta(minutes=1))
        self.alarms.evaluate(moment)
        if self.scaling is not None:
            samples = self.scaling.evaluate(moment)
            capacity_record.publish_counts(self.scaling.cloudwatch, samples)
            if self.on_capacity is not None:
                self.on_capacity(samples)


def attach(local: LocalShepherd, *, rps: float | Load = DEFAULT_RPS, seed: int | None = None) -> Simulation:
    """Simulate ``rps`` requests a second (or a ramp, `load`) to every endpoint of ``local`` and evaluate
    its alarms."""
    cloudwatch_emulator.install()
    traffic = TrafficSimulator(
        local.client("cloudwatch"),
        local.client("ssm"),
        moto_endpoints(local.stack.account_id, local.region),
        rps=rps,
        rng=random.Random(seed),  # noqa: S311 - simulated traffic, not cryptography
    )
    scaling = TargetTrackingScaler(
        local.client("sagemaker"),
        local.client("cloudwatch"),
        ApplicationAutoScaling(local.client("application-autoscaling")),
        local.stack.account_id,
        local.region,
    )
    alarms = AlarmEvaluator(local.client("cloudwatch"), local.pump.set_alarm_state)
    simulation = Simulation(traffic, alarms, scaling)
    local.pump.every(EVERY_MINUTE, simulation.minute)
    return simulation
