"""Errors that say what happened and what to do about it.

- a pipeline with a `py_function` cannot be saved with the default
  `external_state_policy="fail"`: the error says what the policy is about and
  what choosing 'warn' / 'ignore' gives up, where TensorFlow says only
  "EagerPyFunc is stateful";
- restoring a checkpoint written under another TensorFlow release into a
  pipeline whose state does not fit names both releases.
"""

from __future__ import annotations

import pathlib

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support import index_codec
from tests.support.hook_sessions import train


def _with_py_function():
    return tf.data.Dataset.range(100).map(
        lambda x: tf.py_function(lambda v: v * 2, [x], tf.int64)
    )


def test_py_function_pipeline_error_explains_external_state_policy(tmp_path):
    iterator = iter(_with_py_function())
    next(iterator)
    with pytest.raises(tf.errors.FailedPreconditionError) as failed:
        tc.save_iterator(iterator, str(tmp_path / "ckpt"))
    message = failed.value.message
    assert "EagerPyFunc is stateful" in message  # TF's own words stay
    assert "external_state_policy='warn'" in message and "'ignore'" in message, message
    assert "py_function" in message and "not what such a function keeps" in message, message
    # With 'ignore' it saves, and what is saved restores.
    tc.save_iterator(iterator, str(tmp_path / "ckpt"), external_state_policy="ignore")
    expected = [int(next(iterator)) for _ in range(5)]
    fresh = iter(_with_py_function())
    tc.restore_iterator(fresh, str(tmp_path / "ckpt"))
    assert [int(next(fresh)) for _ in range(5)] == expected


def test_hook_with_py_function_pipeline_says_the_same(tmp_path):
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=5)
    with pytest.raises(tf.errors.FailedPreconditionError, match="external_state_policy='warn'"):
        train(3, hooks=[hook], make_dataset=lambda _: _with_py_function())


def _as_written_by(prefix: str, tf_version: bytes) -> None:
    path = pathlib.Path(prefix + ".index")
    index = index_codec.decode(path.read_bytes())
    index.tf_version = tf_version
    path.write_bytes(index_codec.encode(index))


def test_restore_into_a_changed_state_layout_names_both_tensorflow_versions(tmp_path):
    # Same element spec (scalar int64), another state layout: as if TF had
    # renamed what a dataset keeps between releases.
    saved_as = tf.data.Dataset.range(100).shuffle(10, seed=1)
    restored_into = tf.data.Dataset.range(100).map(lambda x: x + 1)
    prefix = str(tmp_path / "ckpt")
    iterator = iter(saved_as)
    next(iterator)
    tc.save_iterator(iterator, prefix)

    with pytest.raises(tf.errors.OpError) as same_version:
        tc.restore_iterator(iter(restored_into), prefix)
    assert "different input pipeline" in same_version.value.message
    assert "TensorFlow" not in same_version.value.message

    _as_written_by(prefix, b"2.99.0")
    with pytest.raises(type(same_version.value)) as other_version:
        tc.restore_iterator(iter(restored_into), prefix)
    message = other_version.value.message
    assert "written under TensorFlow 2.99.0" in message, message
    assert f"restored under TensorFlow {tf.__version__}" in message, message
    # The checkpoint itself is good: verify passes, and it restores where it fits.
    tc.ops.describe_iterator_shards(prefix, verify=True)
    fresh = iter(saved_as)
    tc.restore_iterator(fresh, prefix)


def test_hook_with_several_iterators_names_both_tensorflow_versions(tmp_path):
    directory = str(tmp_path)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=100,
                                          async_save=False)
    train(3, hooks=[hook], num_iterators=2,
          make_dataset=lambda i: tf.data.Dataset.range(100).shuffle(10, seed=i))
    for part in pathlib.Path(directory).rglob("input.ckpt-*.index"):
        _as_written_by(str(part)[: -len(".index")], b"2.99.0")
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=100)
    with pytest.raises(tf.errors.OpError) as failed:
        train(1, hooks=[hook], num_iterators=2,
              make_dataset=lambda i: tf.data.Dataset.range(100).map(lambda x: x + i))
    message = failed.value.message
    assert "written under TensorFlow 2.99.0" in message, message
    assert f"restored under TensorFlow {tf.__version__}" in message, message
