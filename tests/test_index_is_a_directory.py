"""A checkpoint whose `.index` path is a directory is damage, not a crash.

`on_corrupt="fallback"` skips it (and restores the newest good one), "raise"
raises `DataLossError` naming it, and verifying it says the same.
"""

from __future__ import annotations

import logging
import os

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_sessions import shuffled_dataset, train


def _dataset():
    return tf.data.Dataset.range(10_000).shuffle(40, seed=4).prefetch(2)


def _take(iterator, n):
    return [int(next(iterator)) for _ in range(n)]


def _replace_index_with_directory(prefix):
    os.remove(prefix + ".index")
    os.mkdir(prefix + ".index")


def test_manager_fallback_skips_an_index_that_is_a_directory(tmp_path, caplog):
    directory = str(tmp_path)
    iterator = iter(_dataset())
    manager = tc.IteratorCheckpointManager(iterator, directory, async_save=False)
    _take(iterator, 10)
    manager.save(10)
    expected = _take(iterator, 30)
    manager.save(40)
    manager.close()
    _replace_index_with_directory(f"{directory}/input.ckpt-40")

    with pytest.raises(tf.errors.DataLossError, match="input.ckpt-40.index"):
        tc.IteratorCheckpointManager(iter(_dataset()), directory).restore_or_initialize()
    with pytest.raises(tf.errors.DataLossError, match="input.ckpt-40.index.*directory"):
        tc.ops.describe_iterator_shards(f"{directory}/input.ckpt-40", verify=True)

    fresh = iter(_dataset())
    fallback = tc.IteratorCheckpointManager(fresh, directory, on_corrupt="fallback",
                                            async_save=False, max_to_keep=2)
    with caplog.at_level(logging.WARNING):
        assert fallback.restore_or_initialize() == f"{directory}/input.ckpt-10"
    assert "Skipping damaged input pipeline checkpoint" in caplog.text
    assert _take(fresh, 30) == expected
    # Later saves and their retention carry on past it.
    for step in (50, 60, 70):
        fallback.save(step)
    assert fallback.checkpoints[-2:] == [f"{directory}/input.ckpt-{s}" for s in (60, 70)]
    fallback.close()


def test_hook_fallback_skips_an_index_that_is_a_directory(tmp_path):
    directory = str(tmp_path)
    uninterrupted = train(12, make_dataset=shuffled_dataset)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=4,
                                          max_to_keep=None, async_save=False)
    assert train(8, hooks=[hook]) == uninterrupted[:8]
    _replace_index_with_directory(f"{directory}/input.ckpt-8")
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=4,
                                          on_corrupt="fallback")
    # Back at step 4's checkpoint: the global step is 8, the pipeline at 4.
    assert train(4, hooks=[hook]) == uninterrupted[4:8]
