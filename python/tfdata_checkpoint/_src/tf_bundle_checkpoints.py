"""Migration: restoring input checkpoints written by TensorFlow's own hook.

`tf.data.experimental.CheckpointInputPipelineHook` (TF <= 2.15) saves the
iterators through a `tf.compat.v1.train.Saver` as tensor bundles,
`<dir>/<prefix>.ckpt-<step>.index` plus `.data-00000-of-00001` (and a `.meta`
graph), and lists them in the state file `<dir>/checkpoint_<prefix>`, the same
names this library uses. Each iterator's state is one DT_VARIANT tensor keyed
`<iterator resource tensor name>_STATE`, e.g. `IteratorV2:0_STATE` (TF's
`_IteratorSaveable`).

On the first start in such a directory, when it holds no checkpoint in our
format, the hook restores the iterators from the TF checkpoint that its usual
rule picks (that of the model's step, else the newest before it; without a
model checkpoint, the newest), logs that it migrated, and from then on saves in
its own format. The TF files are left where they are: they are never listed,
counted by `max_to_keep` or deleted, and the state file lists only our
checkpoints from our first commit on. Delete them by hand once they are no
longer needed (`<prefix>.ckpt-<step>.index`, `.data-*`, `.meta`).

Reading goes through `RestoreV2` and `DeserializeIterator`, in the training
graph, next to each iterator, so it works on every TensorFlow filesystem and
in a distributed session.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import tensorflow as tf
from tensorflow.python.ops import gen_dataset_ops

from tfdata_checkpoint._src.layout import join_path
from tfdata_checkpoint._src.storage.index_format import IndexFormat, index_format

logger = logging.getLogger(__name__)

STATE_KEY_SUFFIX = "_STATE"


class TFBundleCheckpoint(NamedTuple):
    """An input checkpoint written by TF's hook (a tensor bundle)."""

    prefix: str
    step: int


def list_tf_bundle_checkpoints(
    directory: str, basename: str, latest_filename: str
) -> list[TFBundleCheckpoint]:
    """The TF-format checkpoints that the state file lists, oldest first.

    Only those whose `.index` exists and is a tensor bundle; the state file's
    paths may be absolute (TF's Saver) or relative to `directory`.
    """
    try:
        state = tf.train.get_checkpoint_state(directory, latest_filename)
    except (tf.errors.OpError, ValueError) as error:
        logger.warning("Ignoring unreadable state file %s: %s", latest_filename, error)
        return []
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    found: dict[int, TFBundleCheckpoint] = {}
    prefix_of_step = basename + "-"
    for path in paths:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if not name.startswith(prefix_of_step) or not name[len(prefix_of_step) :].isdigit():
            continue
        step = int(name[len(prefix_of_step) :])
        # Found in the directory itself, wherever the state file says it was
        # written: directories get moved, and TF's Saver records absolute paths.
        prefix = join_path(directory, name)
        if step not in found and index_format(prefix + ".index") is IndexFormat.TF_BUNDLE:
            found[step] = TFBundleCheckpoint(prefix, step)
    return sorted(found.values(), key=lambda c: c.step)


def choose_tf_bundle_checkpoint(
    checkpoints: Sequence[TFBundleCheckpoint], model_step: int | None
) -> TFBundleCheckpoint | None:
    """The one to restore: the hook's rule, as for our own checkpoints.

    Without a model step the newest; else that of exactly `model_step`, else
    the newest before it (with a warning), else none.
    """
    if not checkpoints:
        return None
    if model_step is None:
        return checkpoints[-1]
    earlier = [c for c in checkpoints if c.step <= model_step]
    if not earlier:
        logger.warning(
            "Every TF-format input pipeline checkpoint is newer than the model's step %d; "
            "not migrating: the input pipeline starts over.",
            model_step,
        )
        return None
    chosen = earlier[-1]
    if chosen.step != model_step:
        logger.warning(
            "No TF-format input pipeline checkpoint for the model's step %d; restoring the "
            "newest one before it, of step %d.",
            model_step,
            chosen.step,
        )
    return chosen


def state_keys(prefix: str) -> list[str]:
    """The iterator-state keys in the tensor bundle `prefix`, sorted.

    Raises:
      tf.errors.OpError: the bundle cannot be read (it names the file).
    """
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    return sorted(
        key
        for key, dtype in reader.get_variable_to_dtype_map().items()
        if key.endswith(STATE_KEY_SUFFIX) and dtype == tf.variant
    )


def match_keys(iterator_names: Sequence[str], keys: Sequence[str], prefix: str) -> list[str]:
    """The bundle key holding each iterator's state, in iterator order.

    By name, as TF's Saver restores (`<iterator tensor name>_STATE`). A single
    iterator and a single key go together whatever their names, so that a
    graph whose iterator op got another name still restores.

    Raises:
      ValueError: naming the checkpoint, when they do not match.
    """
    wanted = [name + STATE_KEY_SUFFIX for name in iterator_names]
    if all(key in keys for key in wanted):
        return wanted
    if len(iterator_names) == 1 and len(keys) == 1:
        logger.warning(
            "TF-format input checkpoint %s holds %s, not %s; restoring it into the one iterator.",
            prefix,
            keys[0],
            wanted[0],
        )
        return list(keys)
    raise ValueError(
        f"TF-format input checkpoint {prefix} holds the iterator states {list(keys)}, "
        f"which do not match this graph's iterators {list(iterator_names)}"
    )


class TFBundleRestore:
    """Graph ops that restore iterators from a TF-format input checkpoint.

    Build it while the graph can still change (the hook's `begin()`); run
    `restore` once the session exists.

    Args:
      iterators: the iterator resource tensors, in collection order.
    """

    def __init__(self, iterators: Sequence[Any]) -> None:
        self._names = [iterator.name for iterator in iterators]
        graph = tf.compat.v1.get_default_graph()
        self._prefix = tf.compat.v1.placeholder(tf.string, [], name="tf_bundle_prefix")
        self._keys = []
        restores = []
        for i, iterator in enumerate(iterators):
            key = tf.compat.v1.placeholder(tf.string, [], name=f"tf_bundle_key_{i}")
            self._keys.append(key)
            # Next to the iterator: a variant iterator state cannot cross processes.
            with graph.colocate_with(iterator):
                (state,) = tf.raw_ops.RestoreV2(
                    prefix=self._prefix,
                    tensor_names=tf.reshape(key, [1]),
                    shape_and_slices=[""],
                    dtypes=[tf.variant],
                )
                restores.append(gen_dataset_ops.deserialize_iterator(iterator, state))
        self._restore_op = tf.group(restores, name="restore_tf_bundle")

    def restore(self, session: Any, checkpoint: TFBundleCheckpoint) -> None:
        """Restores every iterator from `checkpoint`.

        Raises:
          ValueError: its keys do not match the iterators.
          tf.errors.OpError: it cannot be read, naming the file.
        """
        keys = match_keys(self._names, state_keys(checkpoint.prefix), checkpoint.prefix)
        feed = {self._prefix: checkpoint.prefix}
        feed.update(zip(self._keys, keys))
        session.run(self._restore_op, feed_dict=feed)
