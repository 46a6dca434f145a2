"""The input of the MultiWorkerMirroredStrategy test: each worker a plain iterator over its shard."""

from __future__ import annotations

import tensorflow as tf

NUM_WORKERS = 2


def make_dataset(task_id: int) -> tf.data.Dataset:
    return (tf.data.Dataset.range(100_000).shard(NUM_WORKERS, task_id).shuffle(32, seed=1)
            .batch(2).prefetch(2))
