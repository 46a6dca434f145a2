"""A SessionRunHook wrapper that measures how long another hook holds each step."""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf


class TimedHook(tf.compat.v1.train.SessionRunHook):
    """Delegates to `inner` and records the time its callbacks take.

    `step_seconds[i]` is the time `inner.before_run` plus `inner.after_run`
    took around the i-th `session.run`: the training time the hook held that
    step. `end_seconds` is the time `inner.end` took.
    """

    def __init__(self, inner: tf.compat.v1.train.SessionRunHook) -> None:
        self.inner = inner
        self.step_seconds: list[float] = []
        self.end_seconds = 0.0
        self._before = 0.0

    def begin(self) -> None:
        self.inner.begin()

    def after_create_session(self, session: Any, coord: Any) -> None:
        self.inner.after_create_session(session, coord)

    def before_run(self, run_context: Any) -> Any:
        t0 = time.perf_counter()
        args = self.inner.before_run(run_context)
        self._before = time.perf_counter() - t0
        return args

    def after_run(self, run_context: Any, run_values: Any) -> None:
        t0 = time.perf_counter()
        self.inner.after_run(run_context, run_values)
        self.step_seconds.append(self._before + time.perf_counter() - t0)

    def end(self, session: Any) -> None:
        t0 = time.perf_counter()
        self.inner.end(session)
        self.end_seconds = time.perf_counter() - t0
