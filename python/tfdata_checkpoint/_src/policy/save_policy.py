"""When to save: every N steps or every N seconds.

Two rules for `save_steps`:

- `aligned=False`, the hook's: the semantics of
  `tf.compat.v1.train.SecondOrStepTimer`, which TensorFlow's
  `CheckpointSaverHook` (and so its `CheckpointInputPipelineHook`) uses: the
  first step always triggers, the same step never triggers twice, and
  afterwards a step triggers once `save_steps` steps have passed since the last
  trigger. The model's `CheckpointSaverHook` in the same session follows the same
  rule from the same first step, so the input checkpoints land on the model's.
- `aligned=True`, the manager's: a step triggers when it is a multiple of
  `save_steps`, or when a multiple was passed over since the last save (or
  since the first step seen, before any save), as Orbax's fixed-interval
  policy does. A custom training loop calling `maybe_save(step)` from step 1
  saves at `save_steps`, `2 * save_steps`, ...: the steps a model saved every
  `save_steps` steps is at, so `restore_or_initialize(step=model_step)` finds
  the input checkpoint of exactly that step.

`save_secs` follows `SecondOrStepTimer` in both. The clock is injectable so
that tests need no sleeps.
"""

from __future__ import annotations

import time
from typing import Callable

from tfdata_checkpoint._src import arguments

Clock = Callable[[], float]

# What a save that is due does while the previous write is still running:
# wait for it (holding the training step), or be skipped, as Orbax's
# continuous checkpointing does, so that saving never holds training.
ON_BUSY_CHOICES = ("wait", "skip")


def check_on_busy(on_busy: str) -> str:
    """`on_busy` if it is 'wait' or 'skip'; ValueError naming it otherwise."""
    if not isinstance(on_busy, str) or on_busy not in ON_BUSY_CHOICES:
        raise ValueError(f"on_busy must be one of {list(ON_BUSY_CHOICES)}, got {on_busy!r}")
    return on_busy


def skips_when_busy(on_busy: str, busy: bool) -> bool:
    """Whether a due save is skipped: `on_busy` is 'skip' and a write is running."""
    return busy and check_on_busy(on_busy) == "skip"


class SavePolicy:
    """Decides at which global steps a checkpoint is due.

    Exactly one of `save_steps` and `save_secs` must be given.

    Args:
      save_steps: save when the step has advanced by at least this many steps
        since the last save (or, `aligned`, on multiples of it).
      save_secs: save when at least this many seconds have passed since the
        last save.
      clock: returns the current time in seconds; `time.monotonic` by default
        (unlike TF's timer, which uses wall time, so that a clock change does
        not trigger or suppress saves).
      aligned: with `save_steps`, save on its multiples (see the module
        docstring) instead of counting from the first step.

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
        aligned: bool = False,
    ) -> None:
        if (save_steps is None) == (save_secs is None):
            raise ValueError(
                "exactly one of save_steps and save_secs must be set, got "
                f"save_steps={save_steps!r}, save_secs={save_secs!r}"
            )
        if save_steps is not None:
            save_steps = arguments.integer("save_steps", save_steps, minimum=1, none_ok=True)
        if save_secs is not None:
            save_secs = arguments.positive_number("save_secs", save_secs)
        self._save_steps = save_steps
        self._save_secs = save_secs
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._aligned = bool(aligned)
        self._last_step: int | None = None
        self._last_time: float | None = None
        # Aligned, before any save: the first step asked about, from which a
        # multiple passed over counts.
        self._first_seen: int | None = None

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
        self._first_seen = None

    def should_save(self, step: int) -> bool:
        """Whether a save is due at global step `step`."""
        if self._aligned and self._save_steps is not None:
            return self._aligned_due(step)
        if self._last_step is None:
            return True
        if step == self._last_step:
            return False
        if self._save_secs is not None:
            return self._clock() >= self._last_time + self._save_secs
        return step >= self._last_step + self._save_steps

    def _aligned_due(self, step: int) -> bool:
        if step == self._last_step:
            return False
        if step % self._save_steps == 0:
            return True
        if self._last_step is not None:
            since = self._last_step
        else:
            if self._first_seen is None:
                self._first_seen = step
            since = self._first_seen
        # A multiple lies in (since, step]: it was passed over.
        return step // self._save_steps > since // self._save_steps

    def record_save(self, step: int) -> None:
        """Notes that a save happened at `step`, now."""
        self._last_step = step
        self._last_time = self._clock()

    @property
    def last_saved_step(self) -> int | None:
        """The step of the last recorded save, or None."""
        return self._last_step
