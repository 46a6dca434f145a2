"""Thin wrappers over the generated op functions.

They work eagerly, in graphs and inside `tf.function`, like any TensorFlow op.
"""

from __future__ import annotations

from typing import Any

from tfdata_checkpoint import _op_library

_ops = _op_library.load()


def save_iterator_shards(
    state: Any,
    prefix: Any,
    *,
    num_shards: int = 0,
    fsync: bool = True,
    asynchronous: bool = False,
    name: str | None = None,
) -> Any:
    """Writes iterator state (from `SerializeIterator`) as a sharded checkpoint.

    Args:
      state: 1-D variant tensor returned by `serialize_iterator`.
      prefix: scalar string; the checkpoint is `<prefix>.index` plus shards.
      num_shards: shard files to write; 0 picks a count from size and cores.
      fsync: make shards, index and directory durable before the save counts.
      asynchronous: return once the state is captured and write in the
        background; `wait_for_iterator_shards` reports the result.
      name: op name.

    Returns:
      A scalar string tensor: the prefix.
    """
    return _ops.save_iterator_shards(
        state, prefix, num_shards=num_shards, fsync=fsync, asynchronous=asynchronous, name=name
    )


def save_iterator(
    iterator_resource: Any,
    prefix: Any,
    *,
    external_state_policy: int = 2,
    num_shards: int = 0,
    fsync: bool = True,
    asynchronous: bool = False,
    name: str | None = None,
) -> Any:
    """Saves an iterator through its own Save, without `serialize_iterator`.

    Every buffered tensor is kept by reference while the files are written.

    Args:
      iterator_resource: the iterator's resource tensor.
      prefix: scalar string; the checkpoint is `<prefix>.index` plus shards.
      external_state_policy: 0 warn, 1 ignore, 2 fail.
      num_shards: shard files to write; 0 picks a count from size and cores.
      fsync: make shards, index and directory durable before the save counts.
      asynchronous: return once the state is captured and write in the
        background; `wait_for_iterator_shards` reports the result.
      name: op name.

    Returns:
      A scalar string tensor: the prefix.
    """
    return _ops.save_iterator(
        iterator_resource, prefix, external_state_policy=external_state_policy,
        num_shards=num_shards, fsync=fsync, asynchronous=asynchronous, name=name,
    )


def restore_iterator(iterator_resource: Any, prefix: Any, name: str | None = None) -> Any:
    """Restores an iterator through its own Restore, without `deserialize_iterator`.

    Reads and verifies the whole checkpoint before the iterator is touched.
    """
    return _ops.restore_iterator(iterator_resource, prefix, name=name)


def check_iterator_element_spec(iterator_resource: Any, prefix: Any,
                                name: str | None = None) -> Any:
    """Raises `InvalidArgumentError` unless the checkpoint's element spec fits the iterator.

    Reads the index only. `restore_iterator` makes this check itself; use it
    before `deserialize_iterator(restore_iterator_shards(prefix))`.
    """
    return _ops.check_iterator_element_spec(iterator_resource, prefix, name=name)


def wait_for_iterator_shards(directory: Any = "", name: str | None = None) -> Any:
    """Waits for background saves into `directory` ("" for all of them).

    Returns a 1-D string tensor of the prefixes committed since the last wait,
    and raises the error of a background save that failed.
    """
    return _ops.wait_for_iterator_shards(directory, name=name)


def restore_iterator_shards(prefix: Any, name: str | None = None) -> Any:
    """Reads a checkpoint back as the variant tensor `deserialize_iterator` takes."""
    return _ops.restore_iterator_shards(prefix, name=name)


def describe_iterator_shards(prefix: Any, *, verify: bool = False, name: str | None = None) -> Any:
    """Returns a JSON description of a checkpoint; with `verify`, checks every byte."""
    return _ops.describe_iterator_shards(prefix, verify=verify, name=name)
