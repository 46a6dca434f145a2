"""Input pipelines the tests checkpoint: every kind of state TF keeps."""

from __future__ import annotations

import tensorflow as tf


def _range_map():
    return tf.data.Dataset.range(200).map(lambda x: x * 3)


def _shuffle():
    return tf.data.Dataset.range(500).shuffle(64, seed=7, reshuffle_each_iteration=True).repeat(2)


def _batch():
    return tf.data.Dataset.range(100).batch(7)


def _padded_batch():
    return (
        tf.data.Dataset.range(60)
        .map(lambda x: tf.fill([tf.cast(x % 5, tf.int32)], x))
        .padded_batch(4)
    )


def _prefetch():
    return tf.data.Dataset.range(100).map(lambda x: tf.cast(x, tf.float32) * 0.5).prefetch(8)


def _interleave():
    return tf.data.Dataset.range(6).interleave(
        lambda x: tf.data.Dataset.range(x * 10, x * 10 + 7), cycle_length=3, block_length=2
    )


def _zip():
    a = tf.data.Dataset.range(80)
    b = tf.data.Dataset.range(80).map(lambda x: tf.strings.as_string(x)).shuffle(10, seed=3)
    return tf.data.Dataset.zip((a, b))


def _cache():
    return tf.data.Dataset.range(30).map(lambda x: x + 1).cache().repeat(3)


def _repeat():
    return tf.data.Dataset.range(9).repeat(5)


def _ragged():
    rt = tf.ragged.constant([[i] * (i % 4) for i in range(40)], dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices(rt).shuffle(8, seed=1).batch(3)


def _sparse():
    def to_sparse(x):
        return tf.sparse.SparseTensor(indices=[[0, x % 3]], values=[x], dense_shape=[1, 3])

    return tf.data.Dataset.range(50).map(to_sparse).shuffle(6, seed=2)


def _strings():
    return (
        tf.data.Dataset.range(120)
        .map(lambda x: tf.strings.join(["s", tf.strings.as_string(x), "\x00bin"]))
        .shuffle(20, seed=5)
        .prefetch(4)
    )


def _mixed_dtypes():
    def features(x):
        return {
            "f16": tf.cast(x, tf.float16),
            "c64": tf.complex(tf.cast(x, tf.float32), 1.0),
            "u8": tf.cast(x % 256, tf.uint8),
            "b": x % 2 == 0,
            "s": tf.strings.as_string(x),
            "f64": tf.cast(x, tf.float64) * tf.ones([2, 3], tf.float64),
        }

    return tf.data.Dataset.range(90).map(features).shuffle(16, seed=9).batch(2).prefetch(2)


PIPELINES = {
    "range_map": _range_map,
    "shuffle": _shuffle,
    "batch": _batch,
    "padded_batch": _padded_batch,
    "prefetch": _prefetch,
    "interleave": _interleave,
    "zip": _zip,
    "cache": _cache,
    "repeat": _repeat,
    "ragged": _ragged,
    "sparse": _sparse,
    "strings": _strings,
    "mixed_dtypes": _mixed_dtypes,
}


def big_shuffle_buffer(num_elements: int = 16, element_floats: int = 64 * 1024):
    """A shuffle buffer whose elements are larger than a small shard."""
    return (
        tf.data.Dataset.range(num_elements * 4)
        .map(lambda x: tf.random.stateless_uniform([element_floats], seed=[x, 1]))
        .shuffle(num_elements, seed=11)
    )
