"""IteratorCheckpointManager: input checkpoints in TF2 custom training loops."""

from __future__ import annotations

import logging
import os
import shutil
import threading

import numpy as np
import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_sessions import ReleaseOnLog, join_background_waits
from tfdata_checkpoint._src import background_writes


def dataset():
    return (
        tf.data.Dataset.range(10_000)
        .map(lambda x: (x, tf.fill([16], tf.cast(x, tf.float32))))
        .shuffle(32, seed=5)
        .prefetch(3)
    )


def take(iterator, n):
    return [next(iterator)[0].numpy() for _ in range(n)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("async_save", [True, False])
def test_restore_continues_like_the_uninterrupted_iterator(tmp_path, async_save):
    iterator = iter(dataset())
    take(iterator, 17)
    manager = tc.IteratorCheckpointManager(iterator, tmp_path, async_save=async_save)
    prefix = manager.save(17)
    assert prefix == f"{tmp_path}/input.ckpt-17"
    expected = take(iterator, 40)  # training goes on while the write runs
    manager.wait()
    assert manager.latest_checkpoint == prefix
    assert tf.train.latest_checkpoint(str(tmp_path), latest_filename="checkpoint_input") == prefix

    fresh = iter(dataset())
    restored = tc.IteratorCheckpointManager(fresh, tmp_path)
    assert restored.restore_or_initialize() == prefix
    np.testing.assert_array_equal(take(fresh, 40), expected)


def test_restore_or_initialize_without_checkpoint_leaves_the_iterator(tmp_path):
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(iterator, tmp_path / "none")
    assert manager.restore_or_initialize() is None
    assert manager.latest_checkpoint is None and manager.checkpoints == []
    np.testing.assert_array_equal(take(iterator, 10), take(iter(dataset()), 10))


def test_maybe_save_every_n_steps_and_retention(tmp_path):
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(iterator, tmp_path, save_steps=3, max_to_keep=2)
    saved = []
    for step in range(1, 12):
        next(iterator)
        if manager.maybe_save(step):
            saved.append(step)
    manager.wait()
    assert saved == [3, 6, 9]  # on the multiples (tests/test_aligned_saves.py)
    assert manager.checkpoints == [f"{tmp_path}/input.ckpt-6", f"{tmp_path}/input.ckpt-9"]
    names = os.listdir(tmp_path)
    assert not [n for n in names if n.startswith("input.ckpt-3.")]


def test_maybe_save_every_n_seconds_with_injected_clock(tmp_path):
    clock = FakeClock()
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(
        iterator, tmp_path, save_secs=10, clock=clock, max_to_keep=None, async_save=False
    )
    saved = []
    for step in range(1, 30):
        clock.now += 1.5
        if manager.maybe_save(step):
            saved.append(step)
    # Saves when >= 10 s passed since the last one: every 7 steps of 1.5 s.
    assert saved == [1, 8, 15, 22, 29]
    assert [int(p.rsplit("-", 1)[1]) for p in manager.checkpoints] == saved


def test_restore_matching_the_model_step(tmp_path, caplog):
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(iterator, tmp_path, max_to_keep=None)
    streams = {}
    for step in (5, 10, 15):
        take(iterator, 5)
        manager.save(step)
        manager.wait()
        streams[step] = take(iterator, 1)[0]
        # Rewind the position consumed by the peek: restore what was saved.
        manager.restore(manager.latest_checkpoint)
    for model_step, expected_step, warns in [(10, 10, False), (12, 10, True), (15, 15, False)]:
        fresh = iter(dataset())
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            prefix = tc.IteratorCheckpointManager(fresh, tmp_path).restore_or_initialize(
                step=model_step
            )
        assert prefix == f"{tmp_path}/input.ckpt-{expected_step}"
        assert take(fresh, 1)[0] == streams[expected_step]
        assert ("newest one before it" in caplog.text) == warns
    fresh = iter(dataset())
    with caplog.at_level(logging.WARNING):
        assert tc.IteratorCheckpointManager(fresh, tmp_path).restore_or_initialize(step=3) is None
    assert "starts over" in caplog.text
    assert take(fresh, 1)[0] == take(iter(dataset()), 1)[0]


def test_background_failure_surfaces_at_the_next_step(tmp_path):
    directory = tmp_path / "ckpt"
    clock = FakeClock()
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(iterator, directory, save_secs=60, clock=clock)
    assert manager.maybe_save(1)
    manager.wait()
    # The directory becomes a regular file: the next write fails in the background.
    shutil.rmtree(directory)
    directory.write_text("not a directory")
    assert manager.save(2)  # starts; the failure happens on the writer thread
    join_background_waits()
    # No save is due at step 3: only the check of the finished write can raise.
    with pytest.raises(tf.errors.OpError, match="input.ckpt-2"):
        manager.maybe_save(3)
    # Reported once, not again.
    assert manager.maybe_save(4) is None
    directory.unlink()
    clock.now += 60
    assert manager.maybe_save(5)
    manager.wait()
    assert manager.latest_checkpoint == f"{directory}/input.ckpt-5"


def test_background_failure_is_never_silent(tmp_path):
    """Without another save due, the failure comes out of a later step or wait()."""
    directory = tmp_path / "ckpt"
    directory.mkdir()
    (tmp_path / "file").write_text("x")
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(iterator, tmp_path / "file", save_steps=1000)
    raised = 0
    for step in range(1000, 1200):  # a save at 1000, then none due
        try:
            manager.maybe_save(step)
        except tf.errors.OpError:
            raised += 1
    try:
        manager.wait()
    except tf.errors.OpError:
        raised += 1
    assert raised == 1


def test_a_save_waits_for_the_previous_write_and_logs_it(tmp_path, monkeypatch, caplog):
    release = threading.Event()
    real_wait = background_writes._Write._wait

    def slow_wait(self, directories):
        # The first write stays in flight until the manager says it waits.
        release.wait(timeout=60)
        real_wait(self, directories)

    monkeypatch.setattr(background_writes._Write, "_wait", slow_wait)
    handler = ReleaseOnLog(release, "still running")
    background_writes.logger.addHandler(handler)
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(iterator, tmp_path, save_steps=10)
    try:
        manager.save(1)
        assert manager.maybe_save(2) is None  # polls: the write is not over, no wait
        assert not release.is_set()
        with caplog.at_level(logging.WARNING):
            manager.save(3)
        manager.wait()
    finally:
        background_writes.logger.removeHandler(handler)
    assert "Checkpoint of step 3 is due but the write of step 1 is still running" in caplog.text
    assert [int(p.rsplit("-", 1)[1]) for p in manager.checkpoints] == [1, 3]


def test_on_ram_filesystem():
    directory = f"ram://manager-{os.getpid()}"
    iterator = iter(dataset())
    take(iterator, 3)
    manager = tc.IteratorCheckpointManager(iterator, directory, max_to_keep=1)
    manager.save(3)
    expected = take(iterator, 5)
    manager.save(8)
    manager.wait()
    assert manager.checkpoints == [f"{directory}/input.ckpt-8"]
    fresh = iter(dataset())
    tc.IteratorCheckpointManager(fresh, directory).restore(f"{directory}/input.ckpt-8")
    assert take(fresh, 1)[0] != expected[0]
    fresh = iter(dataset())
    take(fresh, 3)
    np.testing.assert_array_equal(take(fresh, 5), expected)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"save_steps": 1, "save_secs": 1}, "save_steps"),
        ({"save_steps": 0}, "save_steps"),
        ({"max_to_keep": -1}, "max_to_keep"),
        ({"num_shards": 0}, "num_shards"),
        ({"external_state_policy": "sometimes"}, "external_state_policy"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        tc.IteratorCheckpointManager(iter(dataset()), tmp_path, **kwargs)


def test_bad_iterator_step_and_missing_policy(tmp_path):
    with pytest.raises(ValueError, match="iterator"):
        tc.IteratorCheckpointManager([1, 2], tmp_path)
    manager = tc.IteratorCheckpointManager(iter(dataset()), tmp_path)
    with pytest.raises(ValueError, match="step"):
        manager.save(-1)
    with pytest.raises(ValueError, match="save_steps or save_secs"):
        manager.maybe_save(1)
