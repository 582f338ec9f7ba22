"""The model-based test of the rollout engine (tests/model/harness.py), bounded for the test command.

At least 200 sequences of up to 30 steps each; `bench/rollout_model.py` runs the long exploration.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.model.harness import STATS, RolloutModel

SEQUENCES = 200


class BoundedRolloutModel(RolloutModel):
    pass


BoundedRolloutModel.TestCase.settings = settings(
    max_examples=SEQUENCES,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
TestRolloutModel = BoundedRolloutModel.TestCase


def test_explored_at_least_the_bounded_number_of_sequences() -> None:
    """Runs after TestRolloutModel in this module: the exploration was as large as promised."""
    if STATS.sequences:
        print(f"model-based test: {STATS.sequences} sequences, {STATS.steps} steps")
        assert STATS.sequences >= SEQUENCES
