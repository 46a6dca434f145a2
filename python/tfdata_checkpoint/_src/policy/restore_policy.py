"""Which checkpoint to restore, and what to do when it is damaged (`on_corrupt`).

Shared by `CheckpointInputPipelineHook` and `IteratorCheckpointManager`:

- `on_corrupt="raise"` (the default): the candidate checkpoint is restored; if
  its files are damaged or missing, the error (`tf.errors.DataLossError` or
  `NotFoundError`, naming the file) is raised. A damaged state file
  (`checkpoint_input`) raises `DataLossError` naming it too.
- `on_corrupt="fallback"`: a damaged candidate is skipped with a warning that
  names it and says why, and the next older candidate is tried, until one
  restores; if none does, the pipeline starts over, with a warning saying so.
  A damaged state file is ignored with a warning (the order then comes from the
  step numbers in the directory listing). Skipped checkpoints are left on disk
  as they are; retention deletes them in time.

Candidates, newest first: every committed checkpoint; or, given the step the
model was restored to, the checkpoint of that step and then older ones only:
never one newer than the model, whose elements the model has not trained on.

Only damage leads to a fallback. A checkpoint whose files are good but that
does not fit the pipeline (a structurally different dataset) raises in both
modes: an older one would not fit either (see `atomic_restore`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Callable

import tensorflow as tf

from tfdata_checkpoint._src.atomic_restore import CheckpointDamaged
from tfdata_checkpoint._src.storage import state_file
from tfdata_checkpoint._src.storage.listing import CheckpointListing

logger = logging.getLogger(__name__)

ON_CORRUPT_CHOICES = ("raise", "fallback")


def check_on_corrupt(on_corrupt: str) -> str:
    """`on_corrupt` if it is 'raise' or 'fallback'; ValueError naming it otherwise."""
    if not isinstance(on_corrupt, str) or on_corrupt not in ON_CORRUPT_CHOICES:
        raise ValueError(
            f"on_corrupt must be one of {list(ON_CORRUPT_CHOICES)}, got {on_corrupt!r}"
        )
    return on_corrupt


def _candidates(checkpoints: CheckpointListing, model_step: int | None) -> Iterator[int]:
    """Steps to try, newest first; lazily, since each fallback lists again."""
    if model_step is None:
        yield from reversed(checkpoints.committed_steps())
        return
    # Retention's rule for a model step (that step, else the newest before
    # it), applied again below each choice for the fallbacks.
    below = model_step
    while below >= 0:
        step = checkpoints.choose_for_step(below)
        if step is None:
            if below == model_step and checkpoints.committed_steps():
                logger.warning(
                    "No input pipeline checkpoint at or before the model's step %d in %s "
                    "(only later ones); the input pipeline starts over.",
                    model_step,
                    checkpoints.directory,
                )
            return
        yield step
        below = step - 1


def _refuse_fewer_parts(checkpoints: CheckpointListing) -> None:
    """ValueError when the only checkpoints there hold fewer iterators than are restored.

    Never listed (a part is missing), they would otherwise be passed over and
    the pipeline would silently start over.
    """
    if checkpoints.committed_steps():
        return
    fewer = checkpoints.steps_of_fewer_parts()
    if fewer:
        raise ValueError(
            f"The input checkpoints in {checkpoints.directory} (the newest: "
            f"{checkpoints.prefix(fewer[-1])}) hold fewer iterators than the "
            f"{checkpoints.num_parts} (replicas) being restored: restore them into as many "
            "iterators as they were saved from, or give this writer its own directory or "
            "checkpoint_name."
        )


def restore_newest_good(
    checkpoints: CheckpointListing,
    restore: Callable[[int], None],
    *,
    on_corrupt: str,
    model_step: int | None = None,
    is_chief: bool = True,
) -> int | None:
    """Restores the newest candidate checkpoint that is not damaged.

    Args:
      checkpoints: the checkpoints of the directory.
      restore: restores the checkpoint of a step, all iterators or none;
        raises `CheckpointDamaged` when its files are damaged or missing.
      on_corrupt: 'raise' or 'fallback' (see the module docstring).
      model_step: the global step the model was restored to, if any.
      is_chief: False for a non-chief task of a cluster, whose global step is
        shared: restoring a checkpoint older than it is the normal case after
        a restart of that task alone (see `multi_worker`), so it is logged as
        info, not as a warning.

    Returns:
      The step restored, or None if nothing was (the pipeline starts over).

    Raises:
      tf.errors.DataLossError / NotFoundError: with 'raise', the damage found.
      tf.errors.OpError: a checkpoint that does not fit the pipeline.
    """
    check_on_corrupt(on_corrupt)
    _refuse_fewer_parts(checkpoints)
    fallback = on_corrupt == "fallback"
    try:
        state_file.read(checkpoints.directory, checkpoints.latest_filename, strict=True)
    except tf.errors.OpError as error:
        if not fallback:
            raise
        logger.warning(
            "Ignoring the input pipeline state file (on_corrupt='fallback'): %s; the "
            "checkpoints are ordered by their steps instead.",
            error.message,
        )
    skipped: list[str] = []
    for step in _candidates(checkpoints, model_step):
        prefix = checkpoints.prefix(step)
        try:
            restore(step)
        except CheckpointDamaged as damage:
            if not fallback:
                raise damage.error from None
            logger.warning(
                "Skipping damaged input pipeline checkpoint %s (on_corrupt='fallback'): "
                "%s: %s",
                prefix,
                type(damage.error).__name__,
                damage.error.message,
            )
            skipped.append(prefix)
            continue
        if skipped:
            logger.warning(
                "Restored input pipeline checkpoint %s after skipping damaged %s.",
                prefix,
                ", ".join(skipped),
            )
        if model_step is not None and step != model_step:
            if is_chief:
                logger.warning(
                    "No input pipeline checkpoint for the model's step %d in %s; restoring the "
                    "newest one before it, of step %d: the elements consumed between steps %d "
                    "and %d will be read again.",
                    model_step,
                    checkpoints.directory,
                    step,
                    step,
                    model_step,
                )
            else:
                logger.info(
                    "Restoring this task's newest input pipeline checkpoint at or before the "
                    "shared global step %d: the one of step %d.",
                    model_step,
                    step,
                )
        return step
    if skipped:
        logger.warning(
            "No input pipeline checkpoint in %s could be restored (skipped as damaged: %s); "
            "the input pipeline starts over.",
            checkpoints.directory,
            ", ".join(skipped),
        )
    return None
