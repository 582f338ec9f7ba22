"""The model-based test of the rollout engine (tests/model/harness.py), bounded for the test command.

At least 200 sequences of up to 50 steps, each ending with time running out; deterministic (the same
sequences on every run). `bench/rollout_model.py` runs the long exploration (5,000 sequences).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model import invariants
from tests.model.harness import STATS, RolloutModel

SEQUENCES = 200
# Invariants the engine is known to break today, left out of the test command until their fixes land
# (none now: C1 and C2, the restores after the retire and the clean-up's, hold since issue 23's fixes,
# tests/model/test_minimal_sequences.py). SHEPHERD_MODEL_STRICT=1 checks them all whatever this says
# (bench/rollout_model.py always does).
KNOWN_BROKEN: frozenset[str] = frozenset()


def test_every_sequence_keeps_the_invariants(record_property, monkeypatch) -> None:
    if os.environ.get("SHEPHERD_MODEL_STRICT") != "1":
        monkeypatch.setattr(invariants, "SKIPPED", invariants.SKIPPED | KNOWN_BROKEN)
    before_sequences, before_steps = STATS.sequences, STATS.steps

    run_state_machine_as_test(
        RolloutModel,
        settings=settings(
            max_examples=SEQUENCES,
            stateful_step_count=50,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        ),
    )

    sequences, steps = STATS.sequences - before_sequences, STATS.steps - before_steps
    record_property("sequences", sequences)
    record_property("steps", steps)
    print(f"model-based test: {sequences} sequences, {steps} steps, invariants checked after each")
    assert sequences >= SEQUENCES
