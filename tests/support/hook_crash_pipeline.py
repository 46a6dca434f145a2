"""The pipeline of test_hook_crash.py, shared by the killed child and the checks.

~1 MiB elements in a 48-element shuffle buffer plus prefetch: a ~50 MiB
state, written with fsync, so that a write takes long enough for the kill to
land in the middle of one.
"""

from __future__ import annotations

import tensorflow as tf


def make_dataset(index=0):
    del index
    return (
        tf.data.Dataset.range(1_000_000)
        .map(lambda x: (x, tf.fill([256 * 1024], tf.cast(x, tf.float32))))
        .shuffle(48, seed=11)
        .prefetch(4)
    )
