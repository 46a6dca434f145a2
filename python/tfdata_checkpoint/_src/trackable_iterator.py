"""TrackableIterator: the input state inside `tf.train.Checkpoint`, written by our writer.

How it plugs in: a checkpoint saver registered with TF
(`registration.register_checkpoint_saver`) takes over saving and restoring
every `TrackableIterator` of a checkpoint. TF calls its save function with
`<TF checkpoint prefix>-<saver name>`; it writes each iterator's state as our
checkpoint beside TF's (`layout`, `beside_writes`), synchronously, and then
`SaveV2`s one small string per iterator, the name of those files, which TF's
`MergeV2Checkpoints` folds into the checkpoint's own `.index`. TF writes that
index last, so a TF checkpoint never exists without committed input state.
The restore function reads the names back and restores all iterators of
the checkpoint, or none (`atomic_restore`).

Why not the other hooks TF has (found by experiment, see the project notes):
`_serialize_to_tensors` runs once at trace time inside `tf.function`, and
`PythonState.serialize()` under `init_scope`, so later saves would overwrite
the files of the first. The class is a plain `Trackable`: an `AutoTrackable`
would also save the wrapped iterator TF's slow way.

TF's async checkpointing copies objects through `_copy_trackable_to_cpu` on the
training thread, then saves the copies on its own thread. The copy here is
`_CapturedState`: the iterator state captured by `SerializeIterator` (shallow:
the buffered tensors are shared, not copied) into a variant variable, written
on TF's thread by `SaveIteratorShards`. The state is the one at the step of
the save, and TF's index still comes after ours.
"""

from __future__ import annotations

import secrets
import weakref
from typing import Any

import tensorflow as tf
from tensorflow.python.ops import gen_dataset_ops, io_ops
from tensorflow.python.saved_model import registration

from tfdata_checkpoint import ops
from tfdata_checkpoint._src import arguments, atomic_restore, beside_writes, layout
from tfdata_checkpoint._src.iterator_state import (
    check_num_shards,
    external_state_policy_value,
    iterator_resource,
    normalize_external_state_policy,
    release_incremental_base,
)

SAVER_PACKAGE = "tfdata_checkpoint"
SAVER_NAME = "TrackableIterator"
# TF's name for the saver, which it appends to the prefix it passes the save function.
REGISTERED_NAME = f"{SAVER_PACKAGE}.{SAVER_NAME}"
_PREFIX_SUFFIX = f"-{REGISTERED_NAME}"


class TrackableIterator(tf.__internal__.tracking.Trackable):
    """A tf.data iterator for `tf.train.Checkpoint`, whose state our writer saves.

    Put it into a checkpoint in place of the iterator (or make it an attribute
    of a tracked object, e.g. a model):

        it = iter(dataset)
        ckpt = tf.train.Checkpoint(model=model, optimizer=opt,
                                   iterator=tfdata_checkpoint.TrackableIterator(it))
        manager = tf.train.CheckpointManager(ckpt, "/ckpts", max_to_keep=3)
        manager.restore_or_initialize()     # restores `it` too
        ...
        manager.save()                      # the input state as our sharded files

    When the checkpoint is written, the iterator state is written as our
    checkpoint files next to TF's (`<checkpoint>.tfdc-<token>-<i>.*`), and
    TF's bundle holds only their name. Restoring the checkpoint
    (`restore`, `read`, also deferred, when this object is attached later)
    restores the iterator from them. Our files of TF checkpoints that were
    deleted go at the next save, or when the process exits.

    Args:
      iterator: `iter(dataset)` (an eager tf.data iterator).
      external_state_policy: 'fail' (default), 'warn' or 'ignore' (or a
        `tf.data.experimental.ExternalStatePolicy`): what to do when the
        pipeline depends on state outside it.
      num_shards: number of shard files per save; None picks one.
      fsync: make our files durable before TF writes its index.
      incremental: a save writes only the tensors (buffered elements) that
        this object's previous save into the same directory does not hold;
        the rest are references into that save's shards, which stay while a
        kept checkpoint refers to them (docs/INCREMENTAL.md). The tensors of
        the last save are held until the next one, or until this object is
        garbage-collected. False writes every tensor each time.

    Raises:
      ValueError: `iterator` is not an eager tf.data iterator, or a bad argument.
    """

    def __init__(
        self,
        iterator: Any,
        *,
        external_state_policy: Any = "fail",
        num_shards: int | None = None,
        fsync: bool = True,
        incremental: bool = True,
    ) -> None:
        if isinstance(iterator, TrackableIterator):
            raise ValueError("iterator is already a TrackableIterator")  # noqa: TRY004
        resource = getattr(iterator, "_iterator_resource", None)
        if resource is None or not tf.executing_eagerly():
            raise ValueError(
                "TrackableIterator needs an eager tf.data iterator (iter(dataset)), got "
                f"{type(iterator).__name__}; for tf.compat.v1 graphs use "
                "tfdata_checkpoint.make_saveable_from_iterator"
            )
        self._iterator = iterator
        self._policy = normalize_external_state_policy(external_state_policy)
        self._policy_value = external_state_policy_value(self._policy)
        self._num_shards = check_num_shards(num_shards)
        self._fsync = bool(fsync)
        # One writer per object: its saves may reference its own last one.
        self._incremental_key = (
            f"TrackableIterator-{secrets.token_hex(8)}"
            if arguments.boolean("incremental", incremental) else ""
        )
        if self._incremental_key:
            finalizer = weakref.finalize(self, release_incremental_base, self._incremental_key)
            finalizer.atexit = False  # the process frees it then

    @property
    def iterator(self) -> Any:
        """The wrapped iterator."""
        return self._iterator

    @property
    def element_spec(self) -> Any:
        """The element spec of the wrapped iterator."""
        return self._iterator.element_spec

    def __iter__(self) -> TrackableIterator:
        return self

    def __next__(self) -> Any:
        return next(self._iterator)

    def get_next(self) -> Any:
        """The next element of the wrapped iterator (as `iterator.get_next()`)."""
        return self._iterator.get_next()

    def _write_state(self, prefix: Any) -> Any:
        """Saves the live state as our checkpoint `prefix` (committed when it returns)."""
        return ops.save_iterator(
            iterator_resource(self._iterator), prefix,
            external_state_policy=self._policy_value, num_shards=self._num_shards,
            fsync=self._fsync, asynchronous=False, incremental_key=self._incremental_key,
        )

    def _copy_trackable_to_cpu(self, object_map: Any) -> None:
        # TF's async checkpointing: capture now, on the training thread; the
        # copy is written on TF's thread. Called eagerly the first time, then
        # traced once into a tf.function: the capture must be graph ops.
        copy = object_map.get(self)
        if copy is None:
            object_map[self] = _CapturedState(self)
        else:
            copy.capture()

    def __repr__(self) -> str:
        return f"TrackableIterator({self._iterator!r})"


class _CapturedState(tf.__internal__.tracking.Trackable):
    """The state of a `TrackableIterator` captured for TF's async checkpointing."""

    def __init__(self, original: TrackableIterator) -> None:
        self._original = original
        self._state = tf.Variable(
            self._serialize(), dtype=tf.variant, shape=tf.TensorShape(None), trainable=False,
        )

    def _serialize(self) -> tf.Tensor:
        original = self._original
        return gen_dataset_ops.serialize_iterator(
            iterator_resource(original.iterator),
            external_state_policy=original._policy_value,
        )

    @property
    def iterator(self) -> Any:
        """The iterator whose state this is."""
        return self._original.iterator

    def capture(self) -> None:
        self._state.assign(self._serialize())

    def _write_state(self, prefix: Any) -> Any:
        original = self._original
        return ops.save_iterator_shards(
            self._state.read_value(), prefix, num_shards=original._num_shards,
            fsync=original._fsync, asynchronous=False,
            incremental_key=original._incremental_key,
        )


def _is_ours(obj: Any) -> bool:
    return isinstance(obj, (TrackableIterator, _CapturedState))


def _tf_prefix(file_prefix: Any) -> Any:
    """The TF checkpoint prefix from the one TF passes a registered save function."""
    if isinstance(file_prefix, str):
        return file_prefix.removesuffix(_PREFIX_SUFFIX)
    return tf.strings.regex_replace(file_prefix, _escape(_PREFIX_SUFFIX) + "$", "")


def _escape(text: str) -> str:
    # RE2 syntax; re.escape's output is valid RE2 for these characters.
    import re

    return re.escape(text)


def _save_fn(trackables: dict[str, Any], file_prefix: tf.Tensor) -> tf.Tensor:
    """TF's registered save function: our files, then a reference per iterator in TF's bundle."""
    keys = sorted(trackables)
    if tf.executing_eagerly():
        tf_prefix = _tf_prefix(file_prefix.numpy().decode())
        prefixes = beside_writes.begin_save(tf_prefix, len(keys))
        names = []
        for key, prefix in zip(keys, prefixes):
            trackables[key]._write_state(prefix)
            names.append(layout.split_path(prefix)[1])
        references = [tf.constant(name) for name in names]
    else:
        # Inside tf.function (ckpt.write in a tf.function, TF's multi-device
        # saves): the token and the sweep must happen at every call, not at
        # trace time, hence the py_function.
        count = len(keys)
        prefixes = tf.py_function(
            lambda p: beside_writes.begin_save(p.numpy().decode(), count),
            [_tf_prefix(file_prefix)], Tout=[tf.string] * count,
        )
        references = []
        for key, prefix in zip(keys, prefixes):
            written = trackables[key]._write_state(prefix)
            references.append(tf.strings.regex_replace(written, "^.*/", ""))
    save = io_ops.save_v2(
        file_prefix, [layout.reference_key(key) for key in keys], [""] * len(keys), references,
    )
    # TF merges after the shard saves it knows of; this makes the merge wait
    # for our SaveV2 (and thus for our files) inside a tf.function too.
    with tf.control_dependencies([save]):
        return tf.identity(file_prefix)


def _restore_fn(trackables: dict[str, Any], merged_prefix: tf.Tensor) -> Any:
    """TF's registered restore function: every iterator of the checkpoint, or none."""
    ours = {key: t for key, t in trackables.items() if layout.tf_iterator_state_key(key) is None}
    raw = {key: t for key, t in trackables.items() if key not in ours}
    restore = _restore_ours(ours, merged_prefix) if ours else None
    if raw:
        # A checkpoint written with the raw iterator: TF hands us the key of
        # its attribute. Restore it TF's way (the slow path, once).
        keys = sorted(raw)
        states = io_ops.restore_v2(
            merged_prefix, [layout.tf_iterator_state_key(key) for key in keys], [""] * len(keys),
            [tf.variant] * len(keys),
        )
        for key, state in zip(keys, states):
            gen_dataset_ops.deserialize_iterator(iterator_resource(raw[key].iterator), state)
    return restore


def _restore_ours(trackables: dict[str, Any], merged_prefix: tf.Tensor) -> Any:
    keys = sorted(trackables)
    iterators = [trackables[key].iterator for key in keys]
    references = io_ops.restore_v2(
        merged_prefix, [layout.reference_key(key) for key in keys], [""] * len(keys),
        [tf.string] * len(keys),
    )
    if not tf.executing_eagerly():
        directory = tf.strings.regex_replace(merged_prefix, "[^/]*$", "")
        prefixes = [directory + reference for reference in references]
        return atomic_restore.build_graph_restore(iterators, prefixes)
    merged = merged_prefix.numpy().decode() if hasattr(merged_prefix, "numpy") else merged_prefix
    directory, _ = layout.split_path(merged)
    prefixes = []
    for key, reference in zip(keys, references):
        name = reference.numpy().decode()
        if not layout.is_beside_name(name):
            raise tf.errors.DataLossError(
                None, None,
                f"{merged}: the input state reference of {key!r} is not a file name of ours: "
                f"{name!r}",
            )
        prefixes.append(layout.join_path(directory, name))
    try:
        atomic_restore.restore_eagerly(iterators, prefixes)
    except atomic_restore.CheckpointDamaged as damaged:
        # Raised as our restore raises it: DataLossError / NotFoundError naming the file.
        raise damaged.error from None
    return None


registration.register_checkpoint_saver(
    package=SAVER_PACKAGE,
    name=SAVER_NAME,
    predicate=_is_ours,
    save_fn=_save_fn,
    restore_fn=_restore_fn,
)
