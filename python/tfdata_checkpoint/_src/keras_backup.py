"""The input pipeline of `model.fit`, saved and restored beside Keras's own backup.

`model.fit` makes its iterator itself, as a local of its training loop
(tf.keras 2.15: `DataHandler.enumerate_epochs`; Keras 3:
`EpochIterator._enumerate_iterator`), by calling `iter()` on the dataset it
was given, after the callbacks' `on_train_begin`. A `ResumableDataset` is
that dataset with an `__iter__` that hands the new iterator to its
`InputBackup`, which restores it, at once, to the position of the model
backup just restored. Keras's `class_weight` maps the dataset first (`map`,
then `prefetch` in Keras 3): those two keep the wrapper, so the iterator
`fit` makes of the mapped dataset is still handed over.

A save writes the input checkpoint, committed, before the model's backup:
a job killed between the two restores the model's older backup and finds
the input checkpoint of that older step still kept (max_to_keep=2). The
input checkpoint's step is the model's own step counter, saved inside the
model's backup and so restored with it: `model._train_counter` (tf.keras 2)
or `model.optimizer.iterations` (Keras 3).

What cannot be resumed exactly is refused with a `ValueError` naming what
to change (see `check_fit`): another strategy than the default one (fit
distributes the dataset through TF's MultiDeviceIterator), an input that is
not a `ResumableDataset`, and a dataset that fit would iterate afresh within
the run (no `steps_per_epoch` over a finite dataset, or more steps than it
holds): a new iterator of a reshuffling dataset does not continue the
interrupted run's order.
"""

from __future__ import annotations

import logging
from typing import Any

import tensorflow as tf
from tensorflow.python.data.ops import dataset_ops
from tensorflow.python.distribute import distribute_lib

from tfdata_checkpoint._src import layout

logger = logging.getLogger(__name__)

_INFINITE = -1  # tf.data.INFINITE_CARDINALITY
_UNKNOWN = -2  # tf.data.UNKNOWN_CARDINALITY

# Input checkpoints kept: the newest one, and the one before it, which is the
# model's while the model's backup of the newest step is being written.
MAX_TO_KEEP = 2

ARRAYS_HINT = (
    "build one, e.g. tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat(), "
    "and pass steps_per_epoch to fit"
)


class ResumableDataset(dataset_ops.DatasetV2):
    """A `tf.data.Dataset` whose iterators `fit` makes are saved by a backup.

    Made by `BackupAndRestore.resumable(dataset)`; behaves exactly as
    `dataset` (same variant, same elements).
    """

    def __init__(self, dataset: tf.data.Dataset, backup: InputBackup) -> None:
        self._wrapped = dataset
        self._backup = backup
        super().__init__(dataset._variant_tensor)

    def _inputs(self) -> list[tf.data.Dataset]:
        return [self._wrapped]

    @property
    def element_spec(self) -> Any:
        return self._wrapped.element_spec

    def __iter__(self) -> Any:
        iterator = super().__iter__()
        self._backup.attach(iterator)
        return iterator

    # Keras's class_weight applies these before iterating: keep the wrapper.
    def map(self, *args: Any, **kwargs: Any) -> ResumableDataset:
        return ResumableDataset(super().map(*args, **kwargs), self._backup)

    def prefetch(self, *args: Any, **kwargs: Any) -> ResumableDataset:
        return ResumableDataset(super().prefetch(*args, **kwargs), self._backup)


class InputBackup:
    """The input checkpoints of one `BackupAndRestore`, in `<backup_dir>/input_pipeline`.

    Args:
      directory: where the input checkpoints go.
      external_state_policy, num_shards: as for `IteratorCheckpointManager`.
    """

    def __init__(self, directory: str, *, external_state_policy: str,
                 num_shards: int | None) -> None:
        self.directory = directory
        self._external_state_policy = external_state_policy
        self._num_shards = num_shards
        self._dataset: ResumableDataset | None = None
        self._manager: Any = None
        self._fitting = False
        self._used = False
        self._reiterated = False
        self._restore_step: int | None = None
        self.last_saved_step: int | None = None

    def resumable(self, dataset: Any) -> ResumableDataset:
        """`dataset` wrapped so that the iterator `fit` makes of it is saved."""
        if isinstance(dataset, ResumableDataset):
            if dataset._backup is not self:
                raise ValueError("dataset was made resumable by another BackupAndRestore")
            return dataset
        # ValueError, the library's error for a bad argument (the issue pins it).
        if isinstance(dataset, tf.distribute.DistributedDataset):
            raise ValueError(  # noqa: TRY004
                "resumable() takes a tf.data.Dataset, got a distributed dataset: model.fit "
                "under a tf.distribute strategy cannot resume its input; fit outside a strategy "
                "scope, or use a custom training loop with IteratorCheckpointManager "
                "(see the README, tf.distribute)"
            )
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(  # noqa: TRY004
                f"resumable() takes a tf.data.Dataset, got {type(dataset).__name__}: "
                f"{ARRAYS_HINT}"
            )
        self._dataset = ResumableDataset(dataset, self)
        return self._dataset

    def begin_fit(self, model_step: int | None) -> None:
        """Called once the model's backup is restored (`model_step`) or not (None).

        Without a model backup, input checkpoints left from an earlier run are
        deleted: they would not belong to this run's steps.
        """
        self._fitting = True
        self._used = False
        self._reiterated = False
        self._manager = None
        self._restore_step = model_step
        self.last_saved_step = None
        if model_step is None and tf.io.gfile.exists(self.directory):
            logger.info("No model backup; deleting the stale input checkpoints in %s.",
                        self.directory)
            tf.io.gfile.rmtree(self.directory)

    def attach(self, iterator: Any) -> None:
        """Takes the iterator `fit` made; restores it if a model backup was restored."""
        if not self._fitting:
            return  # iterated outside fit (e.g. to look at a batch): not ours to save
        if self._used:
            # Raised when the new iterator is about to be used (check_iterated):
            # Keras 3 also makes one at the end of the last epoch, never used.
            self._reiterated = True
            return
        # Not used yet: tf.keras 2 makes a first iterator and replaces it at
        # once when it re-iterates each epoch; the one used is restored.
        # Imported here: manager imports nothing of Keras, and this module is
        # only loaded by tfdata_checkpoint.keras.
        from tfdata_checkpoint.manager import IteratorCheckpointManager

        # Synchronous: the input checkpoint must have committed before the
        # model's backup of the same step is written (module docstring).
        self._manager = IteratorCheckpointManager(
            iterator,
            self.directory,
            max_to_keep=MAX_TO_KEEP,
            async_save=False,
            external_state_policy=self._external_state_policy,
            num_shards=self._num_shards,
        )
        if self._restore_step is not None:
            restored = self._manager.restore_or_initialize(step=self._restore_step)
            if restored is None:
                logger.warning(
                    "The model backup of step %d was restored but no input checkpoint at or "
                    "before it is in %s: the input pipeline starts over.",
                    self._restore_step, self.directory,
                )

    @property
    def attached(self) -> bool:
        """Whether this fit's iterator was handed over (fit has iterated the dataset)."""
        return self._manager is not None

    def check_iterated(self) -> None:
        """ValueError if `fit` trains without its resumable dataset's first iterator."""
        if self._reiterated:
            raise ValueError(reiteration_message())
        if not self._fitting:
            return
        if self._manager is None:
            raise ValueError(
                "tfdata_checkpoint.keras.BackupAndRestore: model.fit is not iterating a dataset "
                "made by backup.resumable(dataset), so its input position cannot be saved: "
                "pass model.fit(backup.resumable(dataset), ...)"
            )
        self._used = True

    def save(self, step: int) -> str | None:
        """Saves the input position as the checkpoint of `step`, committed.

        The position of the iterator trained on: a fresh one Keras made after
        the last batch (see `attach`) is not used until the next batch.

        Returns:
          The committed prefix (None before fit iterated: nothing to save).
        """
        if self._manager is None:
            self.check_iterated()  # the error naming backup.resumable(dataset)
            return None
        prefix = self._manager.save(step)
        self.last_saved_step = step
        return prefix

    def end_fit(self, delete: bool) -> None:
        self._fitting = False
        if self._manager is not None:
            self._manager.wait()
        self._manager = None
        if delete and tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)

    def dataset_cardinality(self) -> int | None:
        """The cardinality of the resumable dataset (None if none was made)."""
        if self._dataset is None:
            return None
        return int(self._dataset.cardinality().numpy())


def input_directory(backup_dir: str) -> str:
    """`<backup_dir>/input_pipeline`."""
    return layout.join_path(str(backup_dir), layout.KERAS_BACKUP_INPUT_DIRECTORY)


def reiteration_message() -> str:
    return (
        "tfdata_checkpoint.keras.BackupAndRestore: model.fit iterates the dataset afresh "
        "within this run (no steps_per_epoch, or more steps than the dataset holds), and a new "
        "iterator does not continue the saved one (a reshuffling dataset's next pass differs "
        "in a new process): repeat the dataset (dataset.repeat()) and pass steps_per_epoch to "
        "model.fit"
    )


def check_fit(model: Any, params: dict, cardinality: int | None) -> None:
    """ValueError, before training, for what `fit` cannot resume exactly.

    Args:
      model: the model being fit.
      params: the callback's `params` (`steps`: steps per epoch, None if
        unknown; `epochs`).
      cardinality: of the resumable dataset, None if none was made.

    The steps counted are those of the whole run from epoch 0: a resumed run
    continues the same stream.
    """
    strategy = model.distribute_strategy
    if strategy is not distribute_lib._get_default_strategy():  # private: no public test
        raise ValueError(
            "tfdata_checkpoint.keras.BackupAndRestore cannot resume the input of model.fit "
            f"under {type(strategy).__name__}: fit distributes the dataset itself through "
            "TensorFlow's MultiDeviceIterator, which cannot be checkpointed. Build and fit the "
            "model outside the strategy scope, or train with a custom loop over "
            "strategy.distribute_datasets_from_function(dataset_fn, tf.distribute.InputOptions("
            "experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA, "
            "experimental_fetch_to_device=False)) and IteratorCheckpointManager"
        )
    if cardinality is None or cardinality == _INFINITE:
        return
    steps, epochs = params.get("steps"), params.get("epochs") or 1
    if steps is None:  # fit iterates until the end of the data, every epoch
        if epochs > 1:
            raise ValueError(reiteration_message())
    elif cardinality != _UNKNOWN and steps * epochs > cardinality:
        raise ValueError(reiteration_message())
