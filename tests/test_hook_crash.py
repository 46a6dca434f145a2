"""A training process killed (SIGKILL) mid-write resumes from the last commit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_crash_pipeline import make_dataset
from tests.support.subprocesses import child_env, worker_command
from tfdata_checkpoint._src.retention import CheckpointRetention

BASENAME = "input.ckpt"


def uncommitted_data_files(directory):
    """Shard files of checkpoints whose index is not there (a write in flight)."""
    names = os.listdir(directory)
    indexes = {n[: -len(".index")] for n in names if n.endswith(".index")}
    pending = []
    for name in names:
        match = re.match(re.escape(BASENAME) + r"-\d+(?=\.data-)", name)
        if match and match.group(0) not in indexes:
            pending.append(name)
    return pending


def committed(directory):
    return [n for n in os.listdir(directory) if n.endswith(".index")]


def kill_mid_write(directory, deadline_s=120.0):
    """Starts the child; SIGKILLs it while a write is in flight after 3 commits."""
    child = subprocess.Popen(
        worker_command("hook_crash_training", directory),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=child_env(TF_CPP_MIN_LOG_LEVEL="2"),
    )
    try:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail(f"child exited early: {child.stderr.read().decode()[-3000:]}")
            if (
                os.path.isdir(directory)
                and len(committed(directory)) >= 3
                and uncommitted_data_files(directory)
            ):
                break
            time.sleep(0.002)
        else:
            pytest.fail("the child never had a write in flight")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def test_killed_mid_write_resumes_from_last_committed(tmp_path):
    # The write seen in flight may still finish between the look and the kill;
    # try again a few times so that the kill lands mid-write.
    for attempt in range(3):
        directory = str(tmp_path / f"run{attempt}")
        kill_mid_write(directory)
        leftovers = uncommitted_data_files(directory)
        if leftovers:
            break
    assert leftovers, "no kill landed in the middle of a write"

    retention = CheckpointRetention(directory, BASENAME, latest_filename="checkpoint_input")
    latest = retention.latest()
    assert latest is not None
    step = retention.step_of(latest)
    # The checkpoint in flight was not committed: it is not the latest.
    in_flight = {int(re.match(re.escape(BASENAME) + r"-(\d+)", n).group(1)) for n in leftovers}
    assert step not in in_flight and max(in_flight) > step
    assert tf.io.gfile.exists(latest + ".index")
    json_description = tc.ops.describe_iterator_shards(latest, verify=True)
    assert b"shards" in json_description.numpy()

    # Far enough for the resumed run's commits to pass the killed write's step.
    resume_steps = max(6, max(in_flight) + 2)
    # The stream after `step` elements, uninterrupted.
    baseline = iter(make_dataset())
    expected = [int(next(baseline)[0]) for _ in range(step + resume_steps)][step:]

    # Resume with the hook in this process: no model checkpoint, so the hook
    # restores the newest committed input checkpoint (the global step starts
    # again from 0 here, since no model is checkpointed).
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        element_id, _ = tf.compat.v1.data.make_one_shot_iterator(make_dataset()).get_next()
        train_op = global_step.assign_add(1)
        hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=1, max_to_keep=3)
        seen = []
        with tf.compat.v1.train.MonitoredTrainingSession(
            hooks=[hook],
            save_summaries_steps=None,
            save_summaries_secs=None,
            log_step_count_steps=None,
        ) as session:
            for _ in range(resume_steps):
                seen.append(int(session.run([element_id, train_op])[0]))
    assert seen == expected
    # Once newer checkpoints committed, the killed write's files are gone.
    assert not set(leftovers) & set(os.listdir(directory))
