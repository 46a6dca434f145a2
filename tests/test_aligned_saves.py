"""Input checkpoints land on the model's steps.

The manager saves on multiples of `save_steps` (as Orbax's fixed-interval
policy does): a custom training loop from step 1 saves at 1000, 2000, ...,
where a model saved every 1000 steps is, so `restore_or_initialize(step=2000)`
restores the input of step 2000 and nothing is read twice. The hook keeps
TF's `SecondOrStepTimer` rule, which is what the model's `CheckpointSaverHook`
in the same session follows: its input checkpoints are at the model's steps.
"""

from __future__ import annotations

import logging
import os

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_sessions import shuffled_dataset, train, train_until_crash
from tfdata_checkpoint._src.policy.save_policy import SavePolicy


def _due(policy, steps):
    due = []
    for step in steps:
        if policy.should_save(step):
            policy.record_save(step)
            due.append(step)
    return due


def test_aligned_policy_saves_on_multiples():
    assert _due(SavePolicy(save_steps=1000, aligned=True), range(1, 3001)) == [1000, 2000, 3000]
    # From step 0, step 0 is a multiple too: an initial checkpoint.
    assert _due(SavePolicy(save_steps=5, aligned=True), range(12)) == [0, 5, 10]
    # A multiple passed over (the loop asks every 3 steps) is saved at the next step asked.
    assert _due(SavePolicy(save_steps=5, aligned=True), range(3, 19, 3)) == [6, 12, 15]
    # After a restore at step 8 (recorded as a save), the next multiple.
    policy = SavePolicy(save_steps=4, aligned=True)
    policy.record_save(8)
    assert _due(policy, range(8, 17)) == [12, 16]
    # Not aligned: TF's SecondOrStepTimer (the first step asked, then every N).
    assert _due(SavePolicy(save_steps=1000), range(1, 3001)) == [1, 1001, 2001]


def _dataset():
    return tf.data.Dataset.range(100_000).shuffle(100, seed=9).prefetch(2)


def _take(iterator, n):
    return [int(next(iterator)) for _ in range(n)]


def test_manager_restores_the_models_step_exactly(tmp_path, caplog):
    directory = str(tmp_path)
    uninterrupted = _take(iter(_dataset()), 40)
    iterator = iter(_dataset())
    manager = tc.IteratorCheckpointManager(iterator, directory, save_steps=10, max_to_keep=None)
    saved = []
    for step in range(25):  # the README's loop: train a step, then maybe_save(step + 1)
        next(iterator)
        if manager.maybe_save(step + 1):
            saved.append(step + 1)
    manager.close()
    assert saved == [10, 20]
    # The model was saved every 10 steps too, last at 20.
    fresh = iter(_dataset())
    resumed = tc.IteratorCheckpointManager(fresh, directory, save_steps=10)
    with caplog.at_level(logging.WARNING):
        assert resumed.restore_or_initialize(step=20) == f"{directory}/input.ckpt-20"
    assert "newest one before it" not in caplog.text
    assert _take(fresh, 20) == uninterrupted[20:40]
    # Saving goes on from the restored step, on the multiples.
    assert [s for s in range(21, 41) if resumed.maybe_save(s)] == [30, 40]
    resumed.close()


def _model_steps(directory):
    state = tf.train.get_checkpoint_state(directory)
    return sorted(int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths)


def _input_steps(directory):
    return sorted(
        int(name[len("input.ckpt-") : -len(".index")])
        for name in os.listdir(directory)
        if name.startswith("input.ckpt-") and name.endswith(".index")
    )


@pytest.mark.parametrize("async_save", [True, False])
def test_hook_saves_at_the_models_steps_also_after_a_restart(tmp_path, caplog, async_save):
    directory = str(tmp_path)
    uninterrupted = train(16, make_dataset=shuffled_dataset)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=4,
                                          max_to_keep=None, async_save=async_save)
    assert train_until_crash(10, hooks=[hook], model_dir=directory,
                             model_save_steps=4) == uninterrupted[:10]
    tc.wait_for_pending_saves(directory)
    assert _input_steps(directory) == _model_steps(directory) == [0, 4, 8]
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=4,
                                          max_to_keep=None, async_save=async_save)
    with caplog.at_level(logging.WARNING):
        assert train(6, hooks=[hook], model_dir=directory,
                     model_save_steps=4) == uninterrupted[8:14]
    assert "No input pipeline checkpoint for the model's step" not in caplog.text
    # Both saved at 12 and, at the end, at 14.
    assert _input_steps(directory) == [0, 4, 8, 12, 14]
    assert set(_model_steps(directory)) <= set(_input_steps(directory))
    assert _model_steps(directory)[-2:] == [12, 14]
