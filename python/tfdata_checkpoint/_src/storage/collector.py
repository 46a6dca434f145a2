"""Deleting checkpoints, and what killed or failed saves left behind.

`delete` removes one checkpoint: its indexes first, so that an interrupted
deletion never leaves a checkpoint that looks whole, then its shards.

`sweep` removes leftovers. A save that dies before its index is renamed into
place leaves shard files (`<basename>-<step>.data-<nonce>-...`) and maybe a
temporary index (`<basename>-<step>.index.tmp-<nonce>`); a write of the state
file that dies leaves `<latest_filename>.tmp<hex>` (names: `layout`). No
reader ever takes these for a checkpoint (a checkpoint exists only through its
`.index`), but they take space, so the next save that commits removes them:

- every file of a step whose checkpoint has not committed (some part's
  `.index` missing);
- of a committed step, temporary indexes, and shard files that its index does
  not reference (a killed save of the same step, whose nonce differs);
- temporary state files.

Files that a kept checkpoint refers to (an incremental save reads tensors
from the shards of earlier checkpoints: `storage.references`) stay, under
whatever step they were written: `keep` names them. They go once no kept
checkpoint refers to them. When what a kept checkpoint refers to is unknown
(its index cannot be read), no data file is removed.

Only files of the writer's own basename are touched, so workers sharing a
directory under other basenames (`input_worker_1.ckpt`) are safe. The sweep
runs only when the writer has no write of its own in flight (right after a
commit is recorded), and the writer lock (`writer_lock`) keeps other processes
from writing under the same basename; both together make every such file
garbage.
"""

from __future__ import annotations

import logging
from collections.abc import Set as AbstractSet
from typing import Optional

import tensorflow as tf

from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.iterator_state import describe_checkpoint
from tfdata_checkpoint._src.storage.listing import CheckpointListing

logger = logging.getLogger(__name__)

# Paths of shard files that must stay (a kept checkpoint refers to them), or
# None: what kept checkpoints refer to is unknown, so every shard stays.
Keep = Optional[AbstractSet[str]]


def remove_if_present(path: str) -> None:
    """Removes the file `path`; a file already gone is not an error.

    A directory under a checkpoint file's name (damage that restores skip) is
    removed if empty; one with something in it is left, with a warning: it is
    not ours to empty.
    """
    try:
        tf.io.gfile.remove(path)
    except tf.errors.NotFoundError:
        pass
    except tf.errors.OpError:
        if not tf.io.gfile.isdir(path):
            raise
        if tf.io.gfile.listdir(path):
            logger.warning("Not removing %s: a directory (not empty) where a checkpoint "
                           "file should be.", path)
        else:
            tf.io.gfile.rmtree(path)


def delete(listing: CheckpointListing, step: int, keep: Keep = frozenset()) -> None:
    """Deletes the checkpoint of `step`: indexes first, then shards.

    Removing part 0's index first un-commits the checkpoint at once, so an
    interrupted deletion never leaves a checkpoint that looks whole. Shards
    in `keep` (paths) stay, and with `keep=None` every shard does.
    """
    listing.forget(step)
    for part in range(listing.num_parts):
        remove_if_present(layout.index_path(listing.part_prefix(step, part)))
    for _, directory, names in listing.part_listings():
        for name in names:
            # Also catches the temporary index of a killed write.
            if listing.step_of_file(name) != step:
                continue
            path = layout.join_path(directory, name)
            if listing.parse_leftover(name) == (step, None) or _may_remove(path, keep):
                remove_if_present(path)


def _may_remove(path: str, keep: Keep) -> bool:
    return keep is not None and path not in keep


def _referenced_shards(prefix: str) -> set[str] | None:
    """Shard names the index of `prefix` references, or None if unreadable."""
    try:
        description = describe_checkpoint(prefix)
    except tf.errors.OpError:
        return None  # Damaged: leave it as it is, for whoever investigates.
    return {shard["name"] for shard in description["shards"]}


def sweep(listing: CheckpointListing, keep: Keep = frozenset()) -> list[str]:
    """Removes leftovers of saves that never committed; returns their paths.

    Shards in `keep` (paths a kept checkpoint refers to) stay; with
    `keep=None` every shard does (only temporary files go).
    """
    removed: list[str] = []
    # Committed by a writer of fewer iterators (not ours to delete), or, rarely,
    # by a save killed between its parts: left alone either way.
    uncommitted: set[int] = set(listing.steps_of_fewer_parts())
    spared = set(uncommitted)
    for part, directory, names in listing.part_listings():
        # Step -> (shard name, nonce of the save that wrote it).
        shards_by_step: dict[int, list[tuple[str, str]]] = {}
        for name in names:
            parsed = listing.parse_leftover(name)
            if parsed is None:
                continue
            step, nonce = parsed
            if step in uncommitted:
                continue
            if not listing.is_committed(step):
                uncommitted.add(step)
            elif nonce is None:  # a temporary index
                removed.append(layout.join_path(directory, name))
            else:
                shards_by_step.setdefault(step, []).append((name, nonce))
        for step, shards in shards_by_step.items():
            if len({nonce for _, nonce in shards}) < 2:
                continue  # Only the committed save's own shards.
            referenced = _referenced_shards(listing.part_prefix(step, part))
            if referenced is not None:
                for name, _ in shards:
                    path = layout.join_path(directory, name)
                    if name not in referenced and _may_remove(path, keep):
                        removed.append(path)
    for step in sorted(uncommitted - spared):
        removed.extend(
            listing.part_prefix(step, part) + ".*" for part in range(listing.num_parts)
        )
        delete(listing, step, keep)
    for path in removed:
        if not path.endswith(".*"):
            remove_if_present(path)
    try:
        names = tf.io.gfile.listdir(listing.directory)
    except tf.errors.NotFoundError:
        names = []
    for name in names:
        if layout.is_state_file_temp(name, listing.latest_filename):
            path = layout.join_path(listing.directory, name)
            remove_if_present(path)
            removed.append(path)
    if removed:
        logger.info("Removed leftovers of unfinished saves: %s", ", ".join(removed))
    return removed
