"""Incremental saves through the raw ops (`incremental_key`): a save writes only the tensors
that entered the buffer since the last save with the same key, and every checkpoint of the
chain restores exactly, in a fresh process, to the stream of the uninterrupted iterator."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.incremental_pipelines import ELEMENT_BYTES, PIPELINES, serialized
from tests.support.subprocesses import child_env, worker_command

COMPARE = 20
ROUTES = ("iterator", "shards")


def _describe(prefix, verify=False):
    return json.loads(tc.ops.describe_iterator_shards(prefix, verify=verify).numpy())


def _save(iterator, prefix, key, route="iterator", **kwargs):
    resource = iterator._iterator_resource
    if route == "iterator":
        return tc.ops.save_iterator(resource, prefix, incremental_key=key, **kwargs)
    state = tf.raw_ops.SerializeIterator(resource_handle=resource, external_state_policy=2)
    return tc.ops.save_iterator_shards(state, prefix, incremental_key=key, **kwargs)


def _restored_in_fresh_process(name, prefix, route="iterator", n=COMPARE):
    result = subprocess.run(worker_command("incremental_restore", name, prefix, n, route),
                            env=child_env(), capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _skip(iterator, n):
    for _ in range(n):
        next(iterator)


class _Saves:
    """Saves of one iterator with one key, and the stream the iterator went on with after each."""

    def __init__(self, name, directory, route="iterator", key=None, warm_up=5):
        self.name, self.route = name, route
        self.directory = str(directory)
        self.key = key or os.path.join(self.directory, "input")
        self.iterator = iter(PIPELINES[name]())
        # A shuffle buffer fills on the first element: before it, there is nothing to reference.
        _skip(self.iterator, warm_up)
        self.prefixes: list[str] = []
        self._after: list[list[str]] = []  # elements taken after each save, in order

    def save(self, prefix_name, *, consume_after=0, **kwargs):
        prefix = os.path.join(self.directory, prefix_name)
        assert _save(self.iterator, prefix, self.key, self.route, **kwargs).numpy() == prefix.encode()
        self.prefixes.append(prefix)
        self._after.append([])
        self.take(consume_after)
        return prefix

    def take(self, n):
        elements = serialized(self.iterator, n)
        for after in self._after:
            after.extend(elements)
        return elements

    def expected(self, prefix, n=COMPARE):
        """The n elements the uninterrupted iterator handed out after the save of `prefix`."""
        after = self._after[self.prefixes.index(prefix)]
        if len(after) < n:
            self.take(n - len(after))
        return after[:n]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_second_save_writes_the_new_elements_and_both_restore_in_a_fresh_process(
        tmp_path, name, route):
    k = 4
    saves = _Saves(name, tmp_path, route)
    first = saves.save("ckpt-1", consume_after=k)
    second = saves.save("ckpt-2")

    full, incremental = _describe(first, verify=True), _describe(second, verify=True)
    assert full["format_version"] == "1.1"
    assert full["referenced_bytes"] == 0 and full["referenced_files"] == []
    assert full["own_bytes"] == full["total_bytes"]
    assert incremental["format_version"] == "2.0"
    assert incremental["own_bytes"] == incremental["total_bytes"]
    # Only what entered the buffers since the first save is written, plus the few hundred
    # bytes of bookkeeping every save has; the rest lives in the first checkpoint's shards.
    own, referenced = incremental["own_bytes"], incremental["referenced_bytes"]
    if name == "batch_prefetch":
        # How far the prefetch thread had run ahead at each save varies.
        assert 0 < own < (own + referenced) / 2
    else:
        # At most k elements entered the shuffle buffer (fewer when it handed out one it had
        # just taken in): at most their bytes are written, and everything else is referenced.
        new_bytes = k * ELEMENT_BYTES[name]
        assert own < new_bytes + 2048
        assert referenced >= full["own_bytes"] - new_bytes - 2048
    first_shards = sorted(shard["name"] for shard in full["shards"])
    assert incremental["referenced_files"] == first_shards

    for prefix in (first, second):
        assert _restored_in_fresh_process(name, prefix, route) == saves.expected(prefix)


def test_a_chain_restores_from_every_link(tmp_path):
    saves = _Saves("floats", tmp_path)
    for step in range(8):
        saves.save(f"ckpt-{step}", consume_after=3)
    described = [_describe(prefix) for prefix in saves.prefixes]
    assert described[0]["format_version"] == "1.1"
    for summary in described[1:]:
        assert summary["format_version"] == "2.0"
        assert summary["own_bytes"] < 3 * ELEMENT_BYTES["floats"] + 2048
        # References go straight to the checkpoint that wrote the bytes.
        owners = {name.split(".data-")[0] for name in summary["referenced_files"]}
        assert owners <= {os.path.basename(p) for p in saves.prefixes}
    # The last save references every earlier checkpoint whose elements are still buffered.
    assert len(described[-1]["referenced_files"]) >= 2
    for prefix in (saves.prefixes[3], saves.prefixes[-1]):
        _describe(prefix, verify=True)
        assert _restored_in_fresh_process("floats", prefix) == saves.expected(prefix)


def test_a_damaged_referenced_shard_is_data_loss_naming_it(tmp_path):
    saves = _Saves("floats", tmp_path)
    first = saves.save("ckpt-1", consume_after=2)
    second = saves.save("ckpt-2")
    shard = pathlib.Path(tmp_path, _describe(second)["referenced_files"][0])
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    shard = str(shard)
    iterator = iter(PIPELINES["floats"]())
    with pytest.raises(tf.errors.DataLossError, match=shard):
        tc.ops.restore_iterator(iterator._iterator_resource, second)
    with pytest.raises(tf.errors.DataLossError, match=shard):
        _describe(second, verify=True)
    with pytest.raises(tf.errors.DataLossError, match=shard):
        _describe(first, verify=True)


def test_a_missing_referenced_shard_is_not_found_and_the_next_save_is_full(tmp_path):
    saves = _Saves("floats", tmp_path)
    saves.save("ckpt-1", consume_after=2)
    second = saves.save("ckpt-2", consume_after=2)
    shard = os.path.join(str(tmp_path), _describe(second)["referenced_files"][0])
    os.remove(shard)
    iterator = iter(PIPELINES["floats"]())
    with pytest.raises(tf.errors.NotFoundError, match=f"{shard} of checkpoint {second} is missing"):
        tc.ops.restore_iterator(iterator._iterator_resource, second)
    with pytest.raises(tf.errors.NotFoundError, match=shard):
        _describe(second, verify=True)
    # The base's bytes are not all there: the next save never references the missing file
    # (it is written in full, and becomes the next base).
    third = saves.save("ckpt-3")
    summary = _describe(third, verify=True)
    assert summary["format_version"] == "1.1"
    assert _restored_in_fresh_process("floats", third) == saves.expected(third)


def test_release_makes_the_next_save_full(tmp_path):
    saves = _Saves("floats", tmp_path)
    saves.save("ckpt-1", consume_after=2)
    tc.ops.release_incremental_base(saves.key)
    tc.ops.release_incremental_base(saves.key + "-never-used")  # no error
    tc.ops.release_incremental_base("")
    second = saves.save("ckpt-2", consume_after=2)
    assert _describe(second)["format_version"] == "1.1"
    third = saves.save("ckpt-3")
    assert _describe(third)["format_version"] == "2.0"  # the full save is the new base
    assert _restored_in_fresh_process("floats", third) == saves.expected(third)


def test_without_a_key_saves_stay_full(tmp_path):
    iterator = iter(PIPELINES["floats"]())
    resource = iterator._iterator_resource
    for step in range(2):
        prefix = str(tmp_path / f"ckpt-{step}")
        tc.ops.save_iterator(resource, prefix)
        summary = _describe(prefix)
        assert summary["format_version"] == "1.1" and summary["referenced_files"] == []
        _skip(iterator, 2)


def test_keys_are_independent(tmp_path):
    a, b = _Saves("floats", tmp_path, key="a"), _Saves("strings", tmp_path, key="b")
    a.save("a-1", consume_after=1)
    b.save("b-1", consume_after=1)
    a2, b2 = a.save("a-2"), b.save("b-2")
    assert all(f.startswith("a-1.") for f in _describe(a2)["referenced_files"])
    assert all(f.startswith("b-1.") for f in _describe(b2)["referenced_files"])


def test_asynchronous_incremental_saves(tmp_path):
    saves = _Saves("floats", tmp_path)
    for step in range(3):
        saves.save(f"ckpt-{step}", consume_after=2, asynchronous=True)
    assert [p.decode() for p in tc.ops.wait_for_iterator_shards(str(tmp_path)).numpy()] == (
        saves.prefixes)
    assert [_describe(p)["format_version"] for p in saves.prefixes] == ["1.1", "2.0", "2.0"]
    last = saves.prefixes[-1]
    assert _restored_in_fresh_process("floats", last) == saves.expected(last)


def test_resaving_the_base_prefix_is_a_full_save_that_replaces_it(tmp_path):
    saves = _Saves("floats", tmp_path)
    prefix = saves.save("ckpt", consume_after=2)
    old_shards = set(tf.io.gfile.glob(prefix + ".data-*"))
    saves.prefixes.clear()
    saves._after.clear()
    saves.save("ckpt")
    summary = _describe(prefix, verify=True)
    assert summary["format_version"] == "1.1"
    assert not old_shards & set(tf.io.gfile.glob(prefix + ".data-*"))  # replaced and removed
    assert _restored_in_fresh_process("floats", prefix) == saves.expected(prefix)


def test_ram_filesystem(ram_dir):
    saves = _Saves("strings", ram_dir)
    saves.save("ckpt-1", consume_after=3)
    second = saves.save("ckpt-2")
    assert _describe(second, verify=True)["format_version"] == "2.0"
    restored = iter(PIPELINES["strings"]())
    tc.ops.restore_iterator(restored._iterator_resource, second)
    assert serialized(restored, COMPARE) == saves.expected(second)
