"""The ops in graph mode, inside tf.function, and across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import tensorflow as tf
from tensorflow.python.ops import gen_dataset_ops

import tfdata_checkpoint as tc
from tests.support.pipelines import PIPELINES
from tests.support.streams import assert_elements_equal, take
from tests.support.subprocesses import child_env


def test_graph_mode_v1_iterator(tmp_path):
    prefix = str(tmp_path / "ckpt")
    with tf.Graph().as_default():
        ds = tf.data.Dataset.range(300).shuffle(32, seed=3)
        it = tf.compat.v1.data.make_initializable_iterator(ds)
        nxt = it.get_next()
        save = tc.save_iterator(it, prefix, num_shards=2)
        restore = tc.restore_iterator(it, prefix)
        assert isinstance(save, tf.Tensor)
        with tf.compat.v1.Session() as sess:
            sess.run(it.initializer)
            for _ in range(10):
                sess.run(nxt)
            assert sess.run(save) == prefix.encode()
            expected = [sess.run(nxt) for _ in range(25)]
        with tf.compat.v1.Session() as sess:
            sess.run(it.initializer)
            sess.run(restore)
            got = [sess.run(nxt) for _ in range(25)]
    assert expected == got


def test_one_shot_iterator_in_graph(tmp_path):
    prefix = str(tmp_path / "ckpt")
    with tf.Graph().as_default():
        it = tf.compat.v1.data.make_one_shot_iterator(PIPELINES["strings"]())
        nxt = it.get_next()
        save = tc.save_iterator(it, prefix)
        restore = tc.restore_iterator(it, prefix)
        with tf.compat.v1.Session() as sess:
            for _ in range(5):
                sess.run(nxt)
            sess.run(save)
            expected = [sess.run(nxt) for _ in range(15)]
            for _ in range(3):
                sess.run(nxt)
            sess.run(restore)
            assert [sess.run(nxt) for _ in range(15)] == expected


def test_raw_ops_inside_tf_function(tmp_path):
    prefix = str(tmp_path / "ckpt")
    it = iter(PIPELINES["shuffle"]())

    @tf.function
    def save(p):
        state = gen_dataset_ops.serialize_iterator(it._iterator_resource, external_state_policy=2)
        return tc.ops.save_iterator_shards(state, p, num_shards=2)

    @tf.function
    def restore(p):
        gen_dataset_ops.deserialize_iterator(it._iterator_resource,
                                             tc.ops.restore_iterator_shards(p))

    take(it, 9)
    assert save(tf.constant(prefix)).numpy() == prefix.encode()
    expected = take(it, 20)
    restore(tf.constant(prefix))
    assert_elements_equal(expected, take(it, 20))


def test_save_iterator_inside_tf_function(tmp_path):
    prefix = str(tmp_path / "ckpt")
    it = iter(PIPELINES["batch"]())

    @tf.function
    def save():
        return tc.save_iterator(it, prefix)

    take(it, 2)
    save()
    expected = take(it, 5)
    restored = iter(PIPELINES["batch"]())
    tc.restore_iterator(restored, prefix)
    assert_elements_equal(expected, take(restored, 5))


def test_describe_reports_the_checkpoint(tmp_path):
    prefix = str(tmp_path / "ckpt")
    it = iter(PIPELINES["mixed_dtypes"]())
    take(it, 3)
    tc.save_iterator(it, prefix, num_shards=4)
    summary = json.loads(tc.ops.describe_iterator_shards(prefix, verify=True).numpy())
    assert summary["format_version"] == "1.1"
    flat = tf.nest.flatten(PIPELINES["mixed_dtypes"]().element_spec)
    assert summary["element_spec"] == [
        {"dtype": spec.dtype.as_datatype_enum, "shape": spec.shape.as_list()} for spec in flat]
    assert summary["tf_version"] == tf.__version__
    assert len(summary["shards"]) == 4
    assert summary["total_bytes"] == sum(s["size"] for s in summary["shards"])
    assert summary["num_entries"] > 0


_CHILD = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf
    from tests.support.pipelines import PIPELINES
    import tfdata_checkpoint as tc
    it = iter(PIPELINES["mixed_dtypes"]())
    tc.restore_iterator(it, {prefix!r})
    for _ in range(12):
        e = next(it)
        print(repr({{k: v.numpy().tolist() for k, v in sorted(e.items())}}))
    """
)


def test_restore_in_a_fresh_process(tmp_path):
    prefix = str(tmp_path / "ckpt")
    it = iter(PIPELINES["mixed_dtypes"]())
    take(it, 13)
    tc.save_iterator(it, prefix, num_shards=3)
    expected = [
        repr({k: v.numpy().tolist() for k, v in sorted(e.items())}) for e in take(it, 12)
    ]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(prefix=prefix)],
        capture_output=True, text=True, timeout=300, check=True, env=child_env(),
    )
    assert out.stdout.strip().splitlines() == expected
