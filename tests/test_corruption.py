"""Flipped bytes and truncation in every kind of file: detected, named, and survivable.

The fault matrix damages, one fault at a time, a shard, the index or the state
file of a directory holding checkpoints of steps 10, 20 and 30, and checks for
each fault that
- restoring (`on_corrupt="raise"`) raises `tf.errors.DataLossError` naming the file;
- `tfdata-checkpoint verify` exits non-zero and names the file;
- `on_corrupt="fallback"` restores the newest undamaged checkpoint (20 when 30
  is damaged, 30 when only the state file is), logging what it skipped and
  why, and the iterator then yields exactly the uninterrupted stream.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import random
import shutil

import numpy as np
import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.damage import flip_byte
from tests.support.hook_sessions import shuffled_dataset, train
from tests.support.pipelines import PIPELINES
from tfdata_checkpoint.tools import cli

STEPS = (10, 20, 30)
FOLLOWING = 8


@functools.cache
def dataset():
    # Built once: tracing the map function is most of a fault's cost.
    return (
        tf.data.Dataset.range(10_000)
        .map(lambda x: x * 1)
        .shuffle(48, seed=4, reshuffle_each_iteration=False)
        .prefetch(3)
    )


def ids(iterator, n):
    return [int(next(iterator)) for _ in range(n)]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A directory with checkpoints of steps 10, 20, 30; the stream after each."""
    directory = tmp_path_factory.mktemp("pristine")
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(iterator, directory, async_save=False, num_shards=2)
    streams = {}
    consumed = 0
    for step in STEPS:
        ids(iterator, step - consumed)
        consumed = step
        manager.save(step)
    baseline = iter(dataset())
    all_ids = ids(baseline, STEPS[-1] + FOLLOWING)
    for step in STEPS:
        streams[step] = all_ids[step : step + FOLLOWING]
    return directory, streams


def _faults(directory, rng):
    """(kind, file name, description, damage function) for the fault matrix."""
    names = sorted(os.listdir(directory))
    shards = [n for n in names if n.startswith("input.ckpt-30.data-")]
    files = [("shard", n) for n in shards] + [("index", "input.ckpt-30.index"),
                                              ("state file", "checkpoint_input")]
    faults = []
    for kind, name in files:
        size = os.path.getsize(directory / name)
        if kind == "state file":  # every byte; the checksum line's lengths, then every 4th
            offsets = range(size)
            lengths = sorted(set(range(40)) | set(range(40, size, 4)) | {size - 1})
        elif kind == "index":  # the header, then samples of the rest
            offsets = sorted(set(range(32)) | set(range(32, size, max(1, size // 20))))
            lengths = sorted({0, 4, 8, 12, 16, size // 3, size // 2, size - 4, size - 1})
        else:
            offsets = sorted({0, size - 1} | {rng.randrange(size) for _ in range(8)})
            lengths = sorted({0, 1, size // 2, size - 1})
        for offset in offsets:
            mask = rng.randrange(1, 256)
            faults.append((kind, name, f"byte {offset} ^ {mask:#04x}",
                           lambda p, o=offset, m=mask: flip_byte(p, o, m)))
        for length in lengths:
            faults.append((kind, name, f"truncated to {length}",
                           lambda p, n=length: _truncate(p, n)))
    return faults


def _truncate(path, length):
    with open(path, "r+b") as f:
        f.truncate(length)


def _verify_cli(directory):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["verify", str(directory)])
    return code, out.getvalue()


def test_fault_matrix(pristine, tmp_path, caplog):
    source, streams = pristine
    seed = int(os.environ.get("TFDC_FAULT_SEED", "5"))
    rng = random.Random(seed)
    counts = {"injected": 0, "detected": 0, "named": 0, "cli": 0, "fallback ok": 0, "lost": 0}
    by_kind: dict[str, int] = {}
    for kind, name, what, damage in _faults(source, rng):
        where = f"{kind} {name}, {what} (TFDC_FAULT_SEED={seed})"
        directory = tmp_path / "d"
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(source, directory)
        damage(directory / name)
        counts["injected"] += 1
        by_kind[kind] = by_kind.get(kind, 0) + 1

        with pytest.raises(tf.errors.DataLossError) as raised:
            tc.IteratorCheckpointManager(iter(dataset()), directory).restore_or_initialize()
        counts["detected"] += 1
        assert name in raised.value.message, f"{where}: {raised.value.message}"
        counts["named"] += 1

        code, printed = _verify_cli(directory)
        assert code != 0 and "DAMAGED" in printed and name in printed, f"{where}: {printed}"
        counts["cli"] += 1

        fresh = iter(dataset())
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tfdata_checkpoint"):
            prefix = tc.IteratorCheckpointManager(
                fresh, directory, on_corrupt="fallback"
            ).restore_or_initialize()
        want = 30 if kind == "state file" else 20
        if prefix != f"{directory}/input.ckpt-{want}" or ids(fresh, FOLLOWING) != streams[want]:
            counts["lost"] += 1
            pytest.fail(f"{where}: fallback restored {prefix}")
        assert name in caplog.text, f"{where}: {caplog.text}"
        if kind != "state file":
            assert "Skipping damaged input pipeline checkpoint" in caplog.text
            assert "input.ckpt-30" in caplog.text
        counts["fallback ok"] += 1
    print(f"Fault matrix: {counts} by file kind {by_kind}")
    assert counts["injected"] == counts["detected"] == counts["cli"] == counts["fallback ok"]
    assert counts["lost"] == 0
    assert min(by_kind.values()) >= 20


def test_fallback_never_picks_a_checkpoint_newer_than_the_model(pristine, tmp_path, caplog):
    source, streams = pristine
    directory = tmp_path / "d"
    shutil.copytree(source, directory)
    flip_byte(str(directory / "input.ckpt-20.index"), 40, 0x10)
    fresh = iter(dataset())
    with caplog.at_level(logging.WARNING, logger="tfdata_checkpoint"):
        prefix = tc.IteratorCheckpointManager(
            fresh, directory, on_corrupt="fallback"
        ).restore_or_initialize(step=20)
    assert prefix == f"{directory}/input.ckpt-10"  # not 30, which the model has not reached
    assert ids(fresh, FOLLOWING) == streams[10]
    assert "input.ckpt-20.index" in caplog.text and "read again" in caplog.text


def test_fallback_with_every_checkpoint_damaged_starts_over(pristine, tmp_path, caplog):
    source, _ = pristine
    directory = tmp_path / "d"
    shutil.copytree(source, directory)
    for name in os.listdir(directory):
        if ".data-" in name and name.endswith("00001-of-00002"):
            _truncate(directory / name, 1)
    fresh = iter(dataset())
    with caplog.at_level(logging.WARNING, logger="tfdata_checkpoint"):
        assert tc.IteratorCheckpointManager(
            fresh, directory, on_corrupt="fallback"
        ).restore_or_initialize() is None
    assert ids(fresh, FOLLOWING) == ids(iter(dataset()), FOLLOWING)
    assert "starts over" in caplog.text
    for step in STEPS:
        assert f"input.ckpt-{step}" in caplog.text


def test_fallback_skips_a_missing_shard(pristine, tmp_path, caplog):
    source, streams = pristine
    directory = tmp_path / "d"
    shutil.copytree(source, directory)
    shard = min(n for n in os.listdir(directory) if n.startswith("input.ckpt-30.data-"))
    os.remove(directory / shard)
    with pytest.raises(tf.errors.NotFoundError, match=shard):
        tc.IteratorCheckpointManager(iter(dataset()), directory).restore_or_initialize()
    fresh = iter(dataset())
    with caplog.at_level(logging.WARNING, logger="tfdata_checkpoint"):
        tc.IteratorCheckpointManager(fresh, directory, on_corrupt="fallback").restore_or_initialize()
    assert ids(fresh, FOLLOWING) == streams[20]
    assert shard in caplog.text


def test_a_pipeline_that_does_not_fit_is_not_damage(tmp_path):
    """Fallback must not hide a misconfigured pipeline by starting over."""
    iterator = iter(PIPELINES["shuffle"]())
    next(iterator)
    manager = tc.IteratorCheckpointManager(iterator, tmp_path, async_save=False)
    manager.save(1)
    for on_corrupt in ("raise", "fallback"):
        other = iter(PIPELINES["interleave"]())
        with pytest.raises((tf.errors.NotFoundError, tf.errors.InvalidArgumentError)):
            tc.IteratorCheckpointManager(other, tmp_path, on_corrupt=on_corrupt).restore_or_initialize()


@pytest.mark.parametrize("value", ["Fallback", "", None, 1, "ignore"])
def test_on_corrupt_is_validated(tmp_path, value):
    with pytest.raises(ValueError, match="on_corrupt"):
        tc.IteratorCheckpointManager(iter(dataset()), tmp_path, on_corrupt=value)
    with pytest.raises(ValueError, match="on_corrupt"):
        tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=1,
                                       on_corrupt=value)


def _hook_checkpoints(directory):
    """Two iterators, checkpoints at steps 0, 4, 8; the uninterrupted streams."""
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(directory), save_steps=4,
                                          max_to_keep=None, async_save=False)
    seen = train(8, hooks=[hook], make_dataset=shuffled_dataset, num_iterators=2)
    uninterrupted = train(20, make_dataset=shuffled_dataset, num_iterators=2)
    assert seen == uninterrupted[:8]
    return uninterrupted


def _damage_part(directory, step, part):
    sub = directory if part == 0 else directory / f"input.ckpt.iterator{part}"
    shard = min(n for n in os.listdir(sub) if n.startswith(f"input.ckpt-{step}.data-"))
    flip_byte(str(sub / shard), 0, 0xFF)
    return shard


def test_hook_raise_names_the_damaged_file(tmp_path):
    _hook_checkpoints(tmp_path)
    shard = _damage_part(tmp_path, 8, 1)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=4)
    with pytest.raises(tf.errors.DataLossError, match=shard):
        train(1, hooks=[hook], make_dataset=shuffled_dataset, num_iterators=2)


def test_hook_fallback_restores_every_iterator_from_the_same_older_step(tmp_path, caplog):
    uninterrupted = _hook_checkpoints(tmp_path)
    # Part 0 of step 8 is good, part 1 is not: iterator 0 must not come from step 8.
    shard = _damage_part(tmp_path, 8, 1)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=4,
                                          on_corrupt="fallback")
    with caplog.at_level(logging.WARNING, logger="tfdata_checkpoint"):
        seen = train(3, hooks=[hook], make_dataset=shuffled_dataset, num_iterators=2)
    np.testing.assert_array_equal(seen, uninterrupted[4:7])
    assert shard in caplog.text and "input.ckpt-8" in caplog.text


def test_hook_fallback_with_every_part_damaged_starts_over_consistently(tmp_path, caplog):
    uninterrupted = _hook_checkpoints(tmp_path)
    for step in (0, 4, 8):
        _damage_part(tmp_path, step, 1)  # every part 0 stays good
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=4,
                                          on_corrupt="fallback")
    with caplog.at_level(logging.WARNING, logger="tfdata_checkpoint"):
        seen = train(3, hooks=[hook], make_dataset=shuffled_dataset, num_iterators=2)
    np.testing.assert_array_equal(seen, uninterrupted[:3])  # both iterators from the start
    assert "starts over" in caplog.text
