"""Damaged files, bad arguments and failed saves give clear errors and lose nothing."""

from __future__ import annotations

import os
import pathlib
import struct
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.damage import flip_byte
from tests.support.index_codec import with_crc
from tests.support.pipelines import PIPELINES, big_shuffle_buffer
from tests.support.streams import assert_elements_equal, take
from tests.support.subprocesses import child_env


@pytest.fixture
def saved(tmp_path):
    """A checkpoint with 3 shards, and the elements that follow it."""
    prefix = str(tmp_path / "ckpt")
    it = iter(PIPELINES["strings"]())
    take(it, 10)
    tc.save_iterator(it, prefix, num_shards=3)
    return prefix, take(it, 20)


def _restore(prefix, name="strings"):
    it = iter(PIPELINES[name]())
    tc.restore_iterator(it, prefix)
    return it


def _shards(prefix):
    return sorted(tf.io.gfile.glob(prefix + ".data-*"))


def test_missing_checkpoint_is_not_found(tmp_path):
    with pytest.raises(tf.errors.NotFoundError, match="nothing-here.index"):
        _restore(str(tmp_path / "nothing-here"))


@pytest.mark.parametrize("shard", [0, 1, 2])
def test_flipped_byte_in_each_shard_is_data_loss_naming_it(saved, shard):
    prefix, _ = saved
    path = _shards(prefix)[shard]
    flip_byte(path, os.path.getsize(path) // 2, 0x01)
    with pytest.raises(tf.errors.DataLossError, match=os.path.basename(path)):
        _restore(prefix)
    with pytest.raises(tf.errors.DataLossError, match=os.path.basename(path)):
        tc.ops.describe_iterator_shards(prefix, verify=True)


def test_truncated_shard_is_data_loss(saved):
    prefix, _ = saved
    path = _shards(prefix)[1]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    with pytest.raises(tf.errors.DataLossError, match=os.path.basename(path)):
        _restore(prefix)


def test_missing_shard_is_not_found(saved):
    prefix, _ = saved
    path = _shards(prefix)[2]
    os.remove(path)
    with pytest.raises(tf.errors.NotFoundError, match=os.path.basename(path)):
        _restore(prefix)


def test_every_flipped_index_byte_is_detected(saved):
    prefix, _ = saved
    index = pathlib.Path(prefix + ".index")
    original = index.read_bytes()
    size = len(original)
    for offset in list(range(64)) + list(range(64, size, max(1, size // 50))):
        flip_byte(index, offset, 0x01)
        with pytest.raises(tf.errors.DataLossError, match="ckpt.index"):
            _restore(prefix)
        index.write_bytes(original)
    _restore(prefix)  # undamaged again


def test_truncated_index_is_data_loss(saved):
    prefix, _ = saved
    index = pathlib.Path(prefix + ".index")
    data = index.read_bytes()
    for n in (0, 5, 12, len(data) // 2, len(data) - 1):
        index.write_bytes(data[:n])
        with pytest.raises(tf.errors.DataLossError, match="ckpt.index"):
            _restore(prefix)


def test_unknown_major_version_is_rejected_clearly(saved):
    prefix, _ = saved
    index = pathlib.Path(prefix + ".index")
    data = bytearray(index.read_bytes())
    data[8:12] = struct.pack("<I", 3)
    # With its checksum intact it is a newer format, not damage.
    index.write_bytes(with_crc(bytes(data[:-4])))
    with pytest.raises(tf.errors.UnimplementedError, match="format version 3"):
        _restore(prefix)
    # Without, it is damage.
    index.write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError, match="ckpt.index"):
        _restore(prefix)


def test_restore_into_a_different_pipeline_fails_cleanly(saved):
    prefix, _ = saved
    with pytest.raises(tf.errors.OpError):
        it = _restore(prefix, name="interleave")
        next(it)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"external_state_policy": "bogus"}, "external_state_policy"),
        ({"num_shards": 0}, "num_shards"),
        ({"num_shards": -2}, "num_shards"),
        ({"num_shards": 1.5}, "num_shards"),
    ],
)
def test_bad_save_arguments_raise_value_error(tmp_path, kwargs, match):
    it = iter(PIPELINES["range_map"]())
    with pytest.raises(ValueError, match=match):
        tc.save_iterator(it, str(tmp_path / "ckpt"), **kwargs)


def test_bad_prefix_and_iterator_raise_value_error(tmp_path):
    it = iter(PIPELINES["range_map"]())
    with pytest.raises(ValueError, match="prefix"):
        tc.save_iterator(it, "")
    with pytest.raises(ValueError, match="prefix"):
        tc.save_iterator(it, 42)
    with pytest.raises(ValueError, match="iterator"):
        tc.save_iterator([1, 2, 3], str(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="iterator"):
        tc.restore_iterator("not an iterator", str(tmp_path / "ckpt"))


def test_raw_op_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="variant"):
        tc.ops.save_iterator_shards(tf.zeros([3]), str(tmp_path / "x"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="1-D variant"):
        tc.ops.save_iterator_shards(tf.data.Dataset.range(3)._variant_tensor, str(tmp_path / "x"))
    dataset_variant = tf.stack([tf.data.Dataset.range(3)._variant_tensor])
    with pytest.raises(tf.errors.InvalidArgumentError, match="not an iterator state"):
        tc.ops.save_iterator_shards(dataset_variant, str(tmp_path / "x"))
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="num_shards"):
        tc.ops.save_iterator_shards(
            tf.raw_ops.SerializeIterator(resource_handle=iter(tf.data.Dataset.range(3))
                                         ._iterator_resource),
            str(tmp_path / "x"), num_shards=-1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="prefix"):
        tc.ops.restore_iterator_shards("")
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        tc.ops.restore_iterator_shards(["a", "b"])


def test_background_failure_is_raised_once_and_not_lost(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    it = iter(PIPELINES["shuffle"]())
    take(it, 3)
    # The save itself returns at once; the failure comes with the wait.
    tc.save_iterator(it, str(blocker / "ckpt"), asynchronous=True)
    with pytest.raises(tf.errors.OpError, match="Background save"):
        tc.wait_for_pending_saves(str(blocker))
    assert tc.wait_for_pending_saves(str(blocker)) == []
    # And when nobody waits, the next save into the directory raises it.
    tc.save_iterator(it, str(blocker / "ckpt"), asynchronous=True)
    with pytest.raises(tf.errors.OpError, match="Background save"):
        tc.save_iterator(it, str(blocker / "ckpt2"), asynchronous=True)


_FAILING_SAVE = textwrap.dedent(
    """
    import resource, signal
    import tensorflow as tf
    from tests.support.pipelines import big_shuffle_buffer
    import tfdata_checkpoint as tc
    it = iter(big_shuffle_buffer(num_elements=16))
    next(it)
    # Files may grow to 1 MiB only: the 4 MiB state cannot be written.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    try:
        tc.save_iterator(it, {prefix!r}, num_shards=2)
    except tf.errors.OpError as e:
        print("FAILED:", type(e).__name__, e.message.splitlines()[0])
    else:
        print("SAVED")
    """
)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    prefix = str(tmp_path / "ckpt")
    it = iter(big_shuffle_buffer(num_elements=16))
    take(it, 3)
    tc.save_iterator(it, prefix, num_shards=1)
    expected = take(it, 8)
    before = sorted(os.listdir(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", _FAILING_SAVE.format(prefix=prefix)],
        check=False, capture_output=True, text=True, timeout=300, env=child_env(),
    )
    assert "FAILED:" in out.stdout, out.stdout + out.stderr
    assert "ckpt.data-" in out.stdout  # the error names the file it could not write
    assert sorted(os.listdir(tmp_path)) == before  # nothing half-written is left
    restored = iter(big_shuffle_buffer(num_elements=16))
    tc.restore_iterator(restored, prefix)
    assert_elements_equal(expected, take(restored, 8))
