"""make_saveable_from_iterator: the input state in a TF1 `Saver`'s checkpoint, by our writer.

TF's `tf.data.experimental.make_saveable_from_iterator` gives a
`SaveableObject` whose tensor is the whole serialized iterator state, written
into the Saver's tensor bundle. The one here has the same signature and use
(the `SAVEABLE_OBJECTS` collection, or a Saver's `var_list`), but its tensor is
the output of our `SaveIterator` op: the state goes to our files beside the
Saver's checkpoint (`layout`: `<checkpoint>.tfdc-<token>-0.*`), and the bundle
holds their name. The Saver writes its index after all its tensors, so a
checkpoint never exists without committed input state.

Everything is graph ops, so that a Saver rebuilt from an exported meta graph
(`import_meta_graph`) saves and restores it too (import `tfdata_checkpoint`
first: it registers the ops). The checkpoint prefix is the Saver's filename
tensor, taken from the Saver builder that asks for the tensor (a
`SaveableObject` is not told where it is saved), and the token is made in the
graph from the time in microseconds and a random number at each save.

Before our files are written, each save removes ours that belong to no TF
checkpoint any more (op `SweepBesideCheckpoints`, as TrackableIterator's saves
do from Python): those of checkpoints the Saver's `max_to_keep` deleted, of
killed saves, and of saves replaced by a later save of the same name. The
Saver deletes its old checkpoints after its save op has run, so ours of the
checkpoint deleted at a save go at the next save, and those of the one deleted
at the last save when the process exits (`SweepBesideCheckpointsAgain`, which
repeats each directory's last sweep, at `atexit`: the op remembers its sweeps
in the process, so a Saver from `import_meta_graph` is covered too); nothing
sweeps at restore (another process, e.g. an evaluator, may restore while the
trainer saves).
"""

from __future__ import annotations

import atexit
import logging
import secrets
import sys
import weakref
from typing import Any

import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.python.training import saver as saver_lib
from tensorflow.python.training.saving import saveable_object

from tfdata_checkpoint import ops
from tfdata_checkpoint._src import arguments, layout
from tfdata_checkpoint._src.iterator_state import (
    external_state_policy_value,
    iterator_resource,
    normalize_external_state_policy,
    release_incremental_base,
)

_HEX_DIGITS = "0123456789abcdef"
_TOKEN_DIGITS = 16


def make_saveable_from_iterator(
    iterator: Any, external_state_policy: Any = "fail", *, incremental: bool = True
) -> Any:
    """A SaveableObject saving `iterator`'s state with the model's own `Saver`, by our writer.

    Use it as TF's: add it to the `SAVEABLE_OBJECTS` collection (then the
    default Saver of `MonitoredTrainingSession`, `CheckpointSaverHook` and
    Estimator saves and restores it with the model) or pass it in a Saver's
    `var_list`:

        it = tf.compat.v1.data.make_initializable_iterator(dataset)
        saveable = tfdata_checkpoint.make_saveable_from_iterator(it)
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.SAVEABLE_OBJECTS, saveable)

    The state is written as our sharded files next to the Saver's checkpoint,
    and the checkpoint's bundle holds only their name.

    Args:
      iterator: a `tf.compat.v1` iterator (graph mode).
      external_state_policy: 'fail' (default, also for None), 'warn', 'ignore'
        or a `tf.data.experimental.ExternalStatePolicy`.
      incremental: a save writes only the tensors (buffered elements) that
        the previous save of this saveable into the same directory does not
        hold; the rest are references into that save's shards
        (docs/INCREMENTAL.md). The tensors of the last save are held until the
        next one, or until the saveable is garbage-collected with its graph.
        False writes every tensor each time.

    Raises:
      ValueError: not a graph-mode tf.data iterator, or a bad policy.
    """
    policy = external_state_policy_value(normalize_external_state_policy(external_state_policy))
    if tf.executing_eagerly():
        raise ValueError(
            "make_saveable_from_iterator is for tf.compat.v1 graphs; in TF2 put "
            "tfdata_checkpoint.TrackableIterator(iterator) into tf.train.Checkpoint"
        )
    resource = iterator_resource(iterator)
    return _IteratorSaveable(resource, policy, arguments.boolean("incremental", incremental))


class _IteratorSaveable(saveable_object.SaveableObject):
    """Saves the iterator behind `resource` as our files; the bundle gets their name."""

    def __init__(self, resource: tf.Tensor, policy: int, incremental: bool) -> None:
        self._resource = resource
        self._policy = policy
        # One writer per saveable: its saves may reference its own last one.
        self._incremental_key = (
            f"make_saveable_from_iterator-{secrets.token_hex(8)}" if incremental else ""
        )
        if incremental:
            finalizer = weakref.finalize(self, release_incremental_base, self._incremental_key)
            finalizer.atexit = False  # the process frees it then
        name = resource.op.name
        spec = saveable_object.SaveSpec(
            self._save_tensor, "", layout.reference_key(name), dtype=tf.string,
            device=resource.device,
        )
        super().__init__(resource, [spec], name)

    def _save_tensor(self) -> tf.Tensor:
        # Built when the Saver builds its save op, from that Saver's filename.
        tf_prefix = _saver_checkpoint_prefix()
        with tf.compat.v1.colocate_with(self._resource):
            save = _save_of(tf_prefix)
            part = save.parts.setdefault(id(self), len(save.parts))
            prefix = tf.strings.join([tf_prefix, layout.BESIDE_INFIX, save.token, f"-{part}"])
            with tf.control_dependencies([save.sweep]):
                saved = ops.save_iterator(self._resource, prefix,
                                          external_state_policy=self._policy, asynchronous=False,
                                          incremental_key=self._incremental_key)
            return tf.strings.regex_replace(saved, "^.*/", "")

    def restore(self, restored_tensors: Any, restored_shapes: Any) -> tf.Operation:
        del restored_shapes
        tf_prefix = _saver_checkpoint_prefix()
        with tf.compat.v1.colocate_with(self._resource):
            directory = tf.strings.regex_replace(tf_prefix, "[^/]*$", "")
            return ops.restore_iterator(self._resource, directory + restored_tensors[0])


class _SaverSave:
    """What the saveables of one Saver's save op share: token, sweep, parts.

    One token per save, each saveable its own part (`<ckpt>.tfdc-<token>-<part>`),
    as TrackableIterator's iterators in one checkpoint: the sweep, which
    protects the token, then never takes another saveable's files of the same
    save for those of a killed one.
    """

    def __init__(self, tf_prefix: tf.Tensor) -> None:
        self.token = _graph_token()
        # Before our files are written: removes ours of TF checkpoints the Saver
        # deleted since (it deletes after its save op, in Python, so those of the
        # one deleted at a save go at the next), of killed saves, and of saves
        # that a later save of the same name replaced. Problems are logged only.
        self.sweep = ops.sweep_beside_checkpoints(
            tf_prefix, tf.reshape(self.token, [1]), again_at_exit=True).op
        self.parts: dict[int, int] = {}


# Graph -> the filename tensor's name -> the save op being built with it.
_saves: weakref.WeakKeyDictionary[tf.Graph, dict[str, _SaverSave]] = weakref.WeakKeyDictionary()


def _save_of(tf_prefix: tf.Tensor) -> _SaverSave:
    by_filename = _saves.setdefault(tf_prefix.graph, {})
    save = by_filename.get(tf_prefix.name)
    if save is None:
        save = by_filename[tf_prefix.name] = _SaverSave(tf_prefix)
    return save


def _graph_token() -> tf.Tensor:
    """16 hex digits, new at each run: microseconds since the epoch, then 12 random bits.

    The time keeps tokens of restarted jobs apart even with a fixed graph seed.
    """
    micros = tf.cast(tf.timestamp() * 1e6, tf.int64)
    noise = tf.random.uniform([], 0, 1 << 12, dtype=tf.int64)
    value = tf.bitwise.bitwise_or(tf.bitwise.left_shift(micros, 12), noise)
    shifts = tf.constant([4 * (_TOKEN_DIGITS - 1 - i) for i in range(_TOKEN_DIGITS)], tf.int64)
    digits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(value, shifts), 15)
    return tf.strings.reduce_join(tf.gather(tf.constant(list(_HEX_DIGITS)), digits))


def _saver_checkpoint_prefix() -> tf.Tensor:
    """The filename tensor of the `Saver` being built (the checkpoint prefix it writes)."""
    frame = sys._getframe(1)
    while frame is not None:
        builder = frame.f_locals.get("self")
        if frame.f_code.co_name == "_build_internal" and isinstance(
                builder, saver_lib.BaseSaverBuilder):
            return frame.f_locals["filename_tensor"]
        frame = frame.f_back
    raise ValueError(
        "the saveable of tfdata_checkpoint.make_saveable_from_iterator can be saved and "
        "restored by a tf.compat.v1.train.Saver only"
    )


logger = logging.getLogger(__name__)


def _sweep_again_at_exit() -> None:
    """Removes ours of the TF checkpoints the Savers of this process deleted at their last save."""
    try:
        with context.eager_mode():
            ops.sweep_beside_checkpoints_again()
    except Exception as error:  # noqa: BLE001 - at exit nothing can handle it
        logger.warning("Cannot remove old input state files at exit: %s", error)


# Registered at import, before any Saver: atexit runs last-in first-out, so this
# runs after the handlers of what is imported later.
atexit.register(_sweep_again_at_exit)
