"""Writing checkpoints in the background, shared by the hook and the manager.

The native save op returns once the iterator state is captured and writes the
files on a thread of its own, one save at a time per directory. This module
keeps track of the write in flight so that

- its failure is raised by the next `poll()` (called once per training step),
  i.e. never lost: a thread blocks in the wait op and keeps the outcome;
- a new save first waits for the previous write (and logs that it had to);
- the state file and retention are updated only after a commit.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Callable

import tensorflow as tf
from tensorflow.python.eager import context

from tfdata_checkpoint import ops
from tfdata_checkpoint._src import iterator_state, layout
from tfdata_checkpoint._src.retention import CheckpointRetention
from tfdata_checkpoint._src.storage.writer_lock import WriterLock

logger = logging.getLogger(__name__)

# Starts the save of every part of one checkpoint, given their prefixes.
StartSave = Callable[[Sequence[str]], None]


class _Write:
    """One checkpoint whose parts are being written in the background."""

    def __init__(self, step: int, prefixes: Sequence[str]) -> None:
        self.step = step
        self.prefixes = list(prefixes)
        self.error: BaseException | None = None
        directories = list(dict.fromkeys(layout.prefix_directory(p) for p in self.prefixes))
        # A daemon thread so that a write stuck on a dead filesystem cannot
        # keep the interpreter from exiting.
        self._thread = threading.Thread(
            target=self._wait,
            args=(directories,),
            name=f"tfdata-checkpoint-wait-{step}",
            daemon=True,
        )
        self._thread.start()

    def _wait(self, directories: list[str]) -> None:
        try:
            # Eagerly, on this thread: the kernel then blocks this thread only
            # (not a session's inter-op pool), works after the session that
            # started the save has closed, and releases the GIL meanwhile.
            with context.eager_mode():
                for directory in directories:
                    ops.wait_for_iterator_shards(directory)
        except BaseException as error:  # noqa: BLE001 - handed to the training thread
            self.error = error

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> None:
        self._thread.join()


def _release_bases(keys: list[str]) -> None:
    for key in keys:
        iterator_state.release_incremental_base(key)


class CheckpointWrites:
    """Saves checkpoints of one `CheckpointRetention`, maybe in the background.

    Not thread-safe: call it from the training thread only. The directory must
    not receive asynchronous saves from anything else, since the native wait is
    per directory.

    Args:
      retention: where the checkpoints go and which to keep.
      asynchronous: write in the background (True) or before `save` returns.
      writer: what writes, named in the error of a second writer of the same
        checkpoints in this process (see `WriterLock`).
      remedy: what such a second writer should do, for its error.
      incremental: whether saves may reference what the previous checkpoint of
        this writer holds instead of writing it again (`incremental_keys`).
    """

    def __init__(
        self,
        retention: CheckpointRetention,
        *,
        asynchronous: bool,
        writer: str = "writer",
        remedy: str = "",
        incremental: bool = False,
    ) -> None:
        self._retention = retention
        self._asynchronous = bool(asynchronous)
        self._incremental = bool(incremental)
        self._pending: _Write | None = None
        self._lock = WriterLock(
            retention.directory, retention.basename, writer=writer, remedy=remedy
        )
        # What the native writer holds for incremental saves (the last
        # checkpoint's buffered tensors) goes with this object at the latest,
        # not with the process: a manager dropped without close() must not
        # keep a whole buffer alive. Not at exit: the process frees it then.
        self._release_bases = weakref.finalize(
            self, _release_bases, [key for key in self.incremental_keys if key]
        )
        self._release_bases.atexit = False

    def set_finished_probe(self, is_finished: Callable[[], bool] | None) -> None:
        """See `WriterLock.set_finished_probe`."""
        self._lock.set_finished_probe(is_finished)

    @property
    def retention(self) -> CheckpointRetention:
        """The directory and retention this object writes into."""
        return self._retention

    @property
    def incremental_keys(self) -> list[str]:
        """Per part, the `incremental_key` its saves pass ("" when not incremental)."""
        return [
            self._retention.incremental_key(part) if self._incremental else ""
            for part in range(self._retention.num_parts)
        ]

    def busy(self) -> bool:
        """Whether a background write is still running (a save now would wait for it)."""
        return self._pending is not None and not self._pending.done()

    @property
    def pending_step(self) -> int | None:
        """The step of the checkpoint being written, or None."""
        return None if self._pending is None else self._pending.step

    def save(self, step: int, start_save: StartSave) -> str:
        """Saves the checkpoint of `step` through `start_save(prefixes)`.

        First waits for the previous background write, if still running
        (logged, since it holds the training step), and raises its error.
        The first save takes the writer lock (see `claim`).

        Returns:
          The prefix of the checkpoint (committed unless asynchronous).
        """
        self.claim()
        if self._pending is not None:
            if not self._pending.done():
                logger.warning(
                    "Checkpoint of step %d is due but the write of step %d is still "
                    "running; waiting for it (the training step is held meanwhile).",
                    step,
                    self._pending.step,
                )
                started = time.monotonic()
                self._finish()
                logger.warning(
                    "Waited %.3f s for the write of the previous checkpoint.",
                    time.monotonic() - started,
                )
            else:
                self._finish()
        retention = self._retention
        prefixes = [retention.part_prefix(step, part) for part in range(retention.num_parts)]
        logger.info("Saving input pipeline checkpoint %s.", prefixes[0])
        try:
            start_save(prefixes)
        except BaseException:
            self._lock.note_failure()
            raise
        if self._asynchronous:
            self._pending = _Write(step, prefixes)
        else:
            self._commit(step)
        return prefixes[0]

    def claim(self) -> None:
        """Takes the writer lock of the directory and basename, if not held yet.

        Also notices a lock file that was removed since (see `WriterLock`).

        Raises:
          tf.errors.FailedPreconditionError: another process writes there, or
            another writer of this process.
        """
        self._lock.acquire()

    def release(self) -> None:
        """Waits for the background write, then gives the writer lock up.

        Also lets go of the tensors held for incremental saves: the next
        save after a release writes every tensor.
        """
        try:
            self.wait()
        finally:
            try:
                _release_bases([key for key in self.incremental_keys if key])
            finally:
                self._lock.release()

    def poll(self) -> None:
        """Finishes the background write if it is over; raises its error.

        Cheap when the write is still running: it does not wait.
        """
        if self._pending is not None and self._pending.done():
            self._finish()

    def wait(self) -> None:
        """Waits for the background write, if any; raises its error."""
        if self._pending is not None:
            self._finish()

    def _finish(self) -> None:
        write, self._pending = self._pending, None
        write.join()
        if write.error is not None:
            self._lock.note_failure()
            raise write.error
        self._commit(write.step)

    def _commit(self, step: int) -> None:
        if not self._retention.is_committed(step):
            # Written and renamed into place, then removed by someone else:
            # the directory is not ours alone any more, which must not pass quietly.
            raise tf.errors.NotFoundError(
                None,
                None,
                f"Input pipeline checkpoint {self._retention.prefix(step)} was committed, "
                "then disappeared before it could be recorded",
            )
        self._lock.note_success()
        deleted = self._retention.record(step)
        if deleted:
            logger.info("Deleted old input pipeline checkpoints: %s", ", ".join(deleted))
