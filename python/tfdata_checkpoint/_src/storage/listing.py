"""Which checkpoints of a layout have committed, in the order they were saved.

A checkpoint is *committed* once every part's `.index` exists, since the native
writer renames the index into place last. The state file (`latest_filename`,
e.g. `checkpoint_input`) is a `CheckpointState` text proto like the one
`tf.train.Saver` writes, so `tf.train.latest_checkpoint(directory,
latest_filename=...)` keeps working. It is a convenience, not the source of
truth: listing also scans the directory, so a crash between a commit and the
state-file update loses no checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

import tensorflow as tf

from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.layout import CheckpointLayout
from tfdata_checkpoint._src.storage import state_file
from tfdata_checkpoint._src.storage.index_format import IndexFormat, index_format


class CheckpointListing(CheckpointLayout):
    """The committed checkpoints of one directory and basename (reads only).

    Takes the arguments of `CheckpointLayout`, whose names it extends with
    what the directory holds.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        # Steps whose index was read and found to be ours (see _is_ours).
        object.__setattr__(self, "_known_ours", set())

    def is_committed(self, step: int) -> bool:
        """Whether every part of the checkpoint of `step` has committed."""
        return all(
            tf.io.gfile.exists(layout.index_path(self.part_prefix(step, part)))
            for part in range(self.num_parts)
        )

    def _scan_steps(self) -> list[int]:
        """Steps whose part-0 index exists (other parts not checked)."""
        try:
            names = tf.io.gfile.listdir(self.directory)
        except tf.errors.NotFoundError:
            return []
        steps = []
        for name in names:
            step = self.step_of_index(name)
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
        found = index_format(layout.index_path(self.prefix(step)))
        if found is IndexFormat.OURS:
            self._known_ours.add(step)
        return found is not IndexFormat.TF_BUNDLE

    def forget(self, step: int) -> None:
        """Drops what is remembered of `step`, whose files are being deleted."""
        self._known_ours.discard(step)

    def _state(self) -> tuple[list[int], int | None]:
        """(steps listed in the state file, oldest first; its latest step)."""
        state = state_file.read(self.directory, self.latest_filename, strict=False)
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
        if self.num_parts == 1:
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

    def steps_of_fewer_parts(self) -> list[int]:
        """Steps of checkpoints that look saved with fewer iterators than this layout has.

        Their part-0 index exists, and no other part holds any file of theirs.
        Never listed as committed (a part is missing), they belong to a writer
        of fewer iterators (say one iterator, where this layout has two
        replicas), or, rarely, to a save killed between its first part's
        commit and the start of the next part. Empty for a layout of one part.
        """
        if self.num_parts == 1:
            return []
        others: set[int] = set()
        for part, _, names in self.part_listings():
            if part > 0:
                others.update(s for s in map(self.step_of_file, names) if s is not None)
        return sorted(s for s in self._scan_steps() if s not in others)

    def part_listings(self) -> Iterator[tuple[int, str, list[str]]]:
        """(part, its directory, the names in it) for each part directory that exists."""
        for part in range(self.num_parts):
            directory = self.part_directory(part)
            try:
                names = tf.io.gfile.listdir(directory)
            except tf.errors.NotFoundError:
                continue
            yield part, directory, names
