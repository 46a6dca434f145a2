"""The input pipeline of the loopback cluster's tasks, shared by the tasks and the checks."""

from __future__ import annotations

import tensorflow as tf


def make_dataset(task_type: str, task_id: int) -> tf.data.Dataset:
    """Each task's own stream: ids unique across tasks, shuffle and prefetch state."""
    base = {"chief": 0, "worker": 1 + task_id}[task_type] * 1_000_000
    return tf.data.Dataset.range(base, base + 1_000_000).shuffle(32, seed=5).prefetch(2)
