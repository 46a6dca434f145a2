"""One writing process per checkpoint directory and basename.

Two jobs that write the same checkpoints (a misconfigured job: the same
`model_dir` for two trainers, or two workers under the same task id) would
delete each other's files and interleave their steps. The writer of
`<directory>/<basename>-<step>` therefore holds an exclusive `flock(2)` on
`<directory>/<basename>.lock` while it may write; a second process asking for
it gets `tf.errors.FailedPreconditionError` naming the directory, the basename
and the process holding it, before it has written anything.

The lock belongs to the process: the kernel drops it when the process ends,
however it ends (SIGKILL included), so a crashed job never blocks its
restart. Writers in the same process share it (counted), so that a job that
rebuilds its hook or manager after a failure carries on; such writers must
take turns (the new one after the old one's writes ended), since each
commit removes the files of saves that have not committed. The lock file
itself stays (deleting it would let two processes lock two different files).

Limits: only local filesystems have `flock`. On other TensorFlow filesystems
(`gs://`, `s3://`, `hdfs://`) there is no lock and no detection across
processes; `ram://` is private to its process anyway. NFS gives `flock` only
where the client emulates it with POSIX locks (Linux does).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import threading
import weakref

import tensorflow as tf

logger = logging.getLogger(__name__)

_registry_lock = threading.Lock()
# Lock file path -> [file descriptor, number of holders in this process].
_held: dict[str, list[int]] = {}


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
    return os.path.join(os.path.realpath(local), basename + ".lock")


def _acquire(path: str, directory: str, basename: str) -> bool:
    """Takes the lock; False if the lock file cannot be made."""
    with _registry_lock:
        held = _held.get(path)
        if held is not None:
            held[1] += 1
            return True
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            # The save itself will fail on the same directory, with its own
            # clear error (e.g. a file where the directory should be).
            logger.warning("Cannot create the writer lock %s: %s", path, error)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise tf.errors.FailedPreconditionError(
                None,
                None,
                f"Another process ({owner}) is writing input pipeline checkpoints "
                f"{basename!r} in {directory} (it holds {path}). Two jobs must not share "
                "a checkpoint directory and basename: give each its own directory.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        _held[path] = [fd, 1]
        return True


def _release(path: str) -> None:
    with _registry_lock:
        held = _held.get(path)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _held[path]
            os.close(held[0])  # Drops the flock.


class WriterLock:
    """The right to write checkpoints `basename` into `directory`.

    Args:
      directory: the checkpoint directory (any TensorFlow filesystem).
      basename: the checkpoint file name before `-<step>`.
    """

    def __init__(self, directory: str, basename: str) -> None:
        self._directory = directory
        self._basename = basename
        self._path = lock_path(directory, basename)
        self._finalizer: weakref.finalize | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._finalizer is not None and self._finalizer.alive

    def acquire(self) -> None:
        """Takes the lock if not held yet; a no-op on non-local filesystems.

        Raises:
          tf.errors.FailedPreconditionError: another process holds it.
        """
        if self._path is None or self.held:
            return
        if not _acquire(self._path, self._directory, self._basename):
            return
        # Released when this object goes away, if nobody released it before.
        self._finalizer = weakref.finalize(self, _release, self._path)

    def release(self) -> None:
        """Gives the lock up (other processes may write again)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
