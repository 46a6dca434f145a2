"""One writer per checkpoint directory and basename: per process, and inside one.

Two writers of the same checkpoints would delete each other's files and
interleave their steps; inside one process (a train and an eval iterator
saved under one name), a fresh process would then restore one iterator from
the other's elements. The writer of `<directory>/<basename>-<step>` therefore
holds an exclusive `flock(2)` on `<directory>/<basename>.lock` while it may
write, and it is the only writer of that name in its process:

- another process asking for it gets `tf.errors.FailedPreconditionError`
  naming the directory, the basename and the process holding it;
- another writer of the same process (a second `IteratorCheckpointManager`
  or hook of the same directory and name) gets the same error, saying what to
  do: give it its own `checkpoint_name=` (or directory), or close the first.

The lock belongs to the process: the kernel drops it when the process ends,
however it ends (SIGKILL included), so a crashed job never blocks its
restart. Inside the process a writer gives the name up when it is released
(`IteratorCheckpointManager.close()`, the hook's `end()`), when it is
garbage-collected, when its last save failed (until it saves again), or when
its probe says it is finished (a hook whose session was closed: a failed
session skips `end()`). So a job that rebuilds its hook or manager after a
failure carries on; a writer asking for a name held by a
live writer first lets the garbage collector run once, since an old manager
is often kept alive only by the reference cycle of the exception it raised.

The lock file stays (deleting it would let two processes lock two different
files). If it disappears anyway (the checkpoint directory removed and made
again by the next save), the holder notices at its next save (the file at the
path is no longer the one it locked) and locks the new file, or, if another
process got there first, fails with the same error instead of writing beside it.

The lock file is where TensorFlow's filesystem writes the checkpoints: the
directory is cleaned lexically first ("a/link/../b" is "a/b", as TensorFlow
cleans every path), then resolved to a real path to tell writers of one
directory spelled two ways apart from writers of two directories.

Limits: only local filesystems have `flock`. On other TensorFlow filesystems
(`gs://`, `s3://`, `hdfs://`) there is no lock and no detection across
processes (nor inside one); `ram://` is private to its process. NFS gives
`flock` only where the client emulates it with POSIX locks (Linux does).
"""

from __future__ import annotations

import errno
import fcntl
import gc
import logging
import os
import socket
import threading
import weakref
from typing import Callable

import tensorflow as tf

from tfdata_checkpoint._src import layout

logger = logging.getLogger(__name__)

# Reentrant: a garbage collection inside a locked section may run a
# finalizer that releases a lock.
_registry_lock = threading.RLock()


class _Holding:
    """A lock file this process holds, and the writer holding it."""

    def __init__(self, fd: int, owner: WriterLock) -> None:
        self.fd = fd
        self.identity = _identity(os.fstat(fd))
        self.owner = weakref.ref(owner)
        self.token = object()  # tells the current holder's release from a stale one


# Lock file path -> what this process holds there.
_held: dict[str, _Holding] = {}


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def _local_path(directory: str) -> str | None:
    if directory.startswith("file://"):
        return directory[len("file://") :] or "/"
    if "://" in directory:
        return None
    return directory


def lock_path(directory: str, basename: str) -> str | None:
    """The lock file of `basename` in `directory`, or None where there is none."""
    local = _local_path(directory)
    if local is None:
        return None
    # Lexically first, as TensorFlow's filesystem cleans the paths it writes.
    cleaned = os.path.normpath(os.path.abspath(local))
    return os.path.join(os.path.realpath(cleaned), layout.lock_name(basename))


def _lock_file(path: str, directory: str, basename: str, *, again: bool = False) -> int | None:
    """An open, flock'ed descriptor of the lock file; None if it cannot be made.

    Raises:
      tf.errors.FailedPreconditionError: another process holds it.
    """
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        # The save itself will fail on the same directory, with its own
        # clear error (e.g. a file where the directory should be).
        logger.warning("Cannot create the writer lock %s: %s", path, error)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        since = (
            " The checkpoint directory (or its lock file) was removed and made again since "
            "this process took the lock, and the other process holds the new one."
            if again
            else ""
        )
        raise tf.errors.FailedPreconditionError(
            None,
            None,
            f"Another process ({owner}) is writing input pipeline checkpoints "
            f"{basename!r} in {directory} (it holds {path}).{since} Two jobs must not share "
            "a checkpoint directory and basename: give each its own directory.",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    return fd


def _release(path: str, token: object) -> None:
    with _registry_lock:
        holding = _held.get(path)
        if holding is None or holding.token is not token:
            return  # Taken over since by another writer of this process.
        del _held[path]
        os.close(holding.fd)  # Drops the flock.


class WriterLock:
    """The right to write checkpoints `basename` into `directory`.

    Args:
      directory: the checkpoint directory (any TensorFlow filesystem).
      basename: the checkpoint file name before `-<step>`.
      writer: what writes, for the error another writer of this process gets
        (e.g. "IteratorCheckpointManager").
      remedy: what a second writer of this process should do, for its error.
    """

    def __init__(
        self, directory: str, basename: str, *, writer: str = "writer", remedy: str = ""
    ) -> None:
        self._directory = directory
        self._basename = basename
        self._writer = writer
        self._remedy = remedy
        self._path = lock_path(directory, basename)
        self._finalizer: weakref.finalize | None = None
        self._is_finished: Callable[[], bool] | None = None
        self._failed = False

    @property
    def writer(self) -> str:
        """What writes, e.g. "IteratorCheckpointManager"."""
        return self._writer

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        with _registry_lock:
            holding = None if self._path is None else _held.get(self._path)
            return holding is not None and holding.owner() is self

    def set_finished_probe(self, is_finished: Callable[[], bool] | None) -> None:
        """`is_finished()` True lets another writer of this process take the lock over.

        For a writer that can be over without being released: a hook whose
        session failed (its `end()` never runs). The probe must not refer to
        the writer itself, or it would keep it from being garbage-collected.
        """
        self._is_finished = is_finished

    def note_failure(self) -> None:
        """The writer's last save failed: a writer built to carry on may take the lock over.

        The failed writer keeps it otherwise, and may save again: once it
        succeeds (`note_success`) it is a live writer like any other.
        """
        self._failed = True

    def note_success(self) -> None:
        """The writer's last save committed."""
        self._failed = False

    def acquire(self) -> None:
        """Takes the lock, or checks that it still holds it; a no-op on non-local filesystems.

        Raises:
          tf.errors.FailedPreconditionError: another process holds it, or
            another live writer of this process.
        """
        if self._path is None:
            return
        for collected in (False, True):
            with _registry_lock:
                holding = _held.get(self._path)
                other = None if holding is None else holding.owner()
                if other is self:
                    self._check_still_held(holding)
                    return
                if holding is None or other is None or other._finished():
                    self._take(holding)
                    return
            if not collected:
                # A writer kept alive only by a reference cycle (e.g. through
                # the exception it raised) is not a live writer.
                gc.collect()
        raise tf.errors.FailedPreconditionError(
            None,
            None,
            f"Another {other.writer} in this process is writing input pipeline checkpoints "
            f"{self._basename!r} in {self._directory}: two writers of one name would take "
            "each other's checkpoints for their own (a train and an eval iterator would "
            f"restore each other's elements). {self._remedy}Or let the other one go first "
            "(IteratorCheckpointManager.close(); a hook lets go at end() or once its "
            "session is closed).",
        )

    def release(self) -> None:
        """Gives the lock up (other writers may write again)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def _finished(self) -> bool:
        if self._failed:
            return True
        try:
            return self._is_finished is not None and bool(self._is_finished())
        except Exception:  # noqa: BLE001 - a broken probe means "not known to be over"
            return False

    def _take(self, holding: _Holding | None) -> None:
        """Registers this writer as the holder: of the file held, or of a new one."""
        if holding is not None:
            # A finished or collected writer of this process held it: take it over.
            if self._finalizer is not None:
                self._finalizer.detach()
            holding.owner = weakref.ref(self)
            holding.token = object()
            self._finalizer = weakref.finalize(self, _release, self._path, holding.token)
            self._check_still_held(holding)
            return
        fd = _lock_file(self._path, self._directory, self._basename)
        if fd is None:
            return
        holding = _Holding(fd, self)
        _held[self._path] = holding
        # Released when this object goes away, if nobody released it before.
        self._finalizer = weakref.finalize(self, _release, self._path, holding.token)

    def _check_still_held(self, holding: _Holding) -> None:
        """Locks the file now at the path if it is not the one locked (removed and made again)."""
        try:
            current = _identity(os.stat(self._path))
        except OSError:  # gone, or its directory is not one any more
            current = None
        if current == holding.identity:
            return
        # Whatever happens next, the old descriptor locks a file nobody sees.
        del _held[self._path]
        os.close(holding.fd)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        fd = _lock_file(self._path, self._directory, self._basename, again=True)
        if fd is None:
            return
        logger.warning(
            "The writer lock %s was removed (with its directory?) since it was taken; "
            "locked the new one.",
            self._path,
        )
        holding = _Holding(fd, self)
        _held[self._path] = holding
        self._finalizer = weakref.finalize(self, _release, self._path, holding.token)
