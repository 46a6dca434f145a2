"""Recording a committed checkpoint: the state file, then pruning, then the leftover sweep.

What to keep is `policy.keep_policy`'s; what the directory holds,
`storage.listing`'s; how files go, `storage.collector`'s. This module puts
them in the order that keeps every step safe: nothing is deleted before a newer
checkpoint has committed and been recorded.
"""

from __future__ import annotations

from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

from tfdata_checkpoint._src.policy.keep_policy import check_max_to_keep, steps_to_keep
from tfdata_checkpoint._src.storage import collector, state_file
from tfdata_checkpoint._src.storage.listing import CheckpointListing
from tfdata_checkpoint._src.storage.references import ReferencedFiles


class CheckpointRetention(CheckpointListing):
    """Lists, records and prunes the committed checkpoints of one directory.

    Args:
      directory: the checkpoint directory (any TensorFlow filesystem).
      basename: file name of a checkpoint before `-<step>`, e.g. `input.ckpt`.
      latest_filename: name of the state file, e.g. `checkpoint_input`.
      max_to_keep: how many committed checkpoints to keep; None or 0 keeps all.
      num_parts: how many iterators each checkpoint holds.

    Raises:
      ValueError: on an empty `directory` / `basename` / `latest_filename`, a
        negative `max_to_keep` or a `num_parts` below 1.
    """

    def __init__(
        self,
        directory: str,
        basename: str,
        *,
        latest_filename: str,
        max_to_keep: int | None = 5,
        num_parts: int = 1,
    ) -> None:
        super().__init__(directory, basename, latest_filename, num_parts)
        object.__setattr__(self, "max_to_keep", check_max_to_keep(max_to_keep) or None)
        object.__setattr__(self, "_references", ReferencedFiles())

    def record(self, step: int) -> list[str]:
        """Records the newly committed checkpoint of `step` and prunes old ones.

        Writes the state file with `step` as the latest, then deletes the
        oldest checkpoints beyond `max_to_keep`. Only call this once the
        checkpoint has committed: nothing is deleted before a newer checkpoint
        exists. Then removes the leftovers of saves that never committed
        (`collector.sweep`): call it only when no save of this basename is in
        flight, as `CheckpointWrites` does.

        Returns:
          The prefixes deleted.
        """
        if not self.is_committed(step):
            raise ValueError(f"step {step}: the checkpoint {self.prefix(step)} has not committed")
        order = [s for s in self.committed_steps() if s != step] + [step]
        keep = steps_to_keep(order, self.max_to_keep)
        self._write_state(step, keep)
        # Shards of deleted checkpoints that a kept one reads (incremental
        # saves) stay until none does.
        referenced = self._references.of_all(
            [self.part_prefix(s, part) for s in keep for part in range(self.num_parts)]
        )
        deleted = []
        for old in order:
            if old not in keep:
                collector.delete(self, old, referenced)
                deleted.append(self.prefix(old))
        # Files of writes that never committed (killed or failed) are garbage
        # now: this writer has no other write in flight while it records.
        collector.sweep(self, referenced)
        return deleted

    def _write_state(self, latest: int, steps: list[int]) -> None:
        # Relative paths keep the directory relocatable, as Saver's
        # save_relative_paths does.
        state = CheckpointState(
            model_checkpoint_path=f"{self.basename}-{int(latest)}",
            all_model_checkpoint_paths=[f"{self.basename}-{int(s)}" for s in steps],
        )
        state_file.write(self.directory, state, self.latest_filename)

    def delete(self, step: int) -> None:
        """Deletes the checkpoint of `step`, keeping its shards that another one reads.

        See `collector.delete`; the other checkpoints are those committed.
        """
        others = [s for s in self.committed_steps() if s != step]
        referenced = self._references.of_all(
            [self.part_prefix(s, part) for s in others for part in range(self.num_parts)]
        )
        collector.delete(self, step, referenced)
