"""The plain tf.data iterators behind an iterator, distributed or not.

A checkpoint saves plain iterators (`iter(dataset)`): each one's resource
holds the whole pipeline state. A `tf.distribute` iterator is a
`DistributedIterator` holding, per input pipeline, a
`_SingleWorkerOwnedDatasetIterator` whose `_iterator` is either

- a plain `OwnedIterator`: MirroredStrategy with
  `distribute_datasets_from_function(fn, InputOptions(
  experimental_replication_mode=PER_REPLICA, experimental_fetch_to_device=False))`,
  one per replica. These are saved as the parts of one checkpoint (all or
  none, as the hook saves several iterators) and restored into a freshly
  built distributed iterator of the same shape;
- an `OwnedMultiDeviceIterator` (`experimental_distribute_dataset`,
  `distribute_datasets_from_function` without PER_REPLICA,
  OneDeviceStrategy, and MultiWorkerMirroredStrategy always): its host
  iterator and per-device buffers live in the anonymous-namespace
  `MultiDeviceBuffer` of TF's `multi_device_iterator_ops.cc`, filled by a
  background thread; no op can reach or save them, so these are refused with
  a `ValueError` naming what works instead.

`component_iterators` is the one place that decides this, for
`IteratorCheckpointManager` now and for anything else that saves iterators
(e.g. a `tf.train.Checkpoint` integration) later.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow.python.data.ops import multi_device_iterator_ops

from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.iterator_state import iterator_resource

PER_REPLICA_INPUT_OPTIONS = (
    "tf.distribute.InputOptions(experimental_replication_mode="
    "tf.distribute.InputReplicationMode.PER_REPLICA, experimental_fetch_to_device=False)"
)

_MULTI_DEVICE_ITERATORS = (
    multi_device_iterator_ops.MultiDeviceIterator,
    multi_device_iterator_ops.OwnedMultiDeviceIterator,
)


def is_distributed(iterator: Any) -> bool:
    """Whether `iterator` is a `tf.distribute` iterator."""
    return isinstance(iterator, tf.distribute.DistributedIterator)


def component_iterators(iterator: Any) -> list[Any]:
    """The plain iterators that hold `iterator`'s state, in a fixed order.

    Args:
      iterator: `iter(dataset)`, a `tf.compat.v1` iterator, or the iterator of
        a distributed dataset whose replicas each have a plain iterator.

    Returns:
      `[iterator]` for a plain iterator; one iterator per replica (input
      pipeline order) for a distributed one.

    Raises:
      ValueError: `iterator` is not an iterator, or a distributed iterator
        built on TF's MultiDeviceIterator (naming the `InputOptions` and the
        per-worker pattern that work).
    """
    if not is_distributed(iterator):
        iterator_resource(iterator)  # ValueError naming the type if not an iterator
        return [iterator]
    workers = getattr(iterator, "_iterators", None)
    if not workers:
        raise ValueError(
            f"Cannot checkpoint the distributed iterator {type(iterator).__name__}: its "
            "per-replica iterators are not reachable (unknown TensorFlow version or iterator "
            f"type). Build it with distribute_datasets_from_function(fn, "
            f"{PER_REPLICA_INPUT_OPTIONS})."
        )
    plain = []
    for worker in workers:
        inner = getattr(worker, "_iterator", None)
        if isinstance(inner, _MULTI_DEVICE_ITERATORS):
            # ValueError, as for any other argument this cannot checkpoint.
            raise ValueError(multi_device_iterator_message(iterator))  # noqa: TRY004
        if getattr(inner, "_iterator_resource", None) is None:
            raise ValueError(
                f"Cannot checkpoint the distributed iterator {type(iterator).__name__}: a "
                f"replica's iterator is a {type(inner).__name__}, not a plain tf.data "
                f"iterator. Build it with distribute_datasets_from_function(fn, "
                f"{PER_REPLICA_INPUT_OPTIONS})."
            )
        plain.append(inner)
    return plain


def multi_device_iterator_message(iterator: Any) -> str:
    """Why a MultiDeviceIterator-based distributed iterator is refused, and what works."""
    strategy = getattr(iterator, "_strategy", None)
    strategy_name = type(strategy).__name__ if strategy is not None else "the strategy"
    return (
        f"Cannot checkpoint this distributed iterator ({strategy_name}): it reads through "
        "TensorFlow's MultiDeviceIterator (experimental_distribute_dataset, "
        "distribute_datasets_from_function without PER_REPLICA, OneDeviceStrategy, "
        "MultiWorkerMirroredStrategy), whose buffers no op can reach, so it cannot be saved "
        "exactly. With MirroredStrategy use strategy.distribute_datasets_from_function("
        f"dataset_fn, {PER_REPLICA_INPUT_OPTIONS}); with MultiWorkerMirroredStrategy give each "
        "worker a plain iterator, iter(dataset) over its own shard, feed its elements to "
        "strategy.run, and checkpoint that iterator with one IteratorCheckpointManager per worker, "
        "under a checkpoint_name and latest_filename of its own (see the README, tf.distribute)."
    )


def check_part_count(checkpoints: layout.CheckpointLayout, step: int) -> None:
    """ValueError if the checkpoint of `step` holds more parts than `checkpoints` has.

    A checkpoint of 4 replicas restored into 2 would otherwise restore 2 and
    drop the others' positions silently. Fewer parts than replicas shows as
    the missing part's file (NotFoundError naming it).
    """
    wider = layout.CheckpointLayout(
        checkpoints.directory,
        checkpoints.basename,
        checkpoints.latest_filename,
        checkpoints.num_parts + 1,
    )
    extra = layout.index_path(wider.part_prefix(step, checkpoints.num_parts))
    if tf.io.gfile.exists(extra):
        raise ValueError(
            f"The input checkpoint {checkpoints.prefix(step)} holds more iterators (replicas) "
            f"than the {checkpoints.num_parts} being restored (found {extra}): restore it into "
            "a distributed iterator with as many replicas as it was saved from."
        )
