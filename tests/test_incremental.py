"""Incremental saves through the manager, the hook's retention and TrackableIterator.

A save writes only the tensors the writer's previous checkpoint does not hold;
the rest are references into earlier shards (docs/INCREMENTAL.md). Checked here
with the kill trials' pipeline (64 KiB elements, shuffle buffer of 32,
prefetch of 2): what a save writes after k new elements, that every checkpoint
restores exactly in a fresh process, that retention keeps exactly the files kept
checkpoints read, that damage to a referenced shard is named and `fallback`
takes a checkpoint whose every referenced byte is good, and `on_busy='skip'`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.damage import flip_byte
from tests.support.kill_pipeline import ELEMENT_FLOATS, make_dataset
from tests.support.subprocesses import child_env, worker_command
from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.iterator_state import describe_checkpoint

ELEMENT_BYTES = ELEMENT_FLOATS * 4
FOLLOWING = 40


def _take(iterator, n):
    return [int(next(iterator)[0]) for _ in range(n)]


def _expected(consumed, n=FOLLOWING):
    iterator = iter(make_dataset(0))
    _take(iterator, consumed)
    out = []
    for _ in range(n):
        ident, payload = next(iterator)
        out.append([int(ident), float(payload[0]), float(payload[-1])])
    return out


def _restored_in_fresh_process(prefix, n=FOLLOWING):
    out = subprocess.run(worker_command("kill_pipeline_restore", prefix, n), capture_output=True,
                         text=True, timeout=300, env=child_env(), check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _describe(prefix):
    return describe_checkpoint(prefix)


def _data_files(directory):
    return sorted(n for n in tf.io.gfile.listdir(directory) if ".data-" in n)


def _needed_files(directory, prefixes):
    needed = set()
    for prefix in prefixes:
        info = _describe(prefix)
        needed |= {s["name"] for s in info["shards"]}
        needed |= set(info["referenced_files"])
    return sorted(needed)


def _save_chain(directory, new_per_save, **manager_args):
    """A manager's checkpoints of steps 1, 2, ...: before save i, `new_per_save[i]`
    elements are consumed. Returns {step: elements consumed before its save}."""
    iterator = iter(make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, str(directory), **manager_args)
    consumed, counts = 0, {}
    for step, k in enumerate(new_per_save, start=1):
        _take(iterator, k)
        consumed += k
        counts[step] = consumed
        manager.save(step)
        manager.wait()
    manager.close()
    return counts


def test_a_save_writes_only_the_new_elements_and_every_checkpoint_restores(tmp_path):
    directory = str(tmp_path)
    steps = _save_chain(directory, [5, 3, 8, 1], max_to_keep=None)
    checkpoints = [f"{directory}/input.ckpt-{step}" for step in steps]
    first = _describe(checkpoints[0])
    assert first["referenced_bytes"] == 0 and first["referenced_files"] == []
    state_bytes = first["total_bytes"]
    assert state_bytes > 30 * ELEMENT_BYTES  # the buffers hold 32 + 2 elements
    for prefix, k in zip(checkpoints[1:], [3, 8, 1]):
        info = _describe(prefix)
        # k elements were consumed since the last save. The prefetch thread refills
        # its 2 slots in its own time, so between k - 2 and k + 2 elements entered the
        # shuffle buffer: their payloads are written, plus the small tensors every
        # save writes. Nothing else is (the CI machine once had only k - 2 in).
        low, high = max(k - 2, 0), k + 2
        assert low * ELEMENT_BYTES <= info["total_bytes"] <= high * ELEMENT_BYTES + 64 * 1024, (
            prefix, info["total_bytes"], k)
        assert info["total_bytes"] + info["referenced_bytes"] >= state_bytes - 2 * ELEMENT_BYTES
        assert info["referenced_files"], prefix
        assert info["format_version"].startswith("2.")
        describe_checkpoint(prefix, verify=True)
    for step, prefix in zip(steps, checkpoints):
        assert _restored_in_fresh_process(prefix) == _expected(steps[step]), prefix


def test_incremental_false_writes_every_tensor(tmp_path):
    iterator = iter(make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, str(tmp_path), incremental=False)
    for step in (1, 2):
        _take(iterator, 2)
        manager.save(step)
        manager.wait()
    manager.close()
    infos = [_describe(p) for p in manager.checkpoints]
    assert [i["referenced_bytes"] for i in infos] == [0, 0]
    assert infos[1]["total_bytes"] > 30 * ELEMENT_BYTES
    assert infos[1]["format_version"].startswith("1.")


def test_retention_keeps_what_kept_checkpoints_read_and_nothing_else(tmp_path):
    directory = str(tmp_path)
    iterator = iter(make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, directory, max_to_keep=2)
    consumed = 0
    for step in range(1, 9):
        _take(iterator, 2)
        consumed += 2
        manager.save(step)
        manager.wait()
        kept = manager.checkpoints
        assert len(kept) == min(step, 2)
        # Every shard on disk is one a kept checkpoint reads, and all of those are there.
        assert _data_files(directory) == _needed_files(directory, kept), step
    referenced = set(_describe(manager.checkpoints[-1])["referenced_files"])
    own_steps = {layout.CheckpointLayout(directory, "input.ckpt", "checkpoint_input")
                 .step_of_file(n) for n in referenced}
    # The base of the chain (step 1) was deleted long ago; its shards are still read.
    assert 1 in own_steps and not tf.io.gfile.exists(f"{directory}/input.ckpt-1.index")
    manager.close()
    assert _restored_in_fresh_process(manager.checkpoints[-1]) == _expected(consumed)


def test_damage_in_a_referenced_shard_is_named_and_fallback_takes_a_good_chain(tmp_path):
    directory = str(tmp_path)
    counts = _save_chain(directory, [4, 4, 4], max_to_keep=None)
    ckpt2, ckpt3 = f"{directory}/input.ckpt-2", f"{directory}/input.ckpt-3"
    # Step 2's own shards hold the elements that entered since step 1; step 3
    # reads some of them (few of 4 new elements leave a buffer of 32 in 4 steps).
    own2 = {s["name"] for s in _describe(ckpt2)["shards"]}
    read_by_3 = own2 & set(_describe(ckpt3)["referenced_files"])
    assert read_by_3, "step 3 reads nothing step 2 wrote"
    victim = min(read_by_3)
    size = os.path.getsize(f"{directory}/{victim}")
    for offset in range(0, size, 4096):  # damage every referenced range of it
        flip_byte(f"{directory}/{victim}", offset)
    for prefix in (ckpt3, ckpt2):
        with pytest.raises(tf.errors.DataLossError, match=victim):
            tc.restore_iterator(iter(make_dataset(0)), prefix)
    fresh = iter(make_dataset(0))
    restored = tc.IteratorCheckpointManager(
        fresh, directory, on_corrupt="fallback").restore_or_initialize()
    assert restored == f"{directory}/input.ckpt-1"
    assert _take(fresh, 10) == [e[0] for e in _expected(counts[1], 10)]


def test_a_missing_referenced_shard_is_named(tmp_path):
    directory = str(tmp_path)
    _save_chain(directory, [3, 3], max_to_keep=None)
    victim = _describe(f"{directory}/input.ckpt-2")["referenced_files"][0]
    os.remove(f"{directory}/{victim}")
    with pytest.raises(tf.errors.NotFoundError, match=victim):
        tc.restore_iterator(iter(make_dataset(0)), f"{directory}/input.ckpt-2")


def test_on_busy_skip_skips_a_due_save_while_the_previous_write_runs(tmp_path, caplog):
    from tests.support.pipelines import big_shuffle_buffer

    iterator = iter(big_shuffle_buffer(num_elements=64, element_floats=256 * 1024))  # 64 MiB
    next(iterator)
    manager = tc.IteratorCheckpointManager(iterator, str(tmp_path), save_steps=1,
                                           on_busy="skip", incremental=False)
    assert manager.maybe_save(1) is not None
    # 64 MiB written and synced in the background: still running right after.
    assert manager._writes.busy()
    with caplog.at_level("INFO"):
        assert manager.maybe_save(2) is None
    assert "Skipping the input checkpoint of step 2" in caplog.text
    manager.wait()
    assert manager.maybe_save(3) is not None  # not busy: saved
    manager.close()
    steps = [int(p.rsplit("-", 1)[1]) for p in manager.checkpoints]
    assert steps == [1, 3]


def test_on_busy_is_checked():
    with pytest.raises(ValueError, match="on_busy"):
        tc.IteratorCheckpointManager(iter(make_dataset(0)), "/tmp/x", on_busy="later")
    with pytest.raises(ValueError, match="incremental"):
        tc.IteratorCheckpointManager(iter(make_dataset(0)), "/tmp/x", incremental="no")


def _beside_prefixes(directory):
    return sorted(f"{directory}/{n[: -len('.index')]}" for n in tf.io.gfile.listdir(directory)
                  if (parsed := layout.parse_beside_file(n)) is not None and parsed.is_index)


def test_trackable_iterator_saves_incrementally_beside_tf_checkpoints(tmp_path):
    directory = str(tmp_path)
    iterator = iter(make_dataset(0))
    ckpt = tf.train.Checkpoint(iterator=tc.TrackableIterator(iterator))
    tf_manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=1)
    consumed = 0
    for _ in range(6):
        _take(iterator, 3)
        consumed += 3
        tf_manager.save()
    # TF's manager keeps ckpt-6. Before each save the sweep removed our files of
    # the TF checkpoints deleted until then, except shards a kept save reads.
    ours = _beside_prefixes(directory)
    newest = [p for p in ours if os.path.basename(p).startswith("ckpt-6.")]
    assert len(newest) == 1, ours
    info = _describe(newest[0])
    assert info["referenced_files"], info
    assert info["total_bytes"] <= 1.5 * 3 * ELEMENT_BYTES + 64 * 1024, info["total_bytes"]
    beside_data = {n for n in _data_files(directory) if layout.parse_beside_file(n)}
    assert beside_data <= set(_needed_files(directory, ours)), beside_data
    assert _restored_in_fresh_process(newest[0]) == _expected(consumed)


def test_inspect_shows_referenced_bytes_and_verify_follows_references(tmp_path):
    directory = str(tmp_path)
    _save_chain(directory, [3, 3], max_to_keep=None)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tfdata_checkpoint.tools.cli", *args],
                              capture_output=True, text=True, timeout=300,
                              env=child_env(TF_CPP_MIN_LOG_LEVEL="3"), check=False)

    rows = {r["step"]: r for r in json.loads(cli("inspect", "--json", directory).stdout)}
    assert rows[1]["referenced_bytes"] == 0 and rows[1]["referenced_files"] == []
    # The prefetch(2) refills in its own time: up to k + 2 = 5 new elements, so at least
    # 30 referenced (TF 2.21's CI once saw exactly 30).
    assert rows[2]["referenced_bytes"] >= 30 * ELEMENT_BYTES
    assert rows[2]["bytes"] < 5 * ELEMENT_BYTES
    assert rows[2]["referenced_files"] == _describe(f"{directory}/input.ckpt-2")["referenced_files"]
    text = cli("inspect", directory).stdout
    assert "referenced_bytes" in text.splitlines()[0]
    verified = cli("verify", directory)
    assert verified.returncode == 0, verified.stdout
    assert "bytes referenced in" in verified.stdout
    # Damage a byte step 2 reads from step 1's shards: only verify's reading of
    # the referenced bytes can find it in step 2 (its own shards are intact).
    victim = rows[2]["referenced_files"][0]
    for offset in range(0, os.path.getsize(f"{directory}/{victim}"), 4096):
        flip_byte(f"{directory}/{victim}", offset)
    verified = cli("verify", directory)
    assert verified.returncode == 2, verified.stdout
    damaged = [line for line in verified.stdout.splitlines() if line.startswith("DAMAGED")]
    assert any("input.ckpt-2" in line and victim in line for line in damaged), damaged


def test_hook_on_busy_skip_skips_due_saves_and_end_still_saves(tmp_path, caplog):
    import numpy as np

    from tests.support.hook_sessions import train
    from tests.support.pipelines import big_shuffle_buffer

    def big(index):
        del index
        return big_shuffle_buffer(num_elements=64, element_floats=256 * 1024)  # 64 MiB

    def hook():
        return tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=1,
                                              on_busy="skip", incremental=False,
                                              max_to_keep=None)

    with caplog.at_level("INFO"):
        first = train(6, hooks=[hook()], make_dataset=big)
    # Steps take milliseconds, a 64 MiB write and fsync far longer.
    assert "Skipping the input checkpoint of step" in caplog.text
    steps = [int(p.rsplit("-", 1)[1]) for p in tf.train.get_checkpoint_state(
        str(tmp_path), latest_filename="checkpoint_input").all_model_checkpoint_paths]
    # Without skips: the initial save (step 0) and steps 1 to 6. end() saves the last step.
    assert steps[-1] == 6 and len(steps) < 7, steps
    second = train(3, hooks=[hook()], make_dataset=big)
    uninterrupted = iter(big(0))
    for got in first + second:
        np.testing.assert_array_equal(got, next(uninterrupted).numpy())
