"""Two processes writing the same checkpoint directory and basename: one gets a clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.subprocesses import child_env, worker_command
from tfdata_checkpoint._src.retention import CheckpointRetention
from tfdata_checkpoint._src.storage import writer_lock


def test_second_writer_process_gets_a_clear_error_and_nothing_mixes(tmp_path):
    directory = str(tmp_path / "ckpts")
    env = child_env(TF_CPP_MIN_LOG_LEVEL="2")
    # The first writer saves step after step, holding the lock, until it is killed.
    first = subprocess.Popen(worker_command("first_writer", directory), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = first.stdout.readline()
        assert line.strip() == "1", first.stderr.read()[-3000:] if not line else line
        # The second writer: a manager, then a hook, on the same directory and
        # basename; then the lock of another basename in the same directory.
        second = subprocess.run(worker_command("second_writer", directory), check=False,
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


def test_writers_in_one_process_take_turns(tmp_path):
    path = writer_lock.lock_path(str(tmp_path), "input.ckpt")
    a = writer_lock.WriterLock(str(tmp_path), "input.ckpt")
    b = writer_lock.WriterLock(str(tmp_path), "input.ckpt")
    a.acquire()
    with pytest.raises(tf.errors.FailedPreconditionError, match="in this process"):
        b.acquire()  # a is alive and holds it (tests/test_writer_exclusive.py: when it frees it)
    a.release()
    assert path not in writer_lock._held
    b.acquire()
    assert b.held and not a.held
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
