"""CheckpointInputPipelineHook with an Estimator: the scenarios of TF's own tests.

Estimator exists up to TF 2.15 only; on later versions these tests skip.
"""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc

if not hasattr(tf, "estimator") or not hasattr(tf.estimator, "Estimator"):
    pytest.skip("tf.estimator is not available in this TF version", allow_module_level=True)


def _model_fn(features, labels, mode, config):
    del labels, mode, config
    global_step = tf.compat.v1.train.get_or_create_global_step()
    update_global_step_op = global_step.assign_add(1)
    latest_feature = tf.compat.v1.Variable(0, name="latest_feature", dtype=tf.int64)
    store_latest_feature_op = latest_feature.assign(features)
    tf.compat.v1.add_to_collection("my_vars", global_step)
    tf.compat.v1.add_to_collection("my_vars", latest_feature)
    return tf.estimator.EstimatorSpec(
        mode="train",
        train_op=tf.group([update_global_step_op, store_latest_feature_op]),
        loss=tf.constant(2.0),
    )


def _read_vars(model_dir):
    """(global_step, latest_feature) of the latest model checkpoint."""
    path = tf.train.latest_checkpoint(model_dir)
    return (
        int(tf.train.load_variable(path, "global_step")),
        int(tf.train.load_variable(path, "latest_feature")),
    )


def _range_input_fn():
    return tf.data.Dataset.range(10)


def _estimator(tmp_path, **config):
    return tf.estimator.Estimator(
        model_fn=_model_fn,
        model_dir=str(tmp_path),
        config=tf.estimator.RunConfig(**config) if config else None,
    )


def test_return_dataset_from_input_fn(tmp_path):
    est = _estimator(tmp_path)
    est.train(_range_input_fn, steps=2, hooks=[tc.CheckpointInputPipelineHook(est)])
    assert _read_vars(est.model_dir) == (2, 1)
    est.train(_range_input_fn, steps=2, hooks=[tc.CheckpointInputPipelineHook(est)])
    assert _read_vars(est.model_dir) == (4, 3)
    assert tf.train.latest_checkpoint(est.model_dir, latest_filename="checkpoint_input") == (
        os.path.join(est.model_dir, "input.ckpt-4")
    )


def test_build_iterator_in_input_fn(tmp_path):
    def _input_fn():
        iterator = tf.compat.v1.data.make_one_shot_iterator(tf.data.Dataset.range(10))
        return iterator.get_next()

    est = _estimator(tmp_path)
    est.train(_input_fn, steps=2, hooks=[tc.CheckpointInputPipelineHook(est)])
    assert _read_vars(est.model_dir) == (2, 1)
    est.train(_input_fn, steps=2, hooks=[tc.CheckpointInputPipelineHook(est)])
    assert _read_vars(est.model_dir) == (4, 3)


def test_do_not_restore(tmp_path):
    est = _estimator(tmp_path)
    est.train(_range_input_fn, steps=2, hooks=[tc.CheckpointInputPipelineHook(est)])
    assert _read_vars(est.model_dir) == (2, 1)
    est.train(_range_input_fn, steps=2, hooks=[tc.CheckpointInputPipelineHook(est)])
    assert _read_vars(est.model_dir) == (4, 3)
    # Hook not provided: the input pipeline starts over.
    est.train(_range_input_fn, steps=2)
    assert _read_vars(est.model_dir) == (6, 1)


def test_raise_error_if_no_iterator(tmp_path):
    def _input_fn():
        return tf.constant(1, dtype=tf.int64)

    est = _estimator(tmp_path)
    with pytest.raises(ValueError, match="no iterator"):
        est.train(_input_fn, steps=2, hooks=[tc.CheckpointInputPipelineHook(est)])


def test_policy_and_retention_follow_the_run_config(tmp_path):
    est = _estimator(tmp_path, save_checkpoints_steps=2, keep_checkpoint_max=10)
    est.train(_range_input_fn, steps=7, hooks=[tc.CheckpointInputPipelineHook(est, max_to_keep=3)])
    steps = sorted(
        int(n[len("input.ckpt-") : -len(".index")])
        for n in os.listdir(tmp_path)
        if n.startswith("input.ckpt-") and n.endswith(".index")
    )
    # Initial 0, every 2 steps, final 7; the newest 3 are kept.
    assert steps == [4, 6, 7]
    # Resuming after an interruption matches the model checkpoint's step.
    est.train(_range_input_fn, steps=1, hooks=[tc.CheckpointInputPipelineHook(est)])
    assert _read_vars(est.model_dir) == (8, 7)


def test_checkpoint_dir_is_the_model_dir(tmp_path):
    est = _estimator(tmp_path)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        tc.CheckpointInputPipelineHook(est, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="external_state_policy"):
        tc.CheckpointInputPipelineHook(est, external_state_policy="sometimes")
    hook = tc.CheckpointInputPipelineHook(est, external_state_policy=None)
    assert hook.checkpoint_dir == est.model_dir
    assert hook.latest_filename == "checkpoint_input"
