"""The input of the TrackableIterator and saveable tests: (id, payload), shuffled and prefetched."""

from __future__ import annotations

import tensorflow as tf

ELEMENT_FLOATS = 4096  # 16 KiB per element


def make_dataset(index: int = 0) -> tf.data.Dataset:
    """(id, payload) through a seeded shuffle and a prefetch buffer."""
    return (
        tf.data.Dataset.range(100_000)
        .map(lambda x: (x + 1_000_000 * index,
                        tf.fill([ELEMENT_FLOATS], tf.cast(x, tf.float32))))
        .shuffle(64, seed=11 + index)
        .prefetch(3)
    )
