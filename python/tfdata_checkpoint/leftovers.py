"""Removing what killed or failed saves left behind in a checkpoint directory.

A save that dies before its index is renamed into place leaves shard files
(`<basename>-<step>.data-<nonce>-...`) and maybe a temporary index
(`<basename>-<step>.index.tmp-<nonce>`); a write of the state file that dies
leaves `<latest_filename>.tmp<hex>`. No reader ever takes these for a
checkpoint (a checkpoint exists only through its `.index`), but they take
space, so the next save that commits removes them:

- every file of a step whose checkpoint has not committed (some part's
  `.index` missing);
- of a committed step, temporary indexes, and shard files that its index does
  not reference (a killed save of the same step, whose nonce differs);
- temporary state files.

Only files of this writer's own basename are touched, so workers sharing a
directory under other basenames (`input_worker_1.ckpt`) are safe. This runs
only when the writer has no write of its own in flight (right after a commit
is recorded), and the writer lock (`writer_lock`) keeps other processes from
writing under the same basename; both together make every such file garbage.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import tensorflow as tf

from tfdata_checkpoint import state_file
from tfdata_checkpoint.file_paths import join_path, remove_if_present
from tfdata_checkpoint.iterator_state import describe_checkpoint

if TYPE_CHECKING:
    from tfdata_checkpoint.retention import CheckpointRetention

logger = logging.getLogger(__name__)


def _referenced_shards(prefix: str) -> set[str] | None:
    """Shard names the index of `prefix` references, or None if unreadable."""
    try:
        description = describe_checkpoint(prefix)
    except tf.errors.OpError:
        return None  # Damaged: leave it as it is, for whoever investigates.
    return {shard["name"] for shard in description["shards"]}


def sweep(retention: CheckpointRetention) -> list[str]:
    """Removes leftovers of saves that never committed; returns their paths."""
    basename = re.escape(retention.basename)
    pattern = re.compile(
        basename + r"-(\d+)\.(?:(index\.tmp-[0-9a-f]+)|data-([0-9a-f]+)-\d+-of-\d+)"
    )
    removed: list[str] = []
    uncommitted: set[int] = set()
    for part, directory, names in retention.part_listings():
        # Step -> (shard name, nonce of the save that wrote it).
        shards_by_step: dict[int, list[tuple[str, str]]] = {}
        for name in names:
            match = pattern.fullmatch(name)
            if not match:
                continue
            step = int(match.group(1))
            if step in uncommitted:
                continue
            if not retention.is_committed(step):
                uncommitted.add(step)
            elif match.group(2):  # a temporary index
                removed.append(join_path(directory, name))
            else:
                shards_by_step.setdefault(step, []).append((name, match.group(3)))
        for step, shards in shards_by_step.items():
            if len({nonce for _, nonce in shards}) < 2:
                continue  # Only the committed save's own shards.
            referenced = _referenced_shards(retention.part_prefix(step, part))
            if referenced is not None:
                removed.extend(
                    join_path(directory, name) for name, _ in shards if name not in referenced)
    for step in sorted(uncommitted):
        for part in range(retention.num_parts):
            removed.append(retention.part_prefix(step, part) + ".*")
        retention.delete(step)
    for path in removed:
        if not path.endswith(".*"):
            remove_if_present(path)
    try:
        names = tf.io.gfile.listdir(retention.directory)
    except tf.errors.NotFoundError:
        names = []
    prefix = retention.latest_filename
    for name in names:
        if name.startswith(prefix) and state_file.TEMP_SUFFIX.fullmatch(name[len(prefix):]):
            path = join_path(retention.directory, name)
            remove_if_present(path)
            removed.append(path)
    if removed:
        logger.info("Removed leftovers of unfinished saves: %s", ", ".join(removed))
    return removed
