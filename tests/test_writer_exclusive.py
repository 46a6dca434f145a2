"""One live writer per directory and basename, also inside one process, and across a re-made directory.

- Two `IteratorCheckpointManager`s of one process writing the same directory
  under the same name (a train and an eval iterator) would restore one
  iterator from the other's elements: the second one's first save is refused,
  naming the directory, the basename and `checkpoint_name=`.
- A writer that was closed (manager `close()`, hook `end()`), garbage-collected,
  or a hook whose session is over, frees the name: a job that rebuilds its
  hook or manager after a failure carries on.
- A checkpoint directory removed and made again (by the next save) still has
  exactly one writer: the holder takes the new lock file, or, when another
  process was quicker, fails clearly.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hardening_pipelines import eval_data, train_data
from tests.support.hook_sessions import Crash, shuffled_dataset
from tests.support.subprocesses import child_env, worker_command
from tfdata_checkpoint._src.retention import CheckpointRetention
from tfdata_checkpoint._src.storage import writer_lock


def _take(iterator, n):
    return [int(next(iterator)) for _ in range(n)]


def test_second_live_manager_of_the_same_name_is_refused(tmp_path):
    directory = str(tmp_path / "ckpts")
    train, evaluation = iter(train_data()), iter(eval_data())
    _take(train, 100)
    _take(evaluation, 30)
    train_manager = tc.IteratorCheckpointManager(train, directory)
    eval_manager = tc.IteratorCheckpointManager(evaluation, directory)
    train_manager.save(100)
    with pytest.raises(tf.errors.FailedPreconditionError) as refused:
        eval_manager.save(100)
    message = refused.value.message
    assert directory in message and "'input.ckpt'" in message, message
    assert "checkpoint_name=" in message and "this process" in message, message
    assert "\n" not in message
    train_manager.wait()
    # Nothing of the eval iterator went in: the train checkpoint is the train one.
    assert train_manager.checkpoints == [f"{directory}/input.ckpt-100"]

    # Under its own name it is a writer of its own, with its own state file.
    eval_manager = tc.IteratorCheckpointManager(evaluation, directory, checkpoint_name="eval.ckpt")
    eval_manager.save(100)
    eval_manager.wait()
    assert tf.train.latest_checkpoint(directory, latest_filename="checkpoint_eval") == (
        f"{directory}/eval.ckpt-100"
    )
    assert tf.train.latest_checkpoint(directory, latest_filename="checkpoint_input") == (
        f"{directory}/input.ckpt-100"
    )
    expected = [_take(train, 40), _take(evaluation, 40)]
    fresh = subprocess.run(worker_command("restore_train_and_eval", directory),
                           capture_output=True, text=True, timeout=600, check=False,
                           env=child_env())
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert json.loads(fresh.stdout.strip().splitlines()[-1]) == expected


def test_a_closed_or_collected_writer_frees_the_name(tmp_path):
    directory = str(tmp_path)
    first = tc.IteratorCheckpointManager(iter(train_data()), directory)
    first.save(1)
    first.close()
    second = tc.IteratorCheckpointManager(iter(train_data()), directory)
    second.save(2)  # `first` is still referenced, but closed
    del second
    third = tc.IteratorCheckpointManager(iter(train_data()), directory)
    third.save(3)
    third.wait()
    assert third.checkpoints == [f"{directory}/input.ckpt-{s}" for s in (1, 2, 3)]
    # A closed manager that saves again takes the name back if it is free...
    third.close()
    first.save(4)
    first.wait()
    # ... and is refused while another one holds it.
    with pytest.raises(tf.errors.FailedPreconditionError, match="checkpoint_name="):
        third.save(5)
    first.close()


def _garbage_cycle_holding(manager):
    """A reference cycle that keeps `manager` alive until the garbage collector runs."""
    cycle = {"manager": manager}
    cycle["self"] = cycle
    return cycle


def test_a_manager_left_in_a_reference_cycle_after_a_failure_frees_the_name(tmp_path):
    blocker = tmp_path / "ckpts"
    blocker.write_text("a file where the checkpoint directory should be")
    gc.disable()
    try:
        failed = tc.IteratorCheckpointManager(iter(train_data()), str(blocker))
        with pytest.raises(tf.errors.OpError):
            failed.save(1)
            failed.wait()
        _garbage_cycle_holding(failed)
        del failed
        blocker.unlink()
        # The job builds a new manager after the failure: it must carry on.
        rebuilt = tc.IteratorCheckpointManager(iter(train_data()), str(blocker))
        rebuilt.save(1)
        rebuilt.wait()
        assert rebuilt.latest_checkpoint == f"{blocker}/input.ckpt-1"
        rebuilt.close()
    finally:
        gc.enable()


def test_a_manager_whose_save_failed_is_replaced_while_still_referenced(tmp_path):
    blocker = tmp_path / "ckpts"
    blocker.write_text("a file where the checkpoint directory should be")
    failed = tc.IteratorCheckpointManager(iter(train_data()), str(blocker), async_save=False)
    with pytest.raises(tf.errors.OpError):
        failed.save(1)
    blocker.unlink()
    # The job builds a new manager after the failure and keeps the old one around.
    rebuilt = tc.IteratorCheckpointManager(iter(train_data()), str(blocker), async_save=False)
    rebuilt.save(1)
    assert rebuilt.latest_checkpoint == f"{blocker}/input.ckpt-1"
    # The failed one is no writer any more while the new one is.
    with pytest.raises(tf.errors.FailedPreconditionError, match="checkpoint_name="):
        failed.save(2)
    rebuilt.close()


def _train_with(hook, steps, *, crash=False):
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        element = tf.compat.v1.data.make_one_shot_iterator(shuffled_dataset()).get_next()
        train_op = global_step.assign_add(1)
        seen = []
        try:
            with tf.compat.v1.train.MonitoredTrainingSession(
                hooks=[hook], save_summaries_steps=None, save_summaries_secs=None,
                log_step_count_steps=None,
            ) as session:
                for _ in range(steps):
                    seen.append(session.run([element, train_op])[0])
                if crash:
                    raise Crash()
        except Crash:
            pass
        return seen


def test_hook_rebuilt_after_a_crash_carries_on_while_the_old_one_is_referenced(tmp_path):
    directory = str(tmp_path)
    uninterrupted = _train_with(
        tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path / "u"), save_steps=3), 12)
    crashed = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=3)
    assert _train_with(crashed, 6, crash=True) == uninterrupted[:6]  # end() did not run
    tc.wait_for_pending_saves(directory)
    rebuilt = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=3)
    # `crashed` is still referenced: its session is over, so it frees the name.
    assert _train_with(rebuilt, 6) == uninterrupted[6:12]
    assert crashed is not None


def test_hook_in_a_running_session_blocks_a_manager_of_the_same_name(tmp_path):
    directory = str(tmp_path)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=100)
    manager = tc.IteratorCheckpointManager(iter(train_data()), directory)
    graph = tf.Graph()
    with graph.as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        element = tf.compat.v1.data.make_one_shot_iterator(shuffled_dataset()).get_next()
        train_op = global_step.assign_add(1)
        session = tf.compat.v1.train.MonitoredTrainingSession(
            hooks=[hook], save_summaries_steps=None, save_summaries_secs=None,
            log_step_count_steps=None,
        )
        session.run([element, train_op])
    with pytest.raises(tf.errors.FailedPreconditionError, match="CheckpointInputPipelineHook"):
        manager.save(1)
    with graph.as_default():
        session.close()  # end(): the hook's last save, then it lets go
    manager.save(5)
    manager.wait()
    manager.close()


class _Writer:
    def __init__(self, directory):
        self.process = subprocess.Popen(
            worker_command("stdin_writer", directory), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env(TF_CPP_MIN_LOG_LEVEL="2"))
        line = self.process.stdout.readline()
        assert line.strip() == "ready", self.process.stderr.read()[-3000:]

    def save(self, step):
        self.process.stdin.write(f"save {step}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read()[-3000:]
        return json.loads(line)

    def close(self):
        self.process.kill()
        self.process.wait()


def test_directory_removed_and_made_again_keeps_one_writer(tmp_path):
    directory = str(tmp_path / "ckpts")
    first, second = _Writer(directory), _Writer(directory)
    try:
        assert first.save(1) == "ok"
        refused = second.save(50)
        assert refused[0] == "FailedPreconditionError", refused
        shutil.rmtree(directory)
        # The holder's next save makes the directory again, and its lock.
        assert first.save(2) == "ok"
        refused = second.save(51)
        assert refused[0] == "FailedPreconditionError", refused
        assert f"pid {first.process.pid}" in refused[1], refused
        # Removed again, and this time the other process is first: it holds the
        # new lock, and the old holder is told so instead of writing beside it.
        shutil.rmtree(directory)
        assert second.save(52) == "ok"
        refused = first.save(3)
        assert refused[0] == "FailedPreconditionError", refused
        assert f"pid {second.process.pid}" in refused[1] and directory in refused[1], refused
        assert "removed" in refused[1], refused
    finally:
        first.close()
        second.close()
    retention = CheckpointRetention(directory, "input.ckpt", latest_filename="checkpoint_input",
                                    max_to_keep=None)
    assert retention.committed_steps() == [52]
    tc.ops.describe_iterator_shards(retention.prefix(52), verify=True)


def test_lock_file_path_is_the_directory_tensorflow_writes(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    os.symlink(tmp_path / "a" / "b", tmp_path / "link")
    assert writer_lock.lock_path(f"{tmp_path}/link/../ck", "input.ckpt") == str(
        tmp_path / "ck" / "input.ckpt.lock")
    assert writer_lock.lock_path(f"{tmp_path}/link/ck", "input.ckpt") == str(
        tmp_path / "a" / "b" / "ck" / "input.ckpt.lock")
