"""CheckpointInputPipelineHook without an Estimator: MonitoredTrainingSession."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from types import SimpleNamespace

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_sessions import (
    FakeClock,
    ReleaseOnLog,
    join_background_waits,
    range_dataset,
    shuffled_dataset,
    train,
    train_until_crash,
)
from tests.support.subprocesses import child_env
from tfdata_checkpoint._src import background_writes

LATEST = "checkpoint_input"


def committed_steps(directory, basename="input.ckpt"):
    return sorted(
        int(name[len(basename) + 1 : -len(".index")])
        for name in os.listdir(directory)
        if name.startswith(basename + "-") and name.endswith(".index")
    )


@pytest.fixture(scope="module")
def uninterrupted():
    return train(40)


@pytest.mark.parametrize("async_save", [True, False])
def test_resumes_where_it_stopped(tmp_path, uninterrupted, async_save):
    directory = str(tmp_path)
    seen = []
    for _ in range(3):
        hook = tc.CheckpointInputPipelineHook(
            checkpoint_dir=directory, save_steps=100, async_save=async_save
        )
        seen += train(5, hooks=[hook])
    assert seen == uninterrupted[:15]
    # No model checkpoint and a fresh global step each time: every run ends at
    # step 5, and the latest input checkpoint is read back.
    assert tf.train.latest_checkpoint(directory, latest_filename=LATEST) == (
        f"{directory}/input.ckpt-5"
    )


def test_training_without_the_hook_restarts_the_stream(tmp_path, uninterrupted):
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=2)
    assert train(4, hooks=[hook]) == uninterrupted[:4]
    assert train(4) == uninterrupted[:4]


def test_save_steps_and_retention(tmp_path):
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=3, max_to_keep=3)
    train(11, hooks=[hook])
    # Initial save at 0, then 3, 6, 9, and the final one at 11; keep 3.
    assert committed_steps(tmp_path) == [6, 9, 11]
    state = tf.train.get_checkpoint_state(str(tmp_path), latest_filename=LATEST)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "input.ckpt-6",
        "input.ckpt-9",
        "input.ckpt-11",
    ]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(("input.ckpt-0.", "input.ckpt-3."))]


def test_save_secs_with_injected_clock(tmp_path):
    clock = FakeClock()
    hook = tc.CheckpointInputPipelineHook(
        checkpoint_dir=str(tmp_path), save_secs=10, max_to_keep=None, clock=clock
    )

    def tick(step):
        clock.now += 4

    train(9, hooks=[hook], before_step=tick)
    # The run reaching global step k happens at t = 4k. Initial save at step 0
    # during the first run (t = 4); due again at t >= 14: step 4 (t = 16), then
    # t >= 26: step 7 (t = 28); end() saves step 9.
    assert committed_steps(tmp_path) == [0, 4, 7, 9]


def test_restores_input_checkpoint_matching_the_model_step(tmp_path, uninterrupted, caplog):
    directory = str(tmp_path)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=2, max_to_keep=None)
    # Model saved every 4 steps: after a crash at step 10 it is back at 8.
    assert (
        train_until_crash(10, hooks=[hook], model_dir=directory, model_save_steps=4)
        == (uninterrupted[:10])
    )
    assert tf.train.latest_checkpoint(directory).endswith("model.ckpt-8")
    tc.wait_for_pending_saves(directory)
    assert 10 in committed_steps(tmp_path)  # the newest input checkpoint is not the one to use
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=2)
    with caplog.at_level(logging.WARNING):
        assert (
            train(4, hooks=[hook], model_dir=directory, model_save_steps=4) == (uninterrupted[8:12])
        )
    assert "No input pipeline checkpoint for the model" not in caplog.text


def test_restores_newest_before_the_model_step_with_a_warning(tmp_path, uninterrupted, caplog):
    directory = str(tmp_path)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=4, max_to_keep=None)
    # Model every 3 steps (0, 3, 6, 9), input every 4 (0, 4, 8): after the crash
    # the model is at 9 and input step 8 is the newest before it.
    train_until_crash(10, hooks=[hook], model_dir=directory, model_save_steps=3)
    assert tf.train.latest_checkpoint(directory).endswith("model.ckpt-9")
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=4)
    with caplog.at_level(logging.WARNING):
        assert (
            train(3, hooks=[hook], model_dir=directory, model_save_steps=3) == (uninterrupted[8:11])
        )
    assert "No input pipeline checkpoint for the model's step 9" in caplog.text
    assert "of step 8" in caplog.text


def test_multiple_iterators_are_saved_together(tmp_path):
    directory = str(tmp_path)
    expected = train(9, make_dataset=shuffled_dataset, num_iterators=2)
    seen = []
    for _ in range(3):
        hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=2)
        seen += train(3, hooks=[hook], num_iterators=2)
    assert seen == expected
    assert len({a // 1000 for a, _ in seen}) == 1 and len({b // 1000 for _, b in seen}) == 1
    part = os.path.join(directory, "input.ckpt.iterator1")
    assert committed_steps(tmp_path) == committed_steps(part)


def test_multi_worker_file_names(tmp_path):
    config = SimpleNamespace(
        num_worker_replicas=2,
        task_type="worker",
        task_id=1,
        save_checkpoints_steps=2,
        save_checkpoints_secs=None,
    )
    estimator = SimpleNamespace(model_dir=str(tmp_path), config=config)
    hook = tc.CheckpointInputPipelineHook(estimator)
    train(3, hooks=[hook], make_dataset=range_dataset)
    names = set(os.listdir(tmp_path))
    assert "checkpoint_input_worker_1" in names
    assert committed_steps(tmp_path, "input_worker_1.ckpt") == [0, 2, 3]
    assert not [n for n in names if n.startswith("input.ckpt")]
    assert (
        tf.train.latest_checkpoint(str(tmp_path), latest_filename="checkpoint_input_worker_1")
        == f"{tmp_path}/input_worker_1.ckpt-3"
    )

    single = SimpleNamespace(
        model_dir=str(tmp_path / "one"),
        config=SimpleNamespace(
            num_worker_replicas=1,
            task_type="worker",
            task_id=0,
            save_checkpoints_steps=None,
            save_checkpoints_secs=600,
        ),
    )
    hook = tc.CheckpointInputPipelineHook(single)
    train(2, hooks=[hook], make_dataset=range_dataset)
    assert committed_steps(tmp_path / "one") == [0, 2]
    assert os.path.exists(tmp_path / "one" / "checkpoint_input")


def test_background_write_failure_surfaces_in_the_training_loop(tmp_path):
    directory = tmp_path / "input"
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(directory), save_steps=1)

    def replace_directory_with_a_file(step):
        if step == 2:
            # Writes in flight would race the removal; the next one must fail.
            join_background_waits()
            shutil.rmtree(directory)
            directory.write_text("not a directory")

    failed_at = []

    def record(step):
        failed_at.append(step)
        replace_directory_with_a_file(step)

    with pytest.raises(tf.errors.OpError, match="input.ckpt-"):
        train(6, hooks=[hook], make_dataset=range_dataset, before_step=record)
    # The save after step 2 fails: at once when starting it finds the directory
    # gone, or in the background and then raised at the next step.
    assert failed_at[-1] in (2, 3)


def test_background_failure_surfaces_at_the_next_step_without_a_save(tmp_path):
    directory = tmp_path / "input"
    clock = FakeClock()
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(directory), save_secs=60, clock=clock)
    started = []

    def before_step(step):
        started.append(step)
        if step == 1:
            join_background_waits()  # the initial save's write is over
        elif step == 2:
            # Step 1 recorded the initial checkpoint; now break the directory
            # and make a save due after this step.
            shutil.rmtree(directory)
            directory.write_text("not a directory")
            clock.now += 60
        elif step == 3:
            join_background_waits()  # the write of step 3 has failed by now

    with pytest.raises(tf.errors.OpError, match="Background save of .*input.ckpt-3"):
        train(6, hooks=[hook], make_dataset=range_dataset, before_step=before_step)
    # No save was due after step 3: the failure came from checking the write.
    assert started[-1] == 3


def test_a_save_waits_for_the_previous_write_and_logs_it(tmp_path, monkeypatch, caplog):
    release = threading.Event()
    real_wait = background_writes._Write._wait

    def slow_wait(self, directories):
        if self.step == 1:
            # The write of step 1 stays in flight until the hook says it waits.
            release.wait(timeout=60)
        real_wait(self, directories)

    monkeypatch.setattr(background_writes._Write, "_wait", slow_wait)
    handler = ReleaseOnLog(release, "still running")
    background_writes.logger.addHandler(handler)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=1)
    try:
        with caplog.at_level(logging.WARNING):
            train(3, hooks=[hook], make_dataset=range_dataset)
    finally:
        background_writes.logger.removeHandler(handler)
    assert "Checkpoint of step 2 is due but the write of step 1 is still running" in caplog.text
    assert committed_steps(tmp_path) == [0, 1, 2, 3]


def test_end_waits_for_every_pending_write(tmp_path):
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=1)
    train(3, hooks=[hook], make_dataset=shuffled_dataset)
    # Right after the session closed, everything is committed and recorded.
    assert committed_steps(tmp_path) == [0, 1, 2, 3]
    assert tf.train.latest_checkpoint(str(tmp_path), latest_filename=LATEST).endswith("-3")


def test_graph_without_iterator_raises_value_error(tmp_path):
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=1)
    with tf.Graph().as_default():
        tf.compat.v1.train.get_or_create_global_step()
        with pytest.raises(ValueError, match="no iterator"):
            hook.begin()


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"save_steps": 1}, "checkpoint_dir"),
        ({"checkpoint_dir": "d"}, "save_steps"),
        ({"checkpoint_dir": "d", "save_steps": 1, "save_secs": 1}, "save_steps"),
        ({"checkpoint_dir": "d", "save_secs": -1}, "save_secs"),
        (
            {"checkpoint_dir": "d", "save_steps": 1, "external_state_policy": "x"},
            "external_state_policy",
        ),
        ({"checkpoint_dir": "d", "save_steps": 1, "max_to_keep": -1}, "max_to_keep"),
        ({"checkpoint_dir": "d", "save_steps": 1, "num_shards": 0}, "num_shards"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tc.CheckpointInputPipelineHook(**kwargs)


def test_works_with_eager_execution_disabled(tmp_path):
    """TF1-style programs: background writes are still waited for and surfaced."""
    code = textwrap.dedent(
        f"""
        import tensorflow as tf
        tf.compat.v1.disable_eager_execution()
        from tests.support.hook_sessions import train
        import tfdata_checkpoint as tc
        expected = train(9)
        seen = []
        for _ in range(3):
            hook = tc.CheckpointInputPipelineHook(checkpoint_dir={str(tmp_path)!r}, save_steps=1)
            seen += train(3, hooks=[hook])
        assert seen == expected, (seen, expected)
        print("resumed exactly")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=child_env(TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed exactly" in result.stdout
