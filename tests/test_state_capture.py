"""The save and restore path through the iterator's own Save/Restore (our
IteratorStateWriter and IteratorStateReader): nested datasets, chains of
transformations, external-state policies, and compatibility both ways with
the SerializeIterator-based ops."""

from __future__ import annotations

import pytest
import tensorflow as tf
from tensorflow.python.ops import gen_dataset_ops

import tfdata_checkpoint as tc
from tests.support.streams import assert_elements_equal, take


def _windows_in_a_shuffle_buffer():
    # Elements of the shuffle and prefetch buffers are datasets: TF saves them as graphs.
    return (
        tf.data.Dataset.range(200).window(4, drop_remainder=True)
        .shuffle(6, seed=3).prefetch(2)
        .flat_map(lambda w: w.batch(4))
    )


def _map_shuffle_batch_prefetch():
    return (
        tf.data.Dataset.range(400)
        .map(lambda x: (x, tf.strings.as_string(x), tf.fill([3], x)),
             num_parallel_calls=2)
        .shuffle(32, seed=8)
        .batch(5)
        .map(lambda a, s, r: (a * 2, s, tf.RaggedTensor.from_tensor(tf.expand_dims(a, 1))))
        .prefetch(3)
    )


def _parallel_interleave():
    return tf.data.Dataset.range(8).interleave(
        lambda x: tf.data.Dataset.range(x * 100, x * 100 + 9).map(lambda y: (y, tf.strings.as_string(y))),
        cycle_length=3, block_length=2, num_parallel_calls=2, deterministic=True,
    )


def _many_keys_in_one_entry():
    # A batch of 40 components: more keys in one entry than are scanned linearly.
    return tf.data.Dataset.range(300).map(
        lambda x: tuple(x + i for i in range(20))).shuffle(10, seed=2).prefetch(2)


NESTED = {
    "windows_in_a_shuffle_buffer": _windows_in_a_shuffle_buffer,
    "map_shuffle_batch_prefetch": _map_shuffle_batch_prefetch,
    "parallel_interleave": _parallel_interleave,
    "many_keys_in_one_entry": _many_keys_in_one_entry,
}


@pytest.mark.parametrize("name", sorted(NESTED))
@pytest.mark.parametrize("asynchronous", [False, True])
def test_resumes_exactly(tmp_path, name, asynchronous):
    prefix = str(tmp_path / "ckpt")
    it = iter(NESTED[name]())
    take(it, 7)
    tc.save_iterator(it, prefix, num_shards=2, asynchronous=asynchronous)
    if asynchronous:
        tc.wait_for_pending_saves(str(tmp_path))
    expected = take(it, 25)
    restored = iter(NESTED[name]())
    tc.restore_iterator(restored, prefix)
    assert_elements_equal(expected, take(restored, 25))


def _old_save(it, prefix):
    state = gen_dataset_ops.serialize_iterator(it._iterator_resource, external_state_policy=2)
    tc.ops.save_iterator_shards(state, prefix, num_shards=3)


def _old_restore(it, prefix):
    gen_dataset_ops.deserialize_iterator(it._iterator_resource,
                                         tc.ops.restore_iterator_shards(prefix))


@pytest.mark.parametrize("name", sorted(NESTED))
@pytest.mark.parametrize("direction", ["old_save_new_restore", "new_save_old_restore"])
def test_compatible_with_the_serialize_iterator_ops(tmp_path, name, direction):
    prefix = str(tmp_path / "ckpt")
    it = iter(NESTED[name]())
    take(it, 5)
    if direction == "old_save_new_restore":
        _old_save(it, prefix)
    else:
        tc.save_iterator(it, prefix, num_shards=3)
    expected = take(it, 20)
    restored = iter(NESTED[name]())
    if direction == "old_save_new_restore":
        tc.restore_iterator(restored, prefix)
    else:
        _old_restore(restored, prefix)
    assert_elements_equal(expected, take(restored, 20))


def _stateful():
    return tf.data.Dataset.range(50).map(lambda x: x + tf.random.uniform([], 0, 1, tf.int64))


def test_external_state_fail_raises(tmp_path):
    it = iter(_stateful())
    take(it, 2)
    with pytest.raises(tf.errors.FailedPreconditionError):
        tc.save_iterator(it, str(tmp_path / "c"), external_state_policy="fail")
    assert not tf.io.gfile.exists(str(tmp_path / "c.index"))


@pytest.mark.parametrize("policy", ["warn", "ignore"])
def test_external_state_warn_and_ignore_save(tmp_path, policy):
    prefix = str(tmp_path / "c")
    it = iter(_stateful())
    take(it, 2)
    tc.save_iterator(it, prefix, external_state_policy=policy)
    restored = iter(_stateful())
    tc.restore_iterator(restored, prefix)
    assert len(take(restored, 100)) == 48


def test_different_pipeline_names_the_checkpoint(tmp_path):
    prefix = str(tmp_path / "c")
    it = iter(tf.data.Dataset.range(100).shuffle(10, seed=1))
    take(it, 3)
    tc.save_iterator(it, prefix)
    # The same element spec, so the state's names are what tells them apart.
    other = iter(tf.data.Dataset.range(100).map(lambda x: x))
    with pytest.raises(tf.errors.NotFoundError, match="different input pipeline"):
        tc.restore_iterator(other, prefix)
    # Whether the iterator is still usable after that is TF's business: from
    # TF 2.16 on, its Restore cancels the old iterator before reading anything.


def test_damaged_checkpoint_leaves_the_iterator_untouched(tmp_path):
    prefix = str(tmp_path / "c")
    it = iter(tf.data.Dataset.range(100).shuffle(10, seed=1))
    take(it, 3)
    tc.save_iterator(it, prefix, num_shards=1)
    shard = tf.io.gfile.glob(prefix + ".data-*")[0]
    with open(shard, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    with open(shard, "wb") as f:
        f.write(bytes(data))
    fresh = iter(tf.data.Dataset.range(100).shuffle(10, seed=1))
    first = take(iter(tf.data.Dataset.range(100).shuffle(10, seed=1)), 5)
    with pytest.raises(tf.errors.DataLossError, match=shard.split("/")[-1]):
        tc.restore_iterator(fresh, prefix)
    assert_elements_equal(first, take(fresh, 5))


def test_save_and_restore_ops_in_a_graph(tmp_path):
    prefix = str(tmp_path / "c")
    with tf.Graph().as_default():
        ds = tf.data.Dataset.range(100).shuffle(10, seed=1)
        it = tf.compat.v1.data.make_initializable_iterator(ds)
        nxt = it.get_next()
        save = tc.ops.save_iterator(it._iterator_resource, prefix, num_shards=2)
        restore = tc.ops.restore_iterator(it._iterator_resource, prefix)
        with tf.compat.v1.Session() as sess:
            sess.run(it.initializer)
            [sess.run(nxt) for _ in range(4)]
            sess.run(save)
            expected = [sess.run(nxt) for _ in range(10)]
            sess.run(it.initializer)
            sess.run(restore)
            assert [sess.run(nxt) for _ in range(10)] == expected
