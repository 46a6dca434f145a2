"""IteratorCheckpointManager: input checkpoints for TF2 custom training loops."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfdata_checkpoint._src import (
    arguments,
    atomic_restore,
    distributed_iterators,
    iterator_state,
    layout,
    preemption,
)
from tfdata_checkpoint._src.background_writes import CheckpointWrites
from tfdata_checkpoint._src.policy import restore_policy
from tfdata_checkpoint._src.policy.save_policy import (
    Clock,
    SavePolicy,
    check_on_busy,
    skips_when_busy,
)
from tfdata_checkpoint._src.retention import CheckpointRetention

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
    manager.restore_or_initialize(step=int(model_ckpt.step))  # the model's step
    for step in range(int(model_ckpt.step), end):
        train_step(next(iterator))
        manager.maybe_save(step + 1)  # saves at 100, 200, ...
    manager.wait()
    ```

    Pre-emption (`preemption_signals=(signal.SIGTERM,)`): the handlers are
    installed by the constructor (in the main thread) and put back by
    `close()` if no signal came (after one, later signals stay ignored until
    the process ends). After a signal the next `maybe_save(step)` (or
    `save_if_preempted(step)`) saves `step` at once, whatever the policy
    says, waits for the commit, logs the time since the signal and sets
    `preempted`. Then save the model at the same step and leave the loop:

    ```python
    manager = tfdata_checkpoint.IteratorCheckpointManager(
        iterator, "/tmp/run", save_steps=100, preemption_signals=(signal.SIGTERM,))
    for step in range(start, end):
        train_step(next(iterator))
        manager.maybe_save(step + 1)
        if manager.preempted:
            model_manager.save(checkpoint_number=step + 1)
            break
    manager.close()
    ```

    The input commits before the model: killed in between, the model
    restores its previous checkpoint, whose input checkpoint exists when
    both save on the same steps. Further signals are logged and ignored.
    With TensorFlow's `PreemptionCheckpointHandler` let it own SIGTERM and
    save the input from its `TerminationConfig(save_fn=...)` instead
    (docs/PREEMPTION.md).

    Args:
      iterator: the iterator to checkpoint, `iter(dataset)`; or the iterator of
        a distributed dataset whose replicas each have a plain iterator
        (MirroredStrategy's `distribute_datasets_from_function` with
        `InputOptions(experimental_replication_mode=PER_REPLICA,
        experimental_fetch_to_device=False)`): all replicas are saved as the
        parts of one checkpoint and restored all or none, into a distributed
        iterator built the same way.
      directory: the checkpoint directory (any TensorFlow filesystem).
      max_to_keep: how many committed checkpoints to keep; None or 0 keeps all.
      save_steps: for `maybe_save`: save at the multiples of this many steps
        (a multiple passed over is saved at the next step), so that the input
        checkpoints are at the steps of a model saved every `save_steps`
        steps.
      save_secs: for `maybe_save`: save every this many seconds (the first
        `maybe_save` saves, then each one this long after the last). At most one
        of `save_steps` / `save_secs`; with neither, only `save` saves.
      async_save: write in the background.
      checkpoint_name: file name of a checkpoint before `-<step>`; one per
        iterator saved into the same directory.
      latest_filename: name of the state file; by default `checkpoint_input`
        for the default `checkpoint_name` (`input.ckpt`), else
        `checkpoint_<checkpoint_name without .ckpt>` (`checkpoint_eval` for
        `eval.ckpt`), so that managers of two names keep two state files.
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
      preemption_signals: signals that mean pre-emption, e.g.
        `(signal.SIGTERM,)`; none by default (nothing is installed).
      incremental: a save writes only the tensors (buffered elements) that
        the previous checkpoint of this manager does not hold; the rest are
        references into that checkpoint's shards (docs/INCREMENTAL.md).
        Retention keeps every file a kept checkpoint references. The tensors
        of the last save are held until the next one (consumed elements stay
        alive that long). False writes every tensor each time.
      on_busy: what `maybe_save` does when a save is due while the previous
        background write is still running: 'wait' (default) for it, holding
        the step, or 'skip' that save (logged; the next due one is taken).
        `save`, pre-emption saves and `close` always wait.

    Raises:
      ValueError: on a bad argument, naming it; with `preemption_signals`,
        when constructed outside the main thread; a distributed iterator built
        on TF's MultiDeviceIterator (see `distributed_iterators`).

    The first save takes a lock on `<directory>/<checkpoint_name>.lock`: a
    second process saving the same checkpoints into the same local directory
    gets `tf.errors.FailedPreconditionError` (see `writer_lock`), and so does
    a second manager (or hook) of this process writing the same directory and
    `checkpoint_name` (say a train and an eval iterator): give each its own
    `checkpoint_name`. `close()` (or garbage collection) lets the name go.
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
        checkpoint_name: str = layout.DEFAULT_BASENAME,
        latest_filename: str | None = None,
        external_state_policy: str = "fail",
        num_shards: int | None = None,
        fsync: bool = True,
        clock: Clock | None = None,
        on_corrupt: str = "raise",
        preemption_signals: Sequence[int] = (),
        incremental: bool = True,
        on_busy: str = "wait",
    ) -> None:
        self._on_corrupt = restore_policy.check_on_corrupt(on_corrupt)
        self._on_busy = check_on_busy(on_busy)
        self._preemption = preemption.PreemptionWatcher(
            preemption_signals, owner="IteratorCheckpointManager"
        )
        if not tf.executing_eagerly():
            raise ValueError(
                "IteratorCheckpointManager needs eager execution; in graph mode use "
                "CheckpointInputPipelineHook"
            )
        # ValueError if not an iterator, or a distributed one that cannot be saved.
        self._parts = distributed_iterators.component_iterators(iterator)
        iterator_state.external_state_policy_value(external_state_policy)
        if directory is None:
            raise ValueError("directory must be set")
        iterator_state.check_num_shards(num_shards)
        if save_steps is None and save_secs is None:
            self._policy: SavePolicy | None = None
        else:
            # On multiples of save_steps: where a model saved as often is.
            self._policy = SavePolicy(save_steps, save_secs, clock=clock, aligned=True)
        self._iterator = iterator
        self._external_state_policy = external_state_policy
        self._num_shards = num_shards
        self._fsync = bool(fsync)
        self._async_save = bool(async_save)
        if latest_filename is None:
            latest_filename = layout.latest_filename_for_basename(checkpoint_name)
        self._retention = CheckpointRetention(
            os.fspath(directory),
            checkpoint_name,
            latest_filename=latest_filename,
            max_to_keep=max_to_keep,
            num_parts=len(self._parts),
        )
        self._writes = CheckpointWrites(
            self._retention,
            asynchronous=self._async_save,
            writer="IteratorCheckpointManager",
            remedy=(
                "Give each iterator its own checkpoint_name=... (e.g. "
                "IteratorCheckpointManager(eval_iterator, directory, checkpoint_name="
                "'eval.ckpt')) or its own directory. "
            ),
            incremental=arguments.boolean("incremental", incremental),
        )
        self._last_saved_step: int | None = None
        # Last: a bad argument above must not leave handlers installed.
        self._preemption.install()

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
    def preempted(self) -> bool:
        """Whether the checkpoint saved for a pre-emption signal has committed.

        Set by the `maybe_save` / `save_if_preempted` that saved it, not by
        the signal itself: a signal arriving between `maybe_save` and this
        check is handled by the next `maybe_save`, so the loop never saves
        the model at a step whose input checkpoint was not made.
        """
        return self._preemption.committed_prefix is not None

    @property
    def seconds_to_preemption_commit(self) -> float | None:
        """Seconds from the pre-emption signal to the commit of its checkpoint, or None."""
        return self._preemption.seconds_to_commit

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
        self._record_save(step)
        return prefix

    def save_if_preempted(self, step: int) -> str | None:
        """Saves `step` and waits for its commit if a pre-emption signal arrived.

        The first call after the signal saves (see `preemption_signals`);
        later ones do nothing. Also called by `maybe_save`.

        Returns:
          The committed prefix if this call saved, else None.

        Raises:
          tf.errors.OpError: the pre-emption save failed (a failure of the
            background write before it is logged, not raised).
        """
        step = _check_step(step)
        if not self._preemption.requested or self._preemption.committed_prefix is not None:
            return None
        return preemption.save_on_preemption(
            self._preemption,
            self._writes,
            step,
            self._start_save,
            last_saved_step=self._last_saved_step,
            on_saved=self._record_save,
        )


    def maybe_save(self, step: int) -> str | None:
        """Saves if the save policy says a checkpoint is due at `step`.

        Also raises the failure of a finished background write, if any, so
        that it surfaces at the step after it happened. After a pre-emption
        signal, saves `step` whatever the policy says and waits for the
        commit (`save_if_preempted`).

        Returns:
          The checkpoint prefix if a save started, else None.

        Raises:
          ValueError: if neither `save_steps` nor `save_secs` was given.
        """
        if self._policy is None:
            raise ValueError("maybe_save needs save_steps or save_secs")
        step = _check_step(step)
        if self._preemption.requested and self._preemption.committed_prefix is None:
            return self.save_if_preempted(step)
        self._writes.poll()
        if not self._policy.should_save(step):
            return None
        if skips_when_busy(self._on_busy, self._writes.busy()):
            logger.info(
                "Skipping the input checkpoint of step %d: the write of step %d is still "
                "running (on_busy='skip').", step, self._writes.pending_step)
            self._policy.record_save(step)  # the next due save is the next one
            return None
        return self.save(step)

    def wait(self) -> None:
        """Waits for the background write, if any, and raises its failure."""
        self._writes.wait()

    def close(self) -> None:
        """Waits for the background write, then lets other writers have the name.

        Until then (or until this manager is garbage-collected) a second
        manager or hook of the same directory and `checkpoint_name` in this
        process is refused at its first save. Saving again after `close`
        takes the name back, if it is free. Also puts back the signal
        handlers unless pre-empted.

        Raises:
          tf.errors.OpError: the failure of the background write (the name is
            let go, and the handlers put back, all the same).
        """
        try:
            self._writes.release()
        finally:
            self._preemption.release()

    def restore(self, prefix: str) -> None:
        """Restores the iterator from the checkpoint `prefix`."""
        if len(self._parts) == 1:
            iterator_state.restore_iterator(self._parts[0], prefix)
            return
        step = self._retention.step_of(prefix)
        if step is None or prefix != self._retention.prefix(step):
            raise ValueError(
                f"prefix {prefix!r} is not a checkpoint of this manager "
                f"({layout.join_path(self.directory, self._retention.basename)}-<step>): a "
                "distributed iterator's parts "
                "are found from the step"
            )
        self._restore_step(step)

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

        restored = restore_policy.restore_newest_good(
            self._retention, self._restore_step, on_corrupt=self._on_corrupt, model_step=model_step
        )
        if restored is None:
            return None
        self._record_save(restored)
        return self._retention.prefix(restored)

    def _record_save(self, step: int) -> None:
        self._last_saved_step = step
        if self._policy is not None:
            self._policy.record_save(step)

    def _restore_step(self, step: int) -> None:
        retention = self._retention
        logger.info("Restoring input pipeline checkpoint %s.", retention.prefix(step))
        distributed_iterators.check_part_count(retention, step)
        prefixes = [retention.part_prefix(step, part) for part in range(len(self._parts))]
        atomic_restore.restore_eagerly(self._parts, prefixes)

    def _start_save(self, prefixes: Sequence[str]) -> None:
        # Every part's state is captured before this returns (the writes may
        # go on in the background): the parts are of one moment.
        for part, prefix, key in zip(self._parts, prefixes, self._writes.incremental_keys):
            iterator_state.save_iterator(
                part,
                prefix,
                external_state_policy=self._external_state_policy,
                num_shards=self._num_shards,
                fsync=self._fsync,
                asynchronous=self._async_save,
                incremental_key=key,
            )


def _check_step(step: Any) -> int:
    if hasattr(step, "numpy"):  # a scalar tensor, e.g. the model's step variable
        step = step.numpy()
    return arguments.integer("step", step, minimum=0)
