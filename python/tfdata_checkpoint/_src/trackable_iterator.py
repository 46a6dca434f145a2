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

A distributed iterator whose replicas each have a plain iterator
(`distributed_iterators`) is saved as one part per replica, all in the same
save; its reference is then the vector of the parts' names, in replica order,
and restoring it into an iterator of another replica count is refused.

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

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import gen_dataset_ops, io_ops
from tensorflow.python.saved_model import registration

from tfdata_checkpoint import ops
from tfdata_checkpoint._src import (
    arguments,
    atomic_restore,
    beside_writes,
    distributed_iterators,
    layout,
)
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
      iterator: `iter(dataset)` (an eager tf.data iterator), or the iterator
        of a distributed dataset whose replicas each have a plain iterator
        (MirroredStrategy's `distribute_datasets_from_function` with
        `InputOptions(experimental_replication_mode=PER_REPLICA,
        experimental_fetch_to_device=False)`): all replicas are saved in the
        same checkpoint and restored together, into a distributed iterator of
        as many replicas.
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
      ValueError: `iterator` is not an eager tf.data iterator, a distributed
        iterator built on TF's MultiDeviceIterator (the message names the
        `InputOptions` that work), or a bad argument.
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
        not_eager = ValueError(
            "TrackableIterator needs an eager tf.data iterator (iter(dataset)), got "
            f"{type(iterator).__name__}; for tf.compat.v1 graphs use "
            "tfdata_checkpoint.make_saveable_from_iterator"
        )
        if not tf.executing_eagerly():
            raise not_eager
        if distributed_iterators.is_distributed(iterator):
            parts = distributed_iterators.component_iterators(iterator)
        elif getattr(iterator, "_iterator_resource", None) is not None:
            parts = [iterator]
        else:
            raise not_eager
        self._iterator = iterator
        self._parts = parts
        self._policy = normalize_external_state_policy(external_state_policy)
        self._policy_value = external_state_policy_value(self._policy)
        self._num_shards = check_num_shards(num_shards)
        self._fsync = bool(fsync)
        # One writer per part: its saves may reference its own last one.
        writer = f"TrackableIterator-{secrets.token_hex(8)}"
        self._incremental_keys = [
            f"{writer}-{part}" if arguments.boolean("incremental", incremental) else ""
            for part in range(len(parts))
        ]
        if any(self._incremental_keys):
            finalizer = weakref.finalize(self, _release_all, list(self._incremental_keys))
            finalizer.atexit = False  # the process frees it then

    @property
    def iterator(self) -> Any:
        """The wrapped iterator."""
        return self._iterator

    @property
    def parts(self) -> list[Any]:
        """The plain iterators saved: `[iterator]`, or one per replica."""
        return list(self._parts)

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

    def _write_state(self, prefixes: list[Any]) -> list[Any]:
        """Saves each part's live state as our checkpoint `prefixes[i]` (committed on return)."""
        return [
            ops.save_iterator(
                iterator_resource(part), prefix,
                external_state_policy=self._policy_value, num_shards=self._num_shards,
                fsync=self._fsync, asynchronous=False, incremental_key=key,
            )
            for part, prefix, key in zip(self._parts, prefixes, self._incremental_keys)
        ]

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
        self._states = [
            tf.Variable(state, dtype=tf.variant, shape=tf.TensorShape(None), trainable=False)
            for state in self._serialize()
        ]

    def _serialize(self) -> list[tf.Tensor]:
        original = self._original
        return [
            gen_dataset_ops.serialize_iterator(
                iterator_resource(part), external_state_policy=original._policy_value,
            )
            for part in original.parts
        ]

    @property
    def iterator(self) -> Any:
        """The iterator whose state this is."""
        return self._original.iterator

    @property
    def parts(self) -> list[Any]:
        """The plain iterators whose states these are."""
        return self._original.parts

    def capture(self) -> None:
        for variable, state in zip(self._states, self._serialize()):
            variable.assign(state)

    def _write_state(self, prefixes: list[Any]) -> list[Any]:
        original = self._original
        return [
            ops.save_iterator_shards(
                variable.read_value(), prefix, num_shards=original._num_shards,
                fsync=original._fsync, asynchronous=False, incremental_key=key,
            )
            for variable, prefix, key in zip(
                self._states, prefixes, original._incremental_keys)
        ]


def _release_all(keys: list[str]) -> None:
    for key in keys:
        if key:
            release_incremental_base(key)


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
    widths = [len(trackables[key].parts) for key in keys]
    # Every part of every iterator gets its own prefix, all of one save (one token).
    starts = [sum(widths[:i]) for i in range(len(keys))]
    if tf.executing_eagerly():
        tf_prefix = _tf_prefix(file_prefix.numpy().decode())
        prefixes = beside_writes.begin_save(tf_prefix, sum(widths))
        references = []
        for key, start, width in zip(keys, starts, widths):
            mine = prefixes[start:start + width]
            trackables[key]._write_state(mine)
            references.append(_reference([layout.split_path(p)[1] for p in mine]))
    else:
        # Inside tf.function (ckpt.write in a tf.function, TF's multi-device
        # saves): the token and the sweep must happen at every call, not at
        # trace time, hence the py_function.
        count = sum(widths)
        prefixes = tf.py_function(
            lambda p: beside_writes.begin_save(p.numpy().decode(), count),
            [_tf_prefix(file_prefix)], Tout=[tf.string] * count,
        )
        references = []
        for key, start, width in zip(keys, starts, widths):
            written = trackables[key]._write_state(prefixes[start:start + width])
            references.append(_reference(
                [tf.strings.regex_replace(w, "^.*/", "") for w in written]))
    save = io_ops.save_v2(
        file_prefix, [layout.reference_key(key) for key in keys], [""] * len(keys), references,
    )
    # TF merges after the shard saves it knows of; this makes the merge wait
    # for our SaveV2 (and thus for our files) inside a tf.function too.
    with tf.control_dependencies([save]):
        return tf.identity(file_prefix)


def _reference(names: list[Any]) -> tf.Tensor:
    """What TF's bundle holds for one iterator: its name, or the vector of its parts' names."""
    if len(names) == 1:
        return tf.convert_to_tensor(names[0], tf.string)
    return tf.stack(names)


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
            parts = raw[key].parts
            if len(parts) != 1:
                raise ValueError(
                    f"The TF checkpoint holds a raw iterator's state for {key!r}, but this "
                    f"TrackableIterator has {len(parts)} replicas: only a plain iterator "
                    "can be restored from a raw iterator's checkpoint."
                )
            gen_dataset_ops.deserialize_iterator(iterator_resource(parts[0]), state)
    return restore


def _restore_ours(trackables: dict[str, Any], merged_prefix: tf.Tensor) -> Any:
    keys = sorted(trackables)
    references = io_ops.restore_v2(
        merged_prefix, [layout.reference_key(key) for key in keys], [""] * len(keys),
        [tf.string] * len(keys),
    )
    iterators = []
    if not tf.executing_eagerly():
        directory = tf.strings.regex_replace(merged_prefix, "[^/]*$", "")
        prefixes = []
        for key, reference in zip(keys, references):
            parts = trackables[key].parts
            names = tf.reshape(reference, [-1])
            with tf.control_dependencies([tf.debugging.assert_equal(
                    tf.size(names), len(parts),
                    message=f"the TF checkpoint holds the input state of another number of "
                            f"iterators (replicas) for {key!r} than the {len(parts)} of this "
                            "TrackableIterator")]):
                names = tf.identity(names)
            iterators += parts
            prefixes += [directory + name for name in tf.unstack(names, num=len(parts))]
        return atomic_restore.build_graph_restore(iterators, prefixes)
    merged = merged_prefix.numpy().decode() if hasattr(merged_prefix, "numpy") else merged_prefix
    directory, _ = layout.split_path(merged)
    prefixes = []
    for key, reference in zip(keys, references):
        names = [n.decode() if isinstance(n, bytes) else str(n)
                 for n in np.asarray(reference.numpy(), dtype=object).reshape(-1)]
        parts = trackables[key].parts
        if len(names) != len(parts):
            raise ValueError(
                f"The TF checkpoint {merged} holds the input state of {len(names)} iterators "
                f"(replicas) for {key!r}, but this TrackableIterator has {len(parts)}: restore "
                "it into a distributed iterator with as many replicas as it was saved from."
            )
        for name in names:
            if not layout.is_beside_name(name):
                raise tf.errors.DataLossError(
                    None, None,
                    f"{merged}: the input state reference of {key!r} is not a file name of "
                    f"ours: {name!r}",
                )
            prefixes.append(layout.join_path(directory, name))
        iterators += parts
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
