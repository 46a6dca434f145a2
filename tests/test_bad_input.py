"""Restoring into a pipeline of another structure: a clear error, never a silent misrestore."""

from __future__ import annotations

import itertools

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
    silent = []
    for saved_as, restored_into in itertools.permutations(PIPELINES, 2):
        iterator = iter(PIPELINES[restored_into]())
        try:
            tc.restore_iterator(iterator, prefixes[saved_as])
            next(iterator)
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
            kind = type(error).__name__
            outcomes[kind] = outcomes.get(kind, 0) + 1
        else:
            silent.append((saved_as, restored_into))
    print(f"structural mismatches: {outcomes}; not detected: {silent}")
    # Known gap, seen on TF 2.15 under heavy load only and through TF's own
    # DeserializeIterator as well: TF's prefetch Restore can accept the state
    # of a pipeline without prefetch and hand out a fresh stream. No other
    # pair may ever pass.
    assert all(into in PIPELINES_ENDING_IN_PREFETCH for _, into in silent), silent
    assert len(silent) <= 1, silent
    assert sum(outcomes.values()) + len(silent) == len(PIPELINES) * (len(PIPELINES) - 1)


PIPELINES_ENDING_IN_PREFETCH = {"prefetch", "strings"}
