"""The pipeline of the SIGKILL trials, shared by the killed children and the checks."""

from __future__ import annotations

import tensorflow as tf

ELEMENT_FLOATS = 16 * 1024  # 64 KiB per element: ~2.3 MiB of state per iterator.


def make_dataset(index: int = 0) -> tf.data.Dataset:
    """(id, payload) elements through shuffle and prefetch buffers."""
    return (
        tf.data.Dataset.range(1_000_000)
        .map(lambda x: (x, tf.fill([ELEMENT_FLOATS], tf.cast(x + 1_000_000 * index, tf.float32))))
        .shuffle(32, seed=17 + index)
        .prefetch(2)
    )
