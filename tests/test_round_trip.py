"""The stream after a restore is exactly the stream the original iterator goes on with."""

from __future__ import annotations

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.pipelines import PIPELINES, big_shuffle_buffer
from tests.support.streams import assert_elements_equal, take


def _check_resume(make_dataset, prefix, skip, compare=30, **save_kwargs):
    it = iter(make_dataset())
    take(it, skip)
    assert tc.save_iterator(it, prefix, **save_kwargs) == prefix
    expected = take(it, compare)
    restored = iter(make_dataset())
    take(restored, 3)  # A restore replaces whatever state the iterator had.
    tc.restore_iterator(restored, prefix)
    assert_elements_equal(expected, take(restored, compare))
    return expected


@pytest.mark.parametrize("name", sorted(PIPELINES))
@pytest.mark.parametrize("num_shards", [None, 1, 3])
def test_pipelines_resume_exactly(tmp_path, name, num_shards):
    expected = _check_resume(
        PIPELINES[name], str(tmp_path / "ckpt"), skip=11, num_shards=num_shards
    )
    assert expected, "the comparison must cover elements"


def test_ram_filesystem(ram_dir):
    _check_resume(PIPELINES["shuffle"], f"{ram_dir}/sub/ckpt", skip=20, num_shards=2)


def test_empty_buffer_before_first_element(tmp_path):
    _check_resume(PIPELINES["shuffle"], str(tmp_path / "ckpt"), skip=0)


def test_full_shuffle_buffer(tmp_path):
    # After one element the shuffle buffer of 64 is full.
    _check_resume(lambda: tf.data.Dataset.range(1000).shuffle(64, seed=4), str(tmp_path / "c"), 1)


def test_exhausted_iterator(tmp_path):
    prefix = str(tmp_path / "ckpt")
    it = iter(tf.data.Dataset.range(5))
    assert len(take(it, 10)) == 5
    tc.save_iterator(it, prefix)
    restored = iter(tf.data.Dataset.range(5))
    tc.restore_iterator(restored, prefix)
    assert take(restored, 3) == []


def test_one_tensor_larger_than_a_shard(tmp_path):
    prefix = str(tmp_path / "ckpt")
    _check_resume(lambda: big_shuffle_buffer(num_elements=3), prefix, skip=1, compare=6,
                  num_shards=7)
    summary = tc.ops.describe_iterator_shards(prefix).numpy()
    assert b'"size": 0' not in summary  # every shard holds part of the big tensors


def test_more_shards_than_tensors(tmp_path):
    prefix = str(tmp_path / "ckpt")
    _check_resume(PIPELINES["range_map"], prefix, skip=4, num_shards=64)
    assert len(tf.io.gfile.glob(prefix + ".data-*")) == 64


def test_resave_same_prefix_replaces_and_cleans_up(tmp_path):
    prefix = str(tmp_path / "ckpt")
    it = iter(PIPELINES["shuffle"]())
    take(it, 5)
    tc.save_iterator(it, prefix, num_shards=2)
    take(it, 5)
    tc.save_iterator(it, prefix, num_shards=3)
    expected = take(it, 20)
    assert len(tf.io.gfile.glob(prefix + ".data-*")) == 3  # the first save's shards are gone
    restored = iter(PIPELINES["shuffle"]())
    tc.restore_iterator(restored, prefix)
    assert_elements_equal(expected, take(restored, 20))


def test_without_fsync(tmp_path):
    _check_resume(PIPELINES["strings"], str(tmp_path / "ckpt"), skip=7, fsync=False)


def test_asynchronous_save_commits_after_wait(tmp_path):
    prefix = str(tmp_path / "ckpt")
    it = iter(big_shuffle_buffer(num_elements=8))
    take(it, 2)
    assert tc.save_iterator(it, prefix, asynchronous=True) == prefix
    # The iterator goes on while the write runs; the checkpoint holds the
    # state at the time of the save.
    expected = take(it, 10)
    assert tc.wait_for_pending_saves(str(tmp_path)) == [prefix]
    assert tc.wait_for_pending_saves(str(tmp_path)) == []
    restored = iter(big_shuffle_buffer(num_elements=8))
    tc.restore_iterator(restored, prefix)
    assert_elements_equal(expected, take(restored, 10))


def test_asynchronous_saves_queue_in_order(tmp_path):
    it = iter(PIPELINES["shuffle"]())
    prefixes = []
    for step in range(4):
        take(it, 3)
        prefixes.append(tc.save_iterator(it, str(tmp_path / f"ckpt-{step}"), asynchronous=True))
    assert tc.wait_for_pending_saves() == prefixes
