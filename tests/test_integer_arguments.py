"""Every integer argument takes numpy integers too, and refuses bools and floats clearly."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tfdata_checkpoint._src.iterator_state import describe_checkpoint
from tfdata_checkpoint._src.layout import CheckpointLayout
from tfdata_checkpoint._src.policy.save_policy import SavePolicy


def _iterator():
    iterator = iter(tf.data.Dataset.range(100).shuffle(20, seed=1))
    next(iterator)
    return iterator


NUMPY_INTS = [np.int64(2), np.int32(2), np.uint8(2), np.intp(2)]


@pytest.mark.parametrize("value", NUMPY_INTS, ids=lambda v: type(v).__name__)
def test_numpy_integers_are_taken_everywhere(tmp_path, value):
    prefix = str(tmp_path / "ckpt")
    tc.save_iterator(_iterator(), prefix, num_shards=value)
    assert len(describe_checkpoint(prefix)["shards"]) == 2
    manager = tc.IteratorCheckpointManager(_iterator(), tmp_path / "m", num_shards=value,
                                           max_to_keep=value, save_steps=value)
    for step in range(1, 9):
        manager.maybe_save(np.int64(step))
    manager.wait()
    assert [p.rsplit("-", 1)[1] for p in manager.checkpoints] == ["6", "8"]
    assert len(describe_checkpoint(manager.latest_checkpoint)["shards"]) == 2
    manager.close()
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path / "h"), save_steps=value,
                                          max_to_keep=value, num_shards=value,
                                          task_type="worker", task_id=value)
    assert hook.checkpoint_basename == "input_worker_2.ckpt"
    assert SavePolicy(save_secs=np.float32(1.5)).save_secs == 1.5
    assert CheckpointLayout("d", "b", "s", num_parts=value).num_parts == 2


BAD = [True, np.bool_(True), 2.0, np.float64(2.0), "2"]


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize("name", ["num_shards", "max_to_keep", "save_steps"])
def test_bools_floats_and_strings_are_refused_naming_argument_and_type(tmp_path, name, value):
    with pytest.raises(ValueError, match=f"{name} must be .* got .*{type(value).__name__}"):
        tc.IteratorCheckpointManager(_iterator(), tmp_path, **{name: value})
    with pytest.raises(ValueError, match=f"{name} must be .* got .*{type(value).__name__}"):
        tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), **{
            "save_steps": 1, name: value})


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_save_iterator_num_shards_and_step_refuse_bools_and_floats(tmp_path, value):
    with pytest.raises(ValueError, match=f"num_shards must be .*{type(value).__name__}"):
        tc.save_iterator(_iterator(), str(tmp_path / "ckpt"), num_shards=value)
    manager = tc.IteratorCheckpointManager(_iterator(), tmp_path)
    with pytest.raises(ValueError, match=f"step must be .*{type(value).__name__}"):
        manager.save(value)
    with pytest.raises(ValueError, match=f"task_id must be .*{type(value).__name__}"):
        tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=1,
                                       task_type="worker", task_id=value)


def test_save_secs_takes_any_positive_real_but_not_bool(tmp_path):
    for value in (2, 2.5, np.float32(2.5), np.int64(2)):
        assert SavePolicy(save_secs=value).save_secs == value
    with pytest.raises(ValueError, match="save_secs must be .*bool"):
        SavePolicy(save_secs=True)
