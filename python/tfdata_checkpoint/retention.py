"""What to keep: the committed input checkpoints of one directory.

A checkpoint is identified by its global step. Its files are
`<directory>/<basename>-<step>.index` plus shard files
`<directory>/<basename>-<step>.data-...`; when several iterators are saved
together, iterator `i > 0` is a separate part under
`<directory>/<basename>.iterator<i>/<basename>-<step>` (see
`CheckpointRetention.part_prefix`). The checkpoint is *committed* once every
part's `.index` exists, since the native writer renames the index into place
last.

The state file (`latest_filename`, e.g. `checkpoint_input`) is a
`CheckpointState` text proto like the one `tf.train.Saver` writes, so
`tf.train.latest_checkpoint(directory, latest_filename=...)` keeps working. It
is a convenience, not the source of truth: listing also scans the directory, so
a crash between a commit and the state-file update loses no checkpoint.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator

import tensorflow as tf
from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

from tfdata_checkpoint import leftovers, state_file
from tfdata_checkpoint.file_paths import join_path, remove_if_present
from tfdata_checkpoint.index_format import IndexFormat, index_format

logger = logging.getLogger(__name__)


class CheckpointRetention:
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
        directory = os.fspath(directory)
        if not directory:
            raise ValueError("directory must not be empty")
        if not basename or "/" in basename:
            raise ValueError(f"basename must be a non-empty file name, got {basename!r}")
        if not latest_filename or "/" in latest_filename:
            raise ValueError(
                f"latest_filename must be a non-empty file name, got {latest_filename!r}"
            )
        check_max_to_keep(max_to_keep)
        if isinstance(num_parts, bool) or not isinstance(num_parts, int) or num_parts < 1:
            raise ValueError(f"num_parts must be a positive int, got {num_parts!r}")
        self._directory = directory
        self._basename = basename
        self._latest_filename = latest_filename
        self._max_to_keep = max_to_keep or None
        self._num_parts = num_parts
        self._name_pattern = re.compile(re.escape(basename) + r"-(\d+)")
        # Any file of a checkpoint: index, index being written, or shard.
        self._file_pattern = re.compile(re.escape(basename) + r"-(\d+)\.(?:index|data-)")
        # Steps whose index was read and found to be ours (see _is_ours).
        self._known_ours: set[int] = set()

    @property
    def directory(self) -> str:
        """The checkpoint directory."""
        return self._directory

    @property
    def basename(self) -> str:
        """The file name of a checkpoint before `-<step>`, e.g. `input.ckpt`."""
        return self._basename

    @property
    def latest_filename(self) -> str:
        """The name of the state file inside `directory`."""
        return self._latest_filename

    @property
    def num_parts(self) -> int:
        """How many iterators each checkpoint holds."""
        return self._num_parts

    def part_directory(self, part: int) -> str:
        """The directory holding part `part` (one per iterator)."""
        if part == 0:
            return self._directory
        # A directory of its own per extra iterator: the native writer runs one
        # background save per directory, so the parts are written in parallel
        # instead of each waiting for the previous one.
        return join_path(self._directory, f"{self._basename}.iterator{part}")

    def prefix(self, step: int) -> str:
        """The prefix naming the checkpoint of `step` (its part 0)."""
        return self.part_prefix(step, 0)

    def part_prefix(self, step: int, part: int) -> str:
        """The prefix of iterator `part`'s files in the checkpoint of `step`."""
        if not 0 <= part < self._num_parts:
            raise ValueError(f"part must be in [0, {self._num_parts}), got {part!r}")
        return join_path(self.part_directory(part), f"{self._basename}-{int(step)}")

    def step_of(self, prefix: str) -> int | None:
        """The step of a checkpoint prefix of this directory, or None."""
        match = self._name_pattern.fullmatch(os.path.basename(os.fspath(prefix)))
        return int(match.group(1)) if match else None

    def is_committed(self, step: int) -> bool:
        """Whether every part of the checkpoint of `step` has committed."""
        return all(
            tf.io.gfile.exists(self.part_prefix(step, part) + ".index")
            for part in range(self._num_parts)
        )

    def _scan_steps(self) -> list[int]:
        """Steps whose part-0 index exists (other parts not checked)."""
        try:
            names = tf.io.gfile.listdir(self._directory)
        except tf.errors.NotFoundError:
            return []
        steps = []
        for name in names:
            if name.endswith(".index"):
                step = self.step_of(name[: -len(".index")])
                if step is not None and self._is_ours(step):
                    steps.append(step)
        return steps

    def _is_ours(self, step: int) -> bool:
        """False when the index of `step` is a TF tensor bundle, not ours.

        TF's own hook names its checkpoints the same way (see index_format):
        those are never listed, restored, counted or deleted as ours. An index
        in neither format stays listed, so that restoring it reports the damage.
        A step found to be ours is remembered, so each index is read once.
        """
        if step in self._known_ours:
            return True
        found = index_format(self.prefix(step) + ".index")
        if found is IndexFormat.OURS:
            self._known_ours.add(step)
        return found is not IndexFormat.TF_BUNDLE

    def _state(self) -> tuple[list[int], int | None]:
        """(steps listed in the state file, oldest first; its latest step)."""
        state = state_file.read(self._directory, self._latest_filename, strict=False)
        if state is None:
            return [], None
        listed = []
        for path in state.all_model_checkpoint_paths:
            step = self.step_of(path)
            if step is not None and step not in listed:
                listed.append(step)
        return listed, self.step_of(state.model_checkpoint_path)

    def committed_steps(self) -> list[int]:
        """Steps of the committed checkpoints, oldest first.

        The order is the state file's (the order of saving), preceded by
        unlisted checkpoints older than its latest and followed by unlisted
        ones newer than it: those committed after the state file was last
        written, e.g. before a crash.
        """
        scanned = set(self._scan_steps())
        listed, latest = self._state()
        listed = [step for step in listed if step in scanned]
        if latest is not None and latest in scanned and latest not in listed:
            listed.append(latest)
        unlisted = sorted(scanned.difference(listed))
        newest_listed = max(listed) if listed else None
        if newest_listed is None:
            order = unlisted
        else:
            order = (
                [s for s in unlisted if s < newest_listed]
                + listed
                + [s for s in unlisted if s > newest_listed]
            )
        if self._num_parts == 1:
            return order
        return [step for step in order if self.is_committed(step)]

    def committed_checkpoints(self) -> list[str]:
        """Prefixes of the committed checkpoints, oldest first."""
        return [self.prefix(step) for step in self.committed_steps()]

    def latest(self) -> str | None:
        """The prefix of the newest committed checkpoint, or None."""
        steps = self.committed_steps()
        return self.prefix(steps[-1]) if steps else None

    def choose_for_step(self, model_step: int) -> int | None:
        """The step of the checkpoint to restore for a model at global step `model_step`.

        `model_step` itself if its checkpoint is committed; else the newest
        (highest) step before it; else None: every checkpoint there is comes
        from a step the model has not reached.
        """
        earlier = [step for step in self.committed_steps() if step <= model_step]
        return max(earlier) if earlier else None

    def record(self, step: int) -> list[str]:
        """Records the newly committed checkpoint of `step` and prunes old ones.

        Writes the state file with `step` as the latest, then deletes the
        oldest checkpoints beyond `max_to_keep`. Only call this once the
        checkpoint has committed: nothing is deleted before a newer checkpoint
        exists. Then removes the leftovers of saves that never committed
        (`leftovers.sweep`): call it only when no save of this basename is in
        flight, as `CheckpointWrites` does.

        Returns:
          The prefixes deleted.
        """
        if not self.is_committed(step):
            raise ValueError(f"step {step}: the checkpoint {self.prefix(step)} has not committed")
        order = [s for s in self.committed_steps() if s != step] + [step]
        keep = order if self._max_to_keep is None else order[-self._max_to_keep :]
        drop = [s for s in order if s not in keep]
        self._write_state(step, keep)
        deleted = []
        for old in drop:
            self.delete(old)
            deleted.append(self.prefix(old))
        # Files of writes that never committed (killed or failed) are garbage
        # now: this writer has no other write in flight while it records.
        leftovers.sweep(self)
        return deleted

    def _write_state(self, latest: int, steps: list[int]) -> None:
        # Relative paths keep the directory relocatable, as Saver's
        # save_relative_paths does.
        state = CheckpointState(
            model_checkpoint_path=f"{self._basename}-{int(latest)}",
            all_model_checkpoint_paths=[f"{self._basename}-{int(s)}" for s in steps],
        )
        state_file.write(self._directory, state, self._latest_filename)

    def delete(self, step: int) -> None:
        """Deletes the checkpoint of `step`: indexes first, then shards.

        Removing part 0's index first un-commits the checkpoint at once, so an
        interrupted deletion never leaves a checkpoint that looks whole.
        """
        self._known_ours.discard(step)
        for part in range(self._num_parts):
            remove_if_present(self.part_prefix(step, part) + ".index")
        for _, directory, names in self.part_listings():
            for name in names:
                # Matched by pattern, not a glob: basenames may hold glob
                # characters. Also catches the temporary index of a killed write.
                match = self._file_pattern.match(name)
                if match and int(match.group(1)) == step:
                    remove_if_present(join_path(directory, name))

    def part_listings(self) -> Iterator[tuple[int, str, list[str]]]:
        """(part, its directory, the names in it) for each part directory that exists."""
        for part in range(self._num_parts):
            directory = self.part_directory(part)
            try:
                names = tf.io.gfile.listdir(directory)
            except tf.errors.NotFoundError:
                continue
            yield part, directory, names


def check_max_to_keep(max_to_keep: int | None) -> None:
    """ValueError unless `max_to_keep` is None or a non-negative int."""
    if max_to_keep is not None and (
        isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 0
    ):
        raise ValueError(f"max_to_keep must be a non-negative int or None, got {max_to_keep!r}")
