"""A training process killed (SIGKILL) mid-write resumes from the last commit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow as tf
import tfdata_checkpoint as tc
from tfdata_checkpoint.retention import CheckpointRetention

# Shared by the child and this process. ~1 MiB elements in a 48-element
# shuffle buffer plus prefetch: a ~50 MiB state, written with fsync, so that
# a write takes long enough for the kill to land in the middle of one.
DATASET_CODE = textwrap.dedent(
    """
    import tensorflow as tf

    def make_dataset(index=0):
        del index
        return (
            tf.data.Dataset.range(1_000_000)
            .map(lambda x: (x, tf.fill([256 * 1024], tf.cast(x, tf.float32))))
            .shuffle(48, seed=11)
            .prefetch(4)
        )
    """
)

CHILD_CODE = DATASET_CODE + textwrap.dedent(
    """
    import sys
    import tfdata_checkpoint as tc

    directory = sys.argv[1]
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        element_id, _ = tf.compat.v1.data.make_one_shot_iterator(make_dataset()).get_next()
        train_op = global_step.assign_add(1)
        hook = tc.CheckpointInputPipelineHook(
            checkpoint_dir=directory, save_steps=1, max_to_keep=3, num_shards=2)
        with tf.compat.v1.train.MonitoredTrainingSession(
                hooks=[hook], save_summaries_steps=None, save_summaries_secs=None,
                log_step_count_steps=None) as session:
            while True:
                session.run([element_id, train_op])
    """
)

BASENAME = "input.ckpt"


def namespace():
    scope: dict = {}
    exec(DATASET_CODE, scope)  # noqa: S102 - our own constant code
    return scope


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


def kill_mid_write(directory, script, deadline_s=120.0):
    """Starts the child; SIGKILLs it while a write is in flight after 3 commits."""
    child = subprocess.Popen(
        [sys.executable, script, directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
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
    script = tmp_path / "child.py"
    script.write_text(CHILD_CODE)
    # The write seen in flight may still finish between the look and the kill;
    # try again a few times so that the kill lands mid-write.
    for attempt in range(3):
        directory = str(tmp_path / f"run{attempt}")
        kill_mid_write(directory, str(script))
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

    make_dataset = namespace()["make_dataset"]
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
