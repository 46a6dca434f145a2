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
from collections.abc import Sequence
from typing import Callable

import tensorflow as tf
from tensorflow.python.eager import context

from tfdata_checkpoint import ops
from tfdata_checkpoint.retention import CheckpointRetention
from tfdata_checkpoint.writer_lock import WriterLock

logger = logging.getLogger(__name__)

# Starts the save of every part of one checkpoint, given their prefixes.
StartSave = Callable[[Sequence[str]], None]


def _directory_of(prefix: str) -> str:
    # Mirrors the native PrefixDirectory, which keys background saves.
    slash = prefix.rfind("/")
    if slash < 0:
        return ""
    if slash == 0:
        return "/"
    if prefix[slash - 2 : slash + 1] == "://":
        return prefix[: slash + 1]
    return prefix[:slash]


class _Write:
    """One checkpoint whose parts are being written in the background."""

    def __init__(self, step: int, prefixes: Sequence[str]) -> None:
        self.step = step
        self.prefixes = list(prefixes)
        self.error: BaseException | None = None
        directories = list(dict.fromkeys(_directory_of(p) for p in self.prefixes))
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


class CheckpointWrites:
    """Saves checkpoints of one `CheckpointRetention`, maybe in the background.

    Not thread-safe: call it from the training thread only. The directory must
    not receive asynchronous saves from anything else, since the native wait is
    per directory.

    Args:
      retention: where the checkpoints go and which to keep.
      asynchronous: write in the background (True) or before `save` returns.
    """

    def __init__(self, retention: CheckpointRetention, *, asynchronous: bool) -> None:
        self._retention = retention
        self._asynchronous = bool(asynchronous)
        self._pending: _Write | None = None
        self._lock = WriterLock(retention.directory, retention.basename)

    @property
    def retention(self) -> CheckpointRetention:
        """The directory and retention this object writes into."""
        return self._retention

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
        start_save(prefixes)
        if self._asynchronous:
            self._pending = _Write(step, prefixes)
        else:
            self._commit(step)
        return prefixes[0]

    def claim(self) -> None:
        """Takes the writer lock of the directory and basename, if not held yet.

        Raises:
          tf.errors.FailedPreconditionError: another process writes there.
        """
        self._lock.acquire()

    def release(self) -> None:
        """Waits for the background write, then gives the writer lock up."""
        try:
            self.wait()
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
        deleted = self._retention.record(step)
        if deleted:
            logger.info("Deleted old input pipeline checkpoints: %s", ", ".join(deleted))
