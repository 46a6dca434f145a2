"""Starting a save of our files beside a TF checkpoint: token, writer lock, sweep.

Every save of the input state into a TF checkpoint (`TrackableIterator`,
`make_saveable_from_iterator`) gets a new token, so that its files are told
apart from those of any other write of the same TF checkpoint (`layout`). The
token is *in flight* from here until the thread that started it starts its
next save, or until TF's bundle names it: TF writes checkpoints one after
the other on a thread (eagerly, and on the background thread of TF's async
checkpointing), so a thread's earlier save is over once it starts a new one.

Before each save, the files that belong to no TF checkpoint any more are
deleted (`storage.beside_collector`): those of TF checkpoints deleted since
(by `tf.train.CheckpointManager`'s `max_to_keep`, a Saver, a user) and of
saves that were killed or failed. The files of a TF checkpoint deleted after
the last save of a process go when the process exits (`atexit`), or, if it is
killed, at the next save.

The first save of TF checkpoints `<base>[-<n>]` into a directory takes the
writer lock `<base>.tfdc.lock` (`storage.writer_lock`), kept until the process
ends: a second process writing the same TF checkpoints gets
`tf.errors.FailedPreconditionError` instead of deleting the first one's files.
"""

from __future__ import annotations

import atexit
import logging
import secrets
import threading

from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.storage import beside_collector
from tfdata_checkpoint._src.storage.writer_lock import WriterLock

logger = logging.getLogger(__name__)

_lock = threading.Lock()
# Token -> (TF checkpoint prefix, ident of the thread saving it).
_in_flight: dict[str, tuple[str, int]] = {}
# (directory, base) -> the writer lock held for it.
_writers: dict[tuple[str, str], WriterLock] = {}
_atexit_registered = False


def _resolve_committed() -> None:
    """Drops in-flight tokens that their TF checkpoint names (they committed)."""
    by_prefix: dict[str, list[str]] = {}
    for token, (tf_prefix, _) in _in_flight.items():
        by_prefix.setdefault(tf_prefix, []).append(token)
    for tf_prefix, tokens in by_prefix.items():
        named = beside_collector.referenced_tokens(tf_prefix) or frozenset()
        for token in tokens:
            if token in named:
                del _in_flight[token]


def begin_save(tf_prefix: str, num_parts: int) -> list[str]:
    """Our prefixes for the `num_parts` iterators of a new save of the TF checkpoint `tf_prefix`.

    Takes the writer lock (first save only) and removes garbage first.

    Raises:
      tf.errors.FailedPreconditionError: another process writes these TF checkpoints.
    """
    global _atexit_registered
    directory, name = layout.split_path(tf_prefix)
    base = layout.tf_checkpoint_base(name)
    with _lock:
        writer = _writers.get((directory, base))
        if writer is None:
            writer = WriterLock(directory or ".", layout.beside_lock_basename(base))
            writer.acquire()
            _writers[(directory, base)] = writer
        me = threading.get_ident()
        for token, (_, thread) in list(_in_flight.items()):
            if thread == me:
                del _in_flight[token]
        _resolve_committed()
        beside_collector.sweep(directory, base, _in_flight)
        token = secrets.token_hex(8)
        _in_flight[token] = (tf_prefix, me)
        if not _atexit_registered:
            atexit.register(sweep_all)
            _atexit_registered = True
    return [layout.beside_prefix(tf_prefix, token, part) for part in range(num_parts)]


def sweep_all() -> None:
    """Removes garbage beside every TF checkpoint this process wrote (also at exit)."""
    with _lock:
        me = threading.get_ident()
        for token, (_, thread) in list(_in_flight.items()):
            if thread == me:
                del _in_flight[token]
        _resolve_committed()
        for directory, base in list(_writers):
            try:
                beside_collector.sweep(directory, base, _in_flight)
            except Exception as error:  # noqa: BLE001 - at exit nothing can handle it
                logger.warning("Cannot remove old input state files in %s: %s", directory, error)
