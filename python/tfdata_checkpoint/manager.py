"""IteratorCheckpointManager: input checkpoints for TF2 custom training loops."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfdata_checkpoint import atomic_restore, iterator_state, restore_policy
from tfdata_checkpoint.background_writes import CheckpointWrites
from tfdata_checkpoint.retention import CheckpointRetention
from tfdata_checkpoint.save_policy import Clock, SavePolicy

logger = logging.getLogger(__name__)


class IteratorCheckpointManager:
    """Saves and restores one tf.data iterator every N steps or seconds (eager).

    The checkpoint of step `s` is `<directory>/<checkpoint_name>-<s>`; the
    state file `<directory>/<latest_filename>` is readable by
    `tf.train.latest_checkpoint(directory, latest_filename=...)`.

    With `async_save` (the default) `save` returns as soon as the iterator
    state is captured (a shallow copy: buffered elements are shared, not
    copied) and the files are written in the background. A save that comes
    while the previous write is still running waits for it first, and logs
    that it did. The failure of a background write is raised by the next
    `save`, `maybe_save` or `wait` call, never dropped; call `wait()` before
    the program ends.

    Retention keeps the newest `max_to_keep` committed checkpoints; older ones
    are deleted only after a newer one has committed.

    Example:

    ```python
    iterator = iter(dataset)
    manager = tfdata_checkpoint.IteratorCheckpointManager(
        iterator, "/tmp/run", save_steps=100)
    manager.restore_or_initialize(step=int(model_ckpt.step))
    for step in range(start, end):
        train_step(next(iterator))
        manager.maybe_save(step + 1)
    manager.wait()
    ```

    Args:
      iterator: the iterator to checkpoint, `iter(dataset)`.
      directory: the checkpoint directory (any TensorFlow filesystem).
      max_to_keep: how many committed checkpoints to keep; None or 0 keeps all.
      save_steps: for `maybe_save`: save every this many steps.
      save_secs: for `maybe_save`: save every this many seconds. At most one
        of `save_steps` / `save_secs`; with neither, only `save` saves.
      async_save: write in the background.
      checkpoint_name: file name of a checkpoint before `-<step>`.
      latest_filename: name of the state file.
      external_state_policy: 'fail', 'warn' or 'ignore' (see `save_iterator`).
      num_shards: shard files per checkpoint; None picks from size and cores.
      fsync: make each checkpoint durable before it commits.
      clock: time source in seconds for `save_secs` (for tests).
      on_corrupt: what `restore_or_initialize` does with a damaged checkpoint
        or state file: 'raise' (default) `tf.errors.DataLossError` (or
        `NotFoundError` for a missing shard) naming the file; 'fallback'
        restore the newest one that is not damaged, logging each one skipped
        and why, or start over (with a warning) if none is left. See
        `restore_policy`.

    Raises:
      ValueError: on a bad argument, naming it.

    The first save takes a lock on `<directory>/<checkpoint_name>.lock`: a
    second process saving the same checkpoints into the same local directory
    gets `tf.errors.FailedPreconditionError` (see `writer_lock`).
    """

    def __init__(
        self,
        iterator: Any,
        directory: str,
        *,
        max_to_keep: int | None = 5,
        save_steps: int | None = None,
        save_secs: float | None = None,
        async_save: bool = True,
        checkpoint_name: str = "input.ckpt",
        latest_filename: str = "checkpoint_input",
        external_state_policy: str = "fail",
        num_shards: int | None = None,
        fsync: bool = True,
        clock: Clock | None = None,
        on_corrupt: str = "raise",
    ) -> None:
        self._on_corrupt = restore_policy.check_on_corrupt(on_corrupt)
        if not tf.executing_eagerly():
            raise ValueError(
                "IteratorCheckpointManager needs eager execution; in graph mode use "
                "CheckpointInputPipelineHook"
            )
        iterator_state.iterator_resource(iterator)  # ValueError if not an iterator
        iterator_state.external_state_policy_value(external_state_policy)
        if directory is None:
            raise ValueError("directory must be set")
        iterator_state.check_num_shards(num_shards)
        if save_steps is None and save_secs is None:
            self._policy: SavePolicy | None = None
        else:
            self._policy = SavePolicy(save_steps, save_secs, clock=clock)
        self._iterator = iterator
        self._external_state_policy = external_state_policy
        self._num_shards = num_shards
        self._fsync = bool(fsync)
        self._async_save = bool(async_save)
        self._retention = CheckpointRetention(
            os.fspath(directory),
            checkpoint_name,
            latest_filename=latest_filename,
            max_to_keep=max_to_keep,
        )
        self._writes = CheckpointWrites(self._retention, asynchronous=self._async_save)

    @property
    def directory(self) -> str:
        """The checkpoint directory."""
        return self._retention.directory

    @property
    def latest_checkpoint(self) -> str | None:
        """The prefix of the newest committed checkpoint, or None.

        A checkpoint still being written in the background is not included.
        """
        return self._retention.latest()

    @property
    def checkpoints(self) -> list[str]:
        """Prefixes of the committed checkpoints kept, oldest first."""
        return self._retention.committed_checkpoints()

    def save(self, step: int) -> str:
        """Saves the iterator as the checkpoint of `step`.

        Returns:
          The checkpoint prefix; with `async_save`, it commits later (see
          `wait`).

        Raises:
          tf.errors.OpError: the failure of the previous background write, or
            of this save when synchronous.
        """
        step = _check_step(step)
        self._writes.poll()
        prefix = self._writes.save(step, self._start_save)
        if self._policy is not None:
            self._policy.record_save(step)
        return prefix

    def maybe_save(self, step: int) -> str | None:
        """Saves if the save policy says a checkpoint is due at `step`.

        Also raises the failure of a finished background write, if any, so
        that it surfaces at the step after it happened.

        Returns:
          The checkpoint prefix if a save started, else None.

        Raises:
          ValueError: if neither `save_steps` nor `save_secs` was given.
        """
        if self._policy is None:
            raise ValueError("maybe_save needs save_steps or save_secs")
        step = _check_step(step)
        self._writes.poll()
        if not self._policy.should_save(step):
            return None
        return self.save(step)

    def wait(self) -> None:
        """Waits for the background write, if any, and raises its failure."""
        self._writes.wait()

    def restore(self, prefix: str) -> None:
        """Restores the iterator from the checkpoint `prefix`."""
        iterator_state.restore_iterator(self._iterator, prefix)

    def restore_or_initialize(self, step: int | None = None) -> str | None:
        """Restores the latest checkpoint, if any, into the iterator.

        Args:
          step: the global step the model was restored to, if any. Then the
            checkpoint of exactly that step is restored; where there is none,
            the newest one before it, with a warning; where all are newer,
            none (the iterator starts over), with a warning.

        Damaged checkpoints are handled as `on_corrupt` says.

        Returns:
          The prefix restored from, or None when the iterator is left as is.

        Raises:
          tf.errors.DataLossError / NotFoundError: with on_corrupt='raise', a
            damaged checkpoint or state file, naming the file.
          tf.errors.OpError: the checkpoint does not fit the iterator's pipeline.
        """
        self._writes.wait()
        model_step = None if step is None else _check_step(step)

        def restore(restore_step: int) -> None:
            prefix = self._retention.prefix(restore_step)
            logger.info("Restoring input pipeline checkpoint %s.", prefix)
            atomic_restore.restore_eagerly([self._iterator], [prefix])

        restored = restore_policy.restore_newest_good(
            self._retention, restore, on_corrupt=self._on_corrupt, model_step=model_step
        )
        if restored is None:
            return None
        if self._policy is not None:
            self._policy.record_save(restored)
        return self._retention.prefix(restored)

    def _start_save(self, prefixes: Sequence[str]) -> None:
        (prefix,) = prefixes
        iterator_state.save_iterator(
            self._iterator,
            prefix,
            external_state_policy=self._external_state_policy,
            num_shards=self._num_shards,
            fsync=self._fsync,
            asynchronous=self._async_save,
        )


def _check_step(step: Any) -> int:
    if hasattr(step, "numpy"):
        step = step.numpy()
    try:
        as_int = int(step)
    except (TypeError, ValueError):
        raise ValueError(f"step must be a non-negative integer, got {step!r}") from None
    if isinstance(step, bool) or as_int != step or as_int < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    return as_int
