"""Two processes writing the same checkpoint directory and basename: one gets a clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf
import tfdata_checkpoint as tc
from tfdata_checkpoint import writer_lock
from tfdata_checkpoint.retention import CheckpointRetention

# The first writer: saves steps 1, 2, ... and reports each commit; keeps
# saving (holding the lock) until it is killed.
FIRST = textwrap.dedent(
    """
    import sys, time
    import tensorflow as tf
    import tfdata_checkpoint as tc
    it = iter(tf.data.Dataset.range(10**6).shuffle(32, seed=1))
    manager = tc.IteratorCheckpointManager(it, sys.argv[1], async_save=False, max_to_keep=None)
    step = 0
    while True:
        next(it)
        step += 1
        manager.save(step)
        print(step, flush=True)
        time.sleep(0.05)
    """
)

# The second writer: a manager, then a hook, on the same directory and basename;
# then the lock of another basename in the same directory.
SECOND = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tfdata_checkpoint as tc
    directory = sys.argv[1]
    results = {}
    it = iter(tf.data.Dataset.range(10**6).shuffle(32, seed=2))
    next(it)
    manager = tc.IteratorCheckpointManager(it, directory, async_save=True)
    try:
        manager.save(1000)
        manager.wait()
        results["manager"] = "saved"
    except tf.errors.OpError as e:
        results["manager"] = [type(e).__name__, e.message]
    with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        x = tf.compat.v1.data.make_one_shot_iterator(tf.data.Dataset.range(10)).get_next()
        train_op = step.assign_add(1)
        hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=1)
        try:
            with tf.compat.v1.train.MonitoredTrainingSession(
                    hooks=[hook], save_summaries_steps=None, save_summaries_secs=None,
                    log_step_count_steps=None) as session:
                session.run([x, train_op])
            results["hook"] = "trained"
        except tf.errors.OpError as e:
            results["hook"] = [type(e).__name__, e.message]
    # A worker of its own basename in the same directory is not blocked.
    from tfdata_checkpoint import writer_lock
    writer_lock.WriterLock(directory, "input_worker_1.ckpt").acquire()
    results["other basename"] = "locked"
    print(json.dumps(results))
    """
)


def test_second_writer_process_gets_a_clear_error_and_nothing_mixes(tmp_path):
    directory = str(tmp_path / "ckpts")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen([sys.executable, "-c", FIRST, directory], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = first.stdout.readline()
        assert line.strip() == "1", first.stderr.read()[-3000:] if not line else line
        second = subprocess.run([sys.executable, "-c", SECOND, directory], check=False,
                                capture_output=True,
                                text=True, timeout=600, env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        results = json.loads(second.stdout.strip().splitlines()[-1])
        last_before_kill = int(first.stdout.readline())  # still saving, undisturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert results["other basename"] == "locked"
    for who in ("manager", "hook"):
        error, message = results[who]
        assert error == "FailedPreconditionError", results
        assert "Another process" in message and directory in message, message
        assert f"pid {first.pid}" in message, message
    # Nothing of the second writer is there, and every checkpoint is whole.
    names = os.listdir(directory)
    assert not [n for n in names if n.startswith("input.ckpt-1000.")], names
    retention = CheckpointRetention(directory, "input.ckpt", latest_filename="checkpoint_input",
                                    max_to_keep=None)
    steps = retention.committed_steps()
    assert steps[: last_before_kill] == list(range(1, last_before_kill + 1)), steps
    for prefix in retention.committed_checkpoints():
        tc.ops.describe_iterator_shards(prefix, verify=True)

    # The first writer died (SIGKILL): its lock went with it, a restart may write.
    it = iter(tf.data.Dataset.range(10**6).shuffle(32, seed=1))
    manager = tc.IteratorCheckpointManager(it, directory, async_save=False, max_to_keep=None)
    restored = manager.restore_or_initialize()
    assert restored == retention.prefix(max(steps))
    manager.save(max(steps) + 1)
    assert manager.latest_checkpoint == retention.prefix(max(steps) + 1)


def test_writers_in_one_process_share_the_lock(tmp_path):
    path = writer_lock.lock_path(str(tmp_path), "input.ckpt")
    a = writer_lock.WriterLock(str(tmp_path), "input.ckpt")
    b = writer_lock.WriterLock(str(tmp_path), "input.ckpt")
    a.acquire()
    b.acquire()
    a.release()
    assert path in writer_lock._held  # b still holds it
    b.release()
    assert path not in writer_lock._held
    assert writer_lock.lock_path("ram://x", "input.ckpt") is None
    assert writer_lock.lock_path("gs://bucket/x", "input.ckpt") is None
    assert writer_lock.lock_path(f"file://{tmp_path}", "input.ckpt") == path


@pytest.mark.parametrize("directory", ["ram://concurrent-writers"])
def test_no_lock_file_on_non_local_filesystems(directory):
    iterator = iter(tf.data.Dataset.range(10))
    manager = tc.IteratorCheckpointManager(iterator, directory, async_save=False)
    manager.save(1)
    assert "input.ckpt.lock" not in tf.io.gfile.listdir(directory)
    tf.io.gfile.rmtree(directory)
