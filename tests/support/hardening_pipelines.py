"""Pipelines shared by the hardening tests and their child processes (tests/workers/)."""

from __future__ import annotations

import tensorflow as tf


def train_data() -> tf.data.Dataset:
    """A "train" iterator's pipeline (test_writer_exclusive.py)."""
    return tf.data.Dataset.range(10_000).shuffle(64, seed=1).prefetch(2)


def eval_data() -> tf.data.Dataset:
    """An "eval" iterator's pipeline: other elements, the same element spec."""
    return tf.data.Dataset.range(50_000, 60_000).shuffle(64, seed=2).prefetch(2)


def smoke_pipeline() -> tf.data.Dataset:
    """map, shuffle, batch and prefetch state (test_smoke.py)."""
    return (
        tf.data.Dataset.range(5000)
        .map(lambda x: (x, tf.fill([8], tf.cast(x, tf.float32))))
        .shuffle(200, seed=3)
        .batch(4)
        .prefetch(3)
    )
