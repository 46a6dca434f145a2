"""Which shard files of other checkpoints a checkpoint reads (incremental saves).

An incremental save (docs/FORMAT.md, format 2.0) writes only the tensors the
writer's previous checkpoint did not hold; its index refers to the others
where they already are, in shard files of earlier checkpoints of the same
directory. Deleting a checkpoint must keep those files while a kept checkpoint
refers to them, and remove them once none does (`collector`,
`beside_collector`). The index says which files it refers to
(`referenced_files` of `describe_checkpoint`); since a committed index never
changes, what it says is remembered, keyed by the index's size and
modification time (a checkpoint saved again at the same prefix gets a new
index).
"""

from __future__ import annotations

import tensorflow as tf

from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.iterator_state import describe_checkpoint

# What `ReferencedFiles.of` returns for an index it could not read: what it
# refers to is unknown, so nothing it might refer to may be deleted.
UNKNOWN = None


class ReferencedFiles:
    """Remembers, per checkpoint prefix, the shard files its index refers to."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}

    def of(self, prefix: str) -> frozenset[str] | None:
        """Paths of the files of other checkpoints that `prefix` reads.

        Empty for a checkpoint that does not exist or refers to none (a full
        save, or one of format 1.x); `UNKNOWN` when its index cannot be read.
        """
        index = layout.index_path(prefix)
        try:
            stat = tf.io.gfile.stat(index)
        except tf.errors.NotFoundError:
            return frozenset()
        except tf.errors.OpError:
            return UNKNOWN
        signature = (int(stat.length), int(stat.mtime_nsec))
        known = self._known.get(index)
        if known is not None and known[0] == signature:
            return known[1]
        try:
            description = describe_checkpoint(prefix)
        except tf.errors.OpError:
            return UNKNOWN
        directory = layout.prefix_directory(prefix)
        files = frozenset(
            layout.join_path(directory, name) for name in description.get("referenced_files", ())
        )
        self._known[index] = (signature, files)
        return files

    def of_all(self, prefixes: list[str]) -> frozenset[str] | None:
        """The union of `of` over `prefixes`; `UNKNOWN` if any is unknown."""
        files: set[str] = set()
        for prefix in prefixes:
            referenced = self.of(prefix)
            if referenced is UNKNOWN:
                return UNKNOWN
            files |= referenced
        return frozenset(files)
