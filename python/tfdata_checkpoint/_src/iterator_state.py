"""Saving and restoring a tf.data iterator with the tfdata-checkpoint ops."""

from __future__ import annotations

import json
import os
from typing import Any, Union

import tensorflow as tf
from tensorflow.python.eager import context

from tfdata_checkpoint import ops
from tfdata_checkpoint._src import arguments

# The values of tensorflow::data::ExternalStatePolicy.
EXTERNAL_STATE_POLICIES = {"warn": 0, "ignore": 1, "fail": 2}

PathLike = Union[str, "os.PathLike[str]"]


def external_state_policy_value(policy: str) -> int:
    """Maps 'warn' / 'ignore' / 'fail' to the op attribute; ValueError otherwise."""
    if policy not in EXTERNAL_STATE_POLICIES:
        raise ValueError(
            f"external_state_policy must be one of {sorted(EXTERNAL_STATE_POLICIES)}, "
            f"got {policy!r}"
        )
    return EXTERNAL_STATE_POLICIES[policy]


def normalize_external_state_policy(policy: Any) -> str:
    """'warn' / 'ignore' / 'fail' from what TF's APIs accept: those strings, None
    (meaning 'fail', as in `make_saveable_from_iterator`) or a
    `tf.data.experimental.ExternalStatePolicy`; ValueError otherwise."""
    if policy is None:
        return "fail"
    if isinstance(policy, tf.data.experimental.ExternalStatePolicy):
        return policy.name.lower()
    external_state_policy_value(policy)
    return policy


def iterator_resource(iterator: Any) -> Any:
    """The resource tensor behind an eager or a tf.compat.v1 iterator."""
    resource = getattr(iterator, "_iterator_resource", None)
    if resource is not None:
        return resource
    if isinstance(iterator, tf.Tensor) and iterator.dtype == tf.resource:
        return iterator
    raise ValueError(
        "iterator must be a tf.data iterator (iter(dataset) or a tf.compat.v1 "
        f"iterator), got {type(iterator).__name__}"
    )


def _check_prefix(prefix: Any) -> Any:
    if isinstance(prefix, os.PathLike):
        prefix = os.fspath(prefix)
    if isinstance(prefix, bytes):
        prefix = prefix.decode()
    if isinstance(prefix, str):
        if not prefix:
            raise ValueError("prefix must not be empty")
        return prefix
    if isinstance(prefix, tf.Tensor) and prefix.dtype == tf.string:
        return prefix
    raise ValueError(f"prefix must be a string or a string tensor, got {type(prefix).__name__}")


def _check_save_prefix(prefix: Any) -> Any:
    """`_check_prefix`, and a string prefix must end in a file name.

    A prefix ending in "/" (or "/.", "/..") names a directory: the save would
    write files that no restore can read back.
    """
    prefix = _check_prefix(prefix)
    if isinstance(prefix, str) and prefix.rsplit("/", 1)[-1] in ("", ".", ".."):
        raise ValueError(
            f"prefix {prefix!r} ends in a directory, not a file name: a checkpoint is "
            "<prefix>.index and its shard files, so the prefix must end in a file name, "
            "e.g. <directory>/input.ckpt-<step>"
        )
    return prefix


def check_num_shards(num_shards: int | None) -> int:
    """The op attribute for `num_shards` (None: 0, automatic); ValueError if not a positive int."""
    return arguments.integer("num_shards", num_shards, minimum=1, none_ok=True) or 0


def _maybe_numpy(result: Any) -> Any:
    if tf.executing_eagerly() and hasattr(result, "numpy"):
        value = result.numpy()
        if isinstance(value, bytes):
            return value.decode()
        return [v.decode() for v in value]
    return result


def save_iterator(
    iterator: Any,
    prefix: PathLike,
    *,
    external_state_policy: str = "fail",
    num_shards: int | None = None,
    fsync: bool = True,
    asynchronous: bool = False,
    incremental_key: str = "",
) -> Any:
    """Saves the state of `iterator` as the checkpoint `prefix`.

    The state (shuffle and prefetch buffers included) is captured through the
    iterator's own Save, without `serialize_iterator` and without a copy, and
    written as `num_shards` files in parallel, then committed by renaming
    `<prefix>.index` into place: a checkpoint exists exactly when its index
    does, and a failed save leaves the previous one at `prefix` intact.

    Args:
      iterator: `iter(dataset)` in eager mode, or a `tf.compat.v1` iterator.
      prefix: path prefix of the checkpoint files, on any TensorFlow filesystem.
      external_state_policy: 'fail' (default), 'warn' or 'ignore': what to do
        when the pipeline depends on state outside it (e.g. a Python function).
      num_shards: number of shard files; None picks one from size and cores.
      fsync: make the files durable before returning (or before committing,
        when asynchronous).
      asynchronous: return as soon as the state is captured; the files are
        written in the background. Use `wait_for_pending_saves` for the result.
      incremental_key: empty (default): write every tensor. A key: tensors
        that the last checkpoint saved with this key (in this process, into
        the same directory) holds are referenced instead of written again
        (see `release_incremental_base`).

    Returns:
      Eagerly, the prefix (committed unless `asynchronous`). In graph mode, a
      string tensor whose evaluation performs the save.
    """
    policy = external_state_policy_value(external_state_policy)
    shards = check_num_shards(num_shards)
    prefix = _check_save_prefix(prefix)
    resource = iterator_resource(iterator)
    saved = ops.save_iterator(
        resource, prefix, external_state_policy=policy, num_shards=shards,
        fsync=bool(fsync), asynchronous=bool(asynchronous),
        incremental_key=str(incremental_key),
    )
    return _maybe_numpy(saved)


def release_incremental_base(key: str) -> None:
    """Lets go of the tensors kept for incremental saves under `key` (no error if none)."""
    with context.eager_mode():  # also from a hook's end(), in graph mode
        ops.release_incremental_base(str(key))


def restore_iterator(iterator: Any, prefix: PathLike) -> Any:
    """Restores `iterator` from the checkpoint `prefix`.

    Raises `tf.errors.NotFoundError` when the checkpoint or one of its files is
    missing and `tf.errors.DataLossError` when any byte fails its checksum;
    the iterator is left untouched in both cases.

    Returns:
      None eagerly; in graph mode, the op that performs the restore.
    """
    prefix = _check_prefix(prefix)
    resource = iterator_resource(iterator)
    return ops.restore_iterator(resource, prefix)


def wait_for_pending_saves(directory: PathLike | None = None) -> Any:
    """Waits for asynchronous saves into `directory` (all directories if None).

    Returns the prefixes committed since the last wait, and raises the error of
    a background save that failed.
    """
    directory = "" if directory is None else os.fspath(directory)
    return _maybe_numpy(ops.wait_for_iterator_shards(directory))


def describe_checkpoint(prefix: PathLike, *, verify: bool = False) -> dict[str, Any]:
    """The description of the checkpoint `prefix` (`DescribeIteratorShards`) as a dict.

    Runs eagerly whatever the calling context, also while a graph is being
    built or a hook runs inside a session.

    Raises:
      tf.errors.OpError: the index is missing or damaged; with `verify`, also
        a damaged or missing shard (naming the file).
    """
    with context.eager_mode():
        description = ops.describe_iterator_shards(os.fspath(prefix), verify=bool(verify))
        return json.loads(description.numpy())
