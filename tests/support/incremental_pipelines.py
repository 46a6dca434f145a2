"""Input pipelines for the incremental-save tests: buffers of elements large enough to be
referenced (at least 512 bytes each), and how the tests compare streams across processes."""

from __future__ import annotations

import tensorflow as tf

ELEMENT_FLOATS = 256  # 1 KiB elements.
STRING_BYTES = 600


def _exactly_as_written(dataset):
    """Without the parallel map and the prefetch tf.data adds by default: their background
    threads would make what is buffered at a save, and so the bytes it writes, vary."""
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False
    options.experimental_optimization.inject_prefetch = False
    options.autotune.enabled = False
    return dataset.with_options(options)


def _floats():
    return _exactly_as_written(
        tf.data.Dataset.range(100_000)
        .map(lambda x: tf.random.stateless_uniform([ELEMENT_FLOATS], seed=[x, 7]))
        .shuffle(32, seed=3)
    )


def _strings():
    return _exactly_as_written(
        tf.data.Dataset.range(100_000)
        .map(lambda x: tf.strings.as_string(x, width=STRING_BYTES))
        .shuffle(16, seed=5)
    )


def _batch_prefetch():
    return (
        tf.data.Dataset.range(100_000)
        .map(lambda x: tf.random.stateless_uniform([128], seed=[x, 9]))
        .shuffle(64, seed=1)
        .batch(2)
        .prefetch(3)
    )


PIPELINES = {"floats": _floats, "strings": _strings, "batch_prefetch": _batch_prefetch}

# Bytes of one element of each pipeline as a save writes it (a string: its length, then its bytes).
ELEMENT_BYTES = {"floats": 4 * ELEMENT_FLOATS, "strings": 8 + STRING_BYTES,
                 "batch_prefetch": 2 * 4 * 128}


def serialized(iterator, n: int) -> list[str]:
    """The next n elements, each as the hex of tf.io.serialize_tensor: exact, any dtype."""
    return [tf.io.serialize_tensor(next(iterator)).numpy().hex() for _ in range(n)]
