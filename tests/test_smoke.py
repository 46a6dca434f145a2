"""Smoke test for one TensorFlow release: the op library built against it works end to end.

What `.ci/tf_range.sh` runs on every TensorFlow minor release it covers (the
full suite runs on the oldest and the newest): an eager round trip restored
in a fresh process, the hook in a `MonitoredTrainingSession` resumed after a
crash, the manager, and the wheel's version naming this TensorFlow.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hardening_pipelines import smoke_pipeline
from tests.support.hook_sessions import shuffled_dataset, train, train_until_crash
from tests.support.subprocesses import child_env, worker_command


def test_wheel_names_this_tensorflow():
    assert importlib.metadata.version("tfdata-checkpoint") == f"{tc.__version__}+tf{tf.__version__}"


@pytest.mark.parametrize("asynchronous", [False, True])
def test_eager_round_trip_restored_in_a_fresh_process(tmp_path, asynchronous):
    iterator = iter(smoke_pipeline())
    for _ in range(17):
        next(iterator)
    prefix = str(tmp_path / "input.ckpt-17")
    tc.save_iterator(iterator, prefix, num_shards=3, asynchronous=asynchronous)
    if asynchronous:
        assert tc.wait_for_pending_saves(str(tmp_path)) == [prefix]
    expected = [next(iterator)[0].numpy().tolist() for _ in range(30)]
    fresh = subprocess.run(worker_command("smoke_restore", prefix), capture_output=True,
                           text=True, timeout=600, check=False, env=child_env())
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert json.loads(fresh.stdout.strip().splitlines()[-1]) == expected


def test_hook_in_a_monitored_training_session_resumes_after_a_crash(tmp_path):
    directory = str(tmp_path)
    uninterrupted = train(14, make_dataset=shuffled_dataset)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=3)
    assert train_until_crash(10, hooks=[hook], model_dir=directory,
                             model_save_steps=3) == uninterrupted[:10]
    tc.wait_for_pending_saves(directory)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=3)
    # The model is back at step 9: so is the input pipeline.
    assert train(4, hooks=[hook], model_dir=directory,
                 model_save_steps=3) == uninterrupted[9:13]


def test_manager_saves_on_multiples_and_restores_the_models_step(tmp_path):
    iterator = iter(smoke_pipeline())
    manager = tc.IteratorCheckpointManager(iterator, tmp_path, save_steps=5)
    for step in range(1, 13):
        next(iterator)
        manager.maybe_save(step)
    manager.wait()
    assert manager.checkpoints == [f"{tmp_path}/input.ckpt-5", f"{tmp_path}/input.ckpt-10"]
    manager.close()
    uninterrupted = iter(smoke_pipeline())
    for _ in range(10):
        next(uninterrupted)
    fresh = iter(smoke_pipeline())
    resumed = tc.IteratorCheckpointManager(fresh, tmp_path, save_steps=5)
    assert resumed.restore_or_initialize(step=10) == f"{tmp_path}/input.ckpt-10"
    for _ in range(20):
        tf.debugging.assert_equal(next(fresh)[0], next(uninterrupted)[0])
