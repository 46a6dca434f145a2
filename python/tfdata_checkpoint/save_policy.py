"""When to save: every N steps or every N seconds.

The semantics are those of `tf.compat.v1.train.SecondOrStepTimer`, which
TensorFlow's `CheckpointSaverHook` (and so its `CheckpointInputPipelineHook`)
uses: the first step always triggers, the same step never triggers twice, and
afterwards a step triggers once `save_steps` steps or `save_secs` seconds have
passed since the last trigger. The clock is injectable so that tests need no
sleeps.
"""

from __future__ import annotations

import time
from typing import Callable

Clock = Callable[[], float]


def _check_interval(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number or None, got {value!r}")


class SavePolicy:
    """Decides at which global steps a checkpoint is due.

    Exactly one of `save_steps` and `save_secs` must be given.

    Args:
      save_steps: save when the step has advanced by at least this many steps
        since the last save.
      save_secs: save when at least this many seconds have passed since the
        last save.
      clock: returns the current time in seconds; `time.monotonic` by default
        (unlike TF's timer, which uses wall time, so that a clock change does
        not trigger or suppress saves).

    Raises:
      ValueError: if neither or both of `save_steps` / `save_secs` are given,
        or one is not a positive number.
    """

    def __init__(
        self,
        save_steps: int | None = None,
        save_secs: float | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        if (save_steps is None) == (save_secs is None):
            raise ValueError(
                "exactly one of save_steps and save_secs must be set, got "
                f"save_steps={save_steps!r}, save_secs={save_secs!r}"
            )
        if save_steps is not None:
            _check_interval("save_steps", save_steps)
        if save_secs is not None:
            _check_interval("save_secs", save_secs)
        self._save_steps = save_steps
        self._save_secs = save_secs
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._last_step: int | None = None
        self._last_time: float | None = None

    @property
    def save_steps(self) -> int | None:
        """The step interval, or None when saving by time."""
        return self._save_steps

    @property
    def save_secs(self) -> float | None:
        """The time interval in seconds, or None when saving by steps."""
        return self._save_secs

    def reset(self) -> None:
        """Forgets the last save: the next step is due."""
        self._last_step = None
        self._last_time = None

    def should_save(self, step: int) -> bool:
        """Whether a save is due at global step `step`."""
        if self._last_step is None:
            return True
        if step == self._last_step:
            return False
        if self._save_secs is not None:
            return self._clock() >= self._last_time + self._save_secs
        return step >= self._last_step + self._save_steps

    def record_save(self, step: int) -> None:
        """Notes that a save happened at `step`, now."""
        self._last_step = step
        self._last_time = self._clock()

    @property
    def last_saved_step(self) -> int | None:
        """The step of the last recorded save, or None."""
        return self._last_step
