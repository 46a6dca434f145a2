"""Deleting our files beside TF checkpoints once they belong to no TF checkpoint.

`TrackableIterator` and `make_saveable_from_iterator` write the input state as
our checkpoints next to TF's (names: `layout`, "beside a TensorFlow
checkpoint"), and TF's bundle names them. TF deletes its own files only
(`tf.train.CheckpointManager` and `Saver` remove `<name>.index` and
`<name>.data-?????-of-?????`), so ours are removed here: a set of files of the
save `<token>` of the TF checkpoint `<name>` is garbage when

- `<name>.index` (TF's) is gone: the TF checkpoint was deleted, or the save
  never got that far (killed, failed);
- or TF's bundle does not name `<token>`: a later write of the same TF
  checkpoint replaced it, or this save was killed while rewriting it;

and it is not in flight (`protected`). Shard files that a save still kept (in
flight, or named by its TF checkpoint) refers to stay (incremental saves read
tensors from earlier saves' shards: `storage.references`) until none does.
Our index goes first, so that a
deletion cut short never leaves something that looks whole. A TF checkpoint
whose bundle cannot be read is left alone, with its files, for whoever looks
into it. Only TF checkpoints of one base (`ckpt` for `ckpt-<n>`) are looked at:
the caller holds that base's writer lock, so nobody else writes them.
"""

from __future__ import annotations

import logging
from collections.abc import Container

import numpy as np
import tensorflow as tf

from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.storage.collector import remove_if_present
from tfdata_checkpoint._src.storage.references import UNKNOWN, ReferencedFiles

logger = logging.getLogger(__name__)

# What `referenced_tokens` returns for a TF checkpoint it could not read.
UNREADABLE = None


def referenced_tokens(tf_prefix: str) -> frozenset[str] | None:
    """Tokens of our saves that the TF checkpoint `tf_prefix` names; None if unreadable.

    A TF checkpoint that does not exist names none.
    """
    if not tf.io.gfile.exists(layout.index_path(tf_prefix)):
        return frozenset()
    try:
        reader = tf.train.load_checkpoint(tf_prefix)
        tokens = set()
        for key in reader.get_variable_to_dtype_map():
            if layout.is_reference_key(key):
                # A scalar name, or one name per replica of a distributed iterator.
                for name in np.asarray(reader.get_tensor(key), dtype=object).reshape(-1):
                    token = layout.beside_token(
                        name.decode() if isinstance(name, bytes) else str(name))
                    if token is not None:
                        tokens.add(token)
    except (tf.errors.OpError, ValueError) as error:
        logger.warning("Cannot read the TF checkpoint %s (%s); leaving its files alone.",
                       tf_prefix, error)
        return UNREADABLE
    return frozenset(tokens)


def sweep(
    directory: str,
    base: str,
    protected: Container[str],
    references: ReferencedFiles | None = None,
) -> list[str]:
    """Removes our files beside TF checkpoints of `base` in `directory` that are garbage.

    Args:
      directory: the directory of the TF checkpoints.
      base: their base name (`layout.tf_checkpoint_base`).
      protected: tokens of saves in flight, never touched.
      references: remembers what our indexes refer to, across sweeps.

    Returns:
      The paths removed.
    """
    references = references if references is not None else ReferencedFiles()
    try:
        names = tf.io.gfile.listdir(directory or ".")
    except tf.errors.NotFoundError:
        return []
    groups: dict[tuple[str, str], list[str]] = {}
    for name in names:
        parsed = layout.parse_beside_file(name)
        if parsed is None or layout.tf_checkpoint_base(parsed.tf_name) != base:
            continue
        groups.setdefault((parsed.tf_name, parsed.token), []).append(name)
    named: dict[str, frozenset[str] | None] = {}
    kept_indexes: list[str] = []
    garbage: list[list[str]] = []
    for (tf_name, token), files in sorted(groups.items()):
        if token not in protected:
            if tf_name not in named:
                named[tf_name] = referenced_tokens(layout.join_path(directory, tf_name))
            tokens = named[tf_name]
            if tokens is not UNREADABLE and token not in tokens:
                garbage.append(files)
                continue
        kept_indexes += [n for n in files if layout.parse_beside_file(n).is_index]
    still_read = references.of_all(
        [layout.join_path(directory, n[: -len(layout.INDEX_SUFFIX)]) for n in kept_indexes]
    )
    removed = []
    for files in garbage:
        # Indexes first: the save stops looking like a checkpoint at once.
        for name in sorted(files, key=lambda n: not layout.parse_beside_file(n).is_index):
            path = layout.join_path(directory, name)
            if not layout.parse_beside_file(name).is_index and (
                still_read is UNKNOWN or path in still_read
            ):
                continue
            remove_if_present(path)
            removed.append(path)
    if removed:
        logger.info("Removed input state files of deleted or unfinished TF checkpoints: %s",
                    ", ".join(removed))
    return removed
