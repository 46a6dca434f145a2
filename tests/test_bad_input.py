"""Restoring into a pipeline of another structure: a clear error, never a silent misrestore."""

from __future__ import annotations

import itertools

import pytest
import tensorflow as tf
import tfdata_checkpoint as tc
from pipelines import PIPELINES


def test_every_other_pipeline_structure_is_rejected(tmp_path):
    """All ordered pairs of the test pipelines (156): restoring one's checkpoint
    into another raises a tf.errors error (at the restore, or at the first
    element). on_corrupt="fallback" does not treat this as damage
    (test_corruption.py::test_a_pipeline_that_does_not_fit_is_not_damage)."""
    prefixes = {}
    for name, make in PIPELINES.items():
        iterator = iter(make())
        next(iterator)
        next(iterator)
        prefixes[name] = tc.save_iterator(iterator, str(tmp_path / name))
    outcomes: dict[str, int] = {}
    for saved_as, restored_into in itertools.permutations(PIPELINES, 2):
        iterator = iter(PIPELINES[restored_into]())
        with pytest.raises((tf.errors.NotFoundError, tf.errors.InvalidArgumentError)) as raised:
            tc.restore_iterator(iterator, prefixes[saved_as])
            next(iterator)
        kind = type(raised.value).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print(f"structural mismatches: {outcomes}")
    assert sum(outcomes.values()) == len(PIPELINES) * (len(PIPELINES) - 1)
