"""The hook on a non-local TensorFlow filesystem (`ram://`): every read and write
goes through TensorFlow's filesystems, as with gs:// or s3://.

(The manager and the ops on ram:// are in test_manager.py / test_round_trip.py,
migration on ram:// in test_migration.py.)
"""

from __future__ import annotations

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_sessions import train, train_until_crash


def index_steps(directory, basename):
    return sorted(
        int(name[len(basename) + 1 : -len(".index")])
        for name in tf.io.gfile.listdir(directory)
        if name.startswith(basename + "-") and name.endswith(".index")
    )


def test_hook_resumes_on_ram_filesystem(ram_dir):
    expected = train(9)
    seen = []
    for _ in range(3):
        hook = tc.CheckpointInputPipelineHook(checkpoint_dir=ram_dir, save_steps=2, max_to_keep=2)
        seen += train(3, hooks=[hook])
    assert seen == expected
    # Initial 0, 2 and the final 3 of each run (the global step restarts at 0).
    assert index_steps(ram_dir, "input.ckpt") == [2, 3]
    assert tf.train.latest_checkpoint(ram_dir, latest_filename="checkpoint_input") == (
        f"{ram_dir}/input.ckpt-3"
    )


def test_worker_with_model_checkpoints_on_ram_filesystem(ram_dir):
    """A task-specific prefix and a model directory on ram://: resumes at the model's step."""
    expected = train(12)

    def hook():
        return tc.CheckpointInputPipelineHook(
            checkpoint_dir=ram_dir, save_steps=3, task_type="chief", task_id=0
        )

    train_until_crash(8, hooks=[hook()], model_dir=ram_dir, model_save_steps=3)
    assert tf.train.latest_checkpoint(ram_dir).endswith("model.ckpt-6")
    assert train(4, hooks=[hook()], model_dir=ram_dir, model_save_steps=3) == expected[6:10]
    assert 6 in index_steps(ram_dir, "input_chief_0.ckpt")
    assert tf.io.gfile.exists(f"{ram_dir}/checkpoint_input_chief_0")
