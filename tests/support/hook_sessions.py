"""Helpers for the hook tests: graph-mode training loops with MonitoredTrainingSession."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Callable

import tensorflow as tf


class Crash(Exception):
    """Ends a training loop the way a failure does: hooks' end() is not called."""


class ReleaseOnLog(logging.Handler):
    """Sets `event` when a record containing `text` is logged."""

    def __init__(self, event, text):
        super().__init__(logging.WARNING)
        self.event, self.text = event, text

    def emit(self, record):
        if self.text in record.getMessage():
            self.event.set()


def join_background_waits():
    """Lets every background write end (their outcome stays unreported)."""
    for thread in threading.enumerate():
        if thread.name.startswith("tfdata-checkpoint-wait"):
            thread.join()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def range_dataset(index: int = 0) -> tf.data.Dataset:
    return tf.data.Dataset.range(100 * index, 100 * index + 100)


def shuffled_dataset(index: int = 0) -> tf.data.Dataset:
    """Shuffle and prefetch buffers: state that a wrong restore would show."""
    return (
        tf.data.Dataset.range(1000 * index, 1000 * index + 1000)
        .map(lambda x: x * 1)
        .shuffle(16, seed=3 + index)
        .prefetch(4)
    )


def train(
    steps: int,
    *,
    hooks: Sequence[tf.compat.v1.train.SessionRunHook] = (),
    model_dir: str | None = None,
    model_save_steps: int | None = None,
    make_dataset: Callable[[int], tf.data.Dataset] = shuffled_dataset,
    num_iterators: int = 1,
    before_step: Callable[[int], None] | None = None,
    crash: bool = False,
    seen: list | None = None,
) -> list:
    """Runs `steps` training steps in a new graph; returns the features seen.

    Each step reads one element of every iterator and increments the global
    step. The model checkpoint (global step only) goes to `model_dir`.
    """
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        features = [
            tf.compat.v1.data.make_one_shot_iterator(make_dataset(i)).get_next()
            for i in range(num_iterators)
        ]
        train_op = global_step.assign_add(1)
        kwargs = {}
        if model_dir is not None:
            kwargs = {"checkpoint_dir": model_dir, "save_checkpoint_steps": model_save_steps}
        seen = [] if seen is None else seen
        with tf.compat.v1.train.MonitoredTrainingSession(
            hooks=list(hooks),
            save_summaries_steps=None,
            save_summaries_secs=None,
            log_step_count_steps=None,
            **kwargs,
        ) as session:
            for step in range(steps):
                if before_step is not None:
                    before_step(step)
                values, _ = session.run([features, train_op])
                seen.append(values[0] if num_iterators == 1 else tuple(values))
            if crash:
                raise Crash()
        return seen


def train_until_crash(steps: int, **kwargs) -> list:
    """Like `train`, then fails: no hook's end() runs, as in a crash."""
    seen: list = []
    try:
        train(steps, crash=True, seen=seen, **kwargs)
    except Crash:
        pass
    return seen
