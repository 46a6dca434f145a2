"""Restoring every iterator of a checkpoint, all or none, and telling damage apart.

A checkpoint of several iterators (the hook's parts) is read completely before
any iterator is touched: if one part is damaged, no iterator has been
restored, so the caller can fall back to an older checkpoint (or start over)
with all iterators in one consistent state. One iterator (the common case) is
restored by `RestoreIterator`, which reads and checks every byte, and that the
recorded element spec fits, before it calls the iterator's own Restore;
several by reading every part first (`RestoreIteratorShards`), then checking
every part's element spec (`CheckIteratorElementSpec`), then
`DeserializeIterator` on each.

Failures are of two kinds, which the fallback policy must not confuse:
- the checkpoint's own files are damaged or missing: reading fails with
  `DataLossError` / `NotFoundError`. These are raised as `CheckpointDamaged`,
  keeping the original error;
- the files are good but do not fit the pipeline (restoring into a
  structurally different dataset): the element spec check fails with
  `InvalidArgumentError`, or the iterator's Restore with `NotFoundError` or
  `InvalidArgumentError`. These are raised as they are:
  an older checkpoint would not fit either, and starting over would hide a
  misconfiguration. `RestoreIterator` does both in one op, so a
  `NotFoundError` of it counts as damage only when verifying the checkpoint
  fails too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from tensorflow.python.ops import gen_dataset_ops

from tfdata_checkpoint import ops
from tfdata_checkpoint._src.iterator_state import describe_checkpoint, iterator_resource

# Reads a checkpoint's files only.
READ_OP_TYPE = "RestoreIteratorShards"
# Reads and checks a checkpoint's files, then restores the iterator.
READ_AND_RESTORE_OP_TYPE = "RestoreIterator"


class CheckpointDamaged(Exception):
    """A checkpoint's files are damaged or missing.

    Attributes:
      prefix: the checkpoint.
      error: the `tf.errors.OpError` that says what and where (naming the file).
    """

    def __init__(self, prefix: str, error: tf.errors.OpError) -> None:
        super().__init__(f"{prefix}: {type(error).__name__}: {error.message}")
        self.prefix = prefix
        self.error = error


def restore_eagerly(iterators: Sequence[Any], prefixes: Sequence[str]) -> None:
    """Restores `iterators[i]` from `prefixes[i]`, all or none when damaged.

    Raises:
      CheckpointDamaged: a part's files are damaged or missing; no iterator
        was touched.
      tf.errors.OpError: the state does not fit an iterator.
    """
    if len(iterators) == 1:
        (prefix,) = prefixes
        try:
            ops.restore_iterator(iterator_resource(iterators[0]), prefix)
        except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
            _raise_if_damaged(error, prefix)
            raise
        return
    states = []
    for prefix in prefixes:
        try:
            states.append(ops.restore_iterator_shards(prefix))
        except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
            raise CheckpointDamaged(prefix, error) from error
    for iterator, prefix in zip(iterators, prefixes):
        ops.check_iterator_element_spec(iterator_resource(iterator), prefix)
    for iterator, state, prefix in zip(iterators, states, prefixes):
        try:
            gen_dataset_ops.deserialize_iterator(iterator_resource(iterator), state)
        except tf.errors.OpError as error:
            raise with_tf_versions(error, prefix) from None


def build_graph_restore(iterators: Sequence[Any], prefixes: Sequence[Any]) -> tf.Operation:
    """A graph op restoring `iterators[i]` from `prefixes[i]`, all or none.

    Every iterator's restore depends on every part's read and element spec
    check: a failed read or check stops the step before any iterator changes. The reads wait for the
    iterators to exist: a one-shot iterator whose creation is cancelled by a
    failed read in the same step would keep failing with `CancelledError`
    ever after. Run it with `run_graph_restore`.
    """
    resources = [iterator_resource(iterator) for iterator in iterators]
    graph = tf.compat.v1.get_default_graph()
    # Each part is read on its iterator's own task in a distributed session:
    # the state (a variant) cannot be sent to another process.
    if len(resources) == 1:
        with graph.colocate_with(resources[0]):
            return ops.restore_iterator(resources[0], prefixes[0])
    states = []
    for resource, prefix in zip(resources, prefixes):
        with graph.colocate_with(resource), tf.control_dependencies(resources):
            states.append(ops.restore_iterator_shards(prefix))
    checks = []
    for resource, prefix in zip(resources, prefixes):
        with graph.colocate_with(resource), tf.control_dependencies(states):
            checks.append(ops.check_iterator_element_spec(resource, prefix))
    restores = []
    for resource, state in zip(resources, states):
        with graph.colocate_with(resource), tf.control_dependencies(checks):
            restores.append(gen_dataset_ops.deserialize_iterator(resource, state))
    return tf.group(*restores)


def run_graph_restore(session: Any, restore_op: tf.Operation, feed_dict: dict, prefix: str) -> None:
    """Runs `build_graph_restore`'s op; `CheckpointDamaged` for damaged files."""
    try:
        session.run(restore_op, feed_dict=feed_dict)
    except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
        op = getattr(error, "op", None)
        if (op is not None and op.type == READ_OP_TYPE) or (
            op is None and isinstance(error, tf.errors.DataLossError)
        ):
            raise CheckpointDamaged(prefix, error) from error
        if op is not None and op.type == READ_AND_RESTORE_OP_TYPE:
            _raise_if_damaged(error, prefix)
        raise with_tf_versions(error, prefix) from None
    except tf.errors.OpError as error:
        raise with_tf_versions(error, prefix) from None


def with_tf_versions(error: tf.errors.OpError, prefix: str) -> tf.errors.OpError:
    """`error`, naming both TensorFlow versions if the checkpoint comes from another one.

    What a dataset keeps in its state can change between TensorFlow releases,
    so a restore that does not fit may be a version change rather than another
    pipeline. `RestoreIterator` says so itself; this covers TF's own
    `DeserializeIterator` (several iterators).
    """
    if "written under TensorFlow" in error.message:
        return error
    try:
        saved = describe_checkpoint(prefix).get("tf_version", "")
    except tf.errors.OpError:
        return error
    if not saved or saved == tf.__version__:
        return error
    return type(error)(
        error.node_def,
        error.op,
        f"{error.message} (the checkpoint was written under TensorFlow {saved} and is "
        f"restored under TensorFlow {tf.__version__}: the iterator state a pipeline keeps can "
        f"differ between TensorFlow versions; restore it under TensorFlow {saved}, or start "
        "the input pipeline over)",
    )


def _raise_if_damaged(error: tf.errors.OpError, prefix: str) -> None:
    """`CheckpointDamaged` if `RestoreIterator`'s `error` comes from its files.

    Checksums are checked before the iterator's Restore runs, so a
    `DataLossError` is damage. A `NotFoundError` is a missing file, or a key
    the pipeline asks for and the state does not hold (a different pipeline):
    the files are verified to tell which.
    """
    if isinstance(error, tf.errors.DataLossError):
        raise CheckpointDamaged(prefix, error) from error
    try:
        describe_checkpoint(prefix, verify=True)
    except (tf.errors.DataLossError, tf.errors.NotFoundError) as damage:
        # The verify error names the damaged or missing file.
        raise CheckpointDamaged(prefix, damage) from error
