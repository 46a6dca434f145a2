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
tensors from earlier saves' shards) until none does. Our index goes first, so
that a deletion cut short never leaves something that looks whole. A TF
checkpoint whose bundle cannot be read is left alone, with its files, for
whoever looks into it. Only TF checkpoints of one base (`ckpt` for `ckpt-<n>`)
are looked at: the caller holds that base's writer lock, so nobody else writes
them.

The sweep itself is the op `SweepBesideCheckpoints`, shared with the TF1 route
(`saveable`), whose saves are graph ops only; `referenced_tokens` stays in
Python for `beside_writes`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np
import tensorflow as tf

from tfdata_checkpoint import ops
from tfdata_checkpoint._src import layout

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


def sweep(directory: str, base: str, protected: Collection[str]) -> list[str]:
    """Removes our files beside TF checkpoints of `base` in `directory` that are garbage.

    The op `SweepBesideCheckpoints` (`cc/io/beside_sweep.cc`) does it, the
    same one that every Saver save of `make_saveable_from_iterator` runs: it
    remembers what our indexes refer to across calls, process-wide.

    Args:
      directory: the directory of the TF checkpoints.
      base: their base name (`layout.tf_checkpoint_base`).
      protected: tokens of saves in flight, never touched.

    Returns:
      The paths removed.
    """
    # Any TF checkpoint name of `base` names the op the TF checkpoints to look at.
    tf_prefix = layout.join_path(directory, f"{base}-0")
    tokens = sorted(protected)
    with tf.init_scope():
        if tf.executing_eagerly():
            removed = ops.sweep_beside_checkpoints(tf_prefix, tf.constant(tokens, tf.string))
            removed = removed.numpy()
        else:  # A TF1 graph: run it in a graph of its own.
            with tf.Graph().as_default(), tf.compat.v1.Session() as session:
                removed = session.run(ops.sweep_beside_checkpoints(
                    tf_prefix, tf.constant(tokens, tf.string)))
    return [path.decode() for path in removed]
