"""The raw ops, for your own graphs and `tf.function`s.

These are the op functions TensorFlow generates from the registrations in
`cc/ops/`, whose documentation they carry (`help(tfdata_checkpoint.ops.save_iterator)`).
They work eagerly, in graphs and inside `tf.function`, like any TensorFlow op:

- `save_iterator(iterator, prefix, external_state_policy=2, num_shards=0, fsync=True,
  asynchronous=False, incremental_key="")` / `restore_iterator(iterator, prefix)`: through
  the iterator's own Save/Restore (`iterator` is its resource tensor).
- `save_iterator_shards(state, prefix, num_shards=0, fsync=True, asynchronous=False,
  incremental_key="")` / `restore_iterator_shards(prefix)`: the state as a variant, for
  `tf.raw_ops.SerializeIterator` / `DeserializeIterator`; same files.
- `incremental_key`: empty (the default) writes every tensor; a key lets the save
  reference the tensors of the last checkpoint saved with that key in this process
  (same directory) instead of writing them again. `release_incremental_base(key)`
  lets go of what the key holds (buffered tensors of that last save).
- `check_iterator_element_spec(iterator, prefix)`, `wait_for_iterator_shards(directory)`,
  `describe_iterator_shards(prefix, verify=False)`.
- `sweep_beside_checkpoints(tf_prefix, protected_tokens)`: removes our files beside TF
  checkpoints (`TrackableIterator`, `make_saveable_from_iterator`) of the base of
  `tf_prefix` (`ckpt` for `ckpt-3`) that no TF checkpoint names any more; returns the
  paths removed. Every Saver save of `make_saveable_from_iterator` runs it first (with
  `again_at_exit=True`); `sweep_beside_checkpoints_again()` repeats each directory's last
  such sweep, which the package does when the process exits.
"""

from __future__ import annotations

from tfdata_checkpoint._src import op_library

_ops = op_library.load()

save_iterator = _ops.save_iterator
restore_iterator = _ops.restore_iterator
save_iterator_shards = _ops.save_iterator_shards
restore_iterator_shards = _ops.restore_iterator_shards
check_iterator_element_spec = _ops.check_iterator_element_spec
wait_for_iterator_shards = _ops.wait_for_iterator_shards
describe_iterator_shards = _ops.describe_iterator_shards
release_incremental_base = _ops.release_incremental_base
sweep_beside_checkpoints = _ops.sweep_beside_checkpoints
sweep_beside_checkpoints_again = _ops.sweep_beside_checkpoints_again

__all__ = [
    "check_iterator_element_spec",
    "describe_iterator_shards",
    "release_incremental_base",
    "restore_iterator",
    "restore_iterator_shards",
    "save_iterator",
    "save_iterator_shards",
    "sweep_beside_checkpoints",
    "sweep_beside_checkpoints_again",
    "wait_for_iterator_shards",
]
