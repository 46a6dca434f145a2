"""`BackupAndRestore` for tf.keras 2 and for Keras 3, each on the framework's own callback.

Each subclass leaves the model's backup to Keras (same arguments, same files,
same semantics) and adds the input pipeline's position (`InputBackup`): saved,
committed, just before each model backup; restored into the iterator `fit`
makes of `backup.resumable(dataset)`, at the model step just restored.

With `preemption_signals` each also backs up (input, then model) at the first
batch or epoch end after a signal and stops the fit (`keras_preemption`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import tensorflow as tf

from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.keras_backup import InputBackup, check_fit, input_directory
from tfdata_checkpoint._src.keras_preemption import FitPreemption

logger = logging.getLogger(__name__)

_KerasBackupAndRestore = tf.keras.callbacks.BackupAndRestore
# tf.keras 2 resumes mid-epoch from its WorkerTrainingState; Keras 3 loads
# `latest.weights.h5` in `_load_model` and restores only the epoch.
IS_KERAS_3 = hasattr(_KerasBackupAndRestore, "_load_model")


def _check_save_freq(save_freq: Any, preemption: FitPreemption) -> bool:
    """Whether `save_freq` is False (backups on pre-emption only); ValueError if without signals."""
    if save_freq is not False:
        return False
    if not preemption.enabled:
        raise ValueError(
            "save_freq=False (no periodic backups) needs preemption_signals, e.g. "
            "BackupAndRestore(backup_dir, save_freq=False, preemption_signals=(signal.SIGTERM,)); "
            "otherwise pass save_freq='epoch' or a number of batches"
        )
    return True


class _InputMixin:
    """What both flavours share: `resumable`, the checks, pre-emption, the end of a fit."""

    _input: InputBackup
    _preemption: FitPreemption
    backup_dir: str
    delete_checkpoint: bool

    def resumable(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """`dataset`, made resumable: pass it to `model.fit` with this callback.

        Raises:
          ValueError: `dataset` is not a `tf.data.Dataset` (naming what to do).
        """
        return self._input.resumable(dataset)

    @property
    def input_directory(self) -> str:
        """Where the input checkpoints go: `<backup_dir>/input_pipeline`."""
        return self._input.directory

    @property
    def preempted(self) -> bool:
        """Whether one of `preemption_signals` stopped a fit with this callback.

        True once the backup of the first batch or epoch end after the signal
        (or, for a signal after the last epoch, the fit's final backup) is
        written; that backup is kept whatever `delete_checkpoint` says, and
        `fit` returns early. Once pre-empted the callback stays so: a later
        fit with it in this process stops after one batch.
        """
        return self._preemption.preempted

    @property
    def seconds_to_preemption_commit(self) -> float | None:
        """Seconds from the pre-emption signal to the commit of its backup, or None."""
        return self._preemption.seconds_to_commit

    def _model_step(self) -> int:
        raise NotImplementedError

    def _check_fit(self) -> None:
        check_fit(self.model, self.params or {}, self._input.dataset_cardinality())

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self._input.check_iterated()
        super().on_train_batch_begin(batch, logs)

    def _implements_train_batch_hooks(self) -> bool:
        return True  # on_train_batch_begin checks the input before the first step

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self._preemption.backed_up_in_fit:
            return  # an epoch-end backup would claim the interrupted epoch finished
        super().on_epoch_end(epoch, logs)
        if self._preemption.due:  # a signal during the last batch's callbacks or validation
            self._back_up_for_preemption(lambda: self._epoch_end_backup(epoch),
                                         f"the end of epoch {epoch}")

    def _epoch_end_backup(self, epoch: int) -> None:
        """Backs the model up as at the end of `epoch` (each flavour's way)."""
        raise NotImplementedError

    def _back_up_for_preemption(self, back_up: Callable[[], None], where: str) -> None:
        """The pre-emption backup through `back_up`, then the fit is asked to stop."""
        if not self._input.attached or self._input.last_saved_step == self._model_step():
            # Nothing trained in this fit (the backup restored is the state), or the
            # regular backup of this very step was just written at this boundary.
            back_up = None
        self._preemption.back_up(back_up, where, str(self.backup_dir))
        self.model.stop_training = True

    def _end_preemption(self, back_up: Callable[[], None]) -> bool:
        """At `on_train_end`, first: handlers put back unless a signal came.

        Returns:
          Whether a signal came: the backup is then kept (not deleted). A
          signal after the last epoch's end is backed up here, by `back_up`.
        """
        self._preemption.end_fit()
        if not self._preemption.requested:
            return False
        if self._preemption.due:
            self._back_up_for_preemption(back_up, "the end of the fit")
        return True

    def _keras_train_end(self, logs: Any, keep: bool) -> None:
        """Keras's own `on_train_end`, without deleting the backup when `keep`."""
        if not keep:
            super().on_train_end(logs)
            return
        delete, self.delete_checkpoint = self.delete_checkpoint, False
        try:
            super().on_train_end(logs)
        finally:
            self.delete_checkpoint = delete
        logger.warning("Pre-emption: the backup in %s is kept for the restart.", self.backup_dir)


if not IS_KERAS_3:

    class BackupAndRestore(_InputMixin, _KerasBackupAndRestore):
        """tf.keras 2's `BackupAndRestore`, with the input pipeline's position.

        Resumes mid-epoch exactly: Keras restores the model and continues at
        (epoch, batch + 1); the input iterator continues at the next batch.

        Pre-emption (`preemption_signals=(signal.SIGTERM,)`): the handlers are
        installed at `on_train_begin` (main thread). On a signal the batch in
        flight finishes; at its end the input checkpoint, then the model's
        backup, are written at that batch, and the fit stops
        (`model.stop_training`). Neither the `on_epoch_end` that follows nor
        `on_train_end` (`delete_checkpoint`) touches that backup. A restart with
        this callback resumes it at the next batch, for every `save_freq`:
        both runs together train on exactly the batches of an uninterrupted
        fit. Further signals are logged and ignored; without a signal the
        handlers are put back at `on_train_end`.

        Args:
          backup_dir, save_freq, delete_checkpoint: as Keras's. `save_freq=False`
            backs up on pre-emption only (it needs `preemption_signals`).
          save_before_preemption: must be False (TF's PreemptionCheckpointHandler
            needs a multi-worker strategy, whose fit input cannot be saved): use
            `preemption_signals`.
          external_state_policy, num_shards: for the input checkpoints, as for
            `IteratorCheckpointManager`.
          preemption_signals: signals that mean pre-emption, e.g.
            `(signal.SIGTERM,)`; none by default (nothing is installed). Needs a
            known number of steps per epoch.

        Raises:
          ValueError: a bad argument, naming it; at `on_train_begin`, a fit
            outside the main thread with `preemption_signals`, or one whose
            steps per epoch are unknown.
        """

        def __init__(
            self,
            backup_dir: str,
            save_freq: Any = "epoch",
            delete_checkpoint: bool = True,
            save_before_preemption: bool = False,
            *,
            external_state_policy: str = "fail",
            num_shards: int | None = None,
            preemption_signals: tuple[int, ...] = (),
        ) -> None:
            if save_before_preemption:
                raise ValueError(
                    "save_before_preemption=True is not supported by "
                    "tfdata_checkpoint.keras.BackupAndRestore: TF's PreemptionCheckpointHandler "
                    "saves the model without the input pipeline (and needs a multi-worker "
                    "strategy, whose fit input cannot be checkpointed); pass "
                    "preemption_signals=(signal.SIGTERM,) instead: on the signal the model and "
                    "the input are backed up at the batch in flight and the fit stops"
                )
            self._preemption = FitPreemption(preemption_signals)
            only_on_preemption = _check_save_freq(save_freq, self._preemption)
            # tf.keras 2 takes save_freq=False only with save_before_preemption; False
            # then backs up at no batch or epoch end, and (an int to WorkerTrainingState)
            # resumes at the backup's batch, as wanted here.
            super().__init__(backup_dir, save_freq="epoch" if only_on_preemption else save_freq,
                             delete_checkpoint=delete_checkpoint, save_before_preemption=False)
            self.save_freq = save_freq
            self._input = InputBackup(input_directory(backup_dir),
                                      external_state_policy=external_state_policy,
                                      num_shards=num_shards)

        def _check_fit(self) -> None:
            super()._check_fit()
            if self._preemption.enabled and (self.params or {}).get("steps") is None:
                raise ValueError(
                    "preemption_signals: tf.keras 2 resumes a pre-empted fit at the batch after "
                    "its backup, which needs the number of steps per epoch: pass steps_per_epoch "
                    "to model.fit"
                )

        def on_train_begin(self, logs: Any = None) -> None:
            self._check_fit()
            super().on_train_begin(logs)
            if self._preemption.enabled:
                # A pre-emption backup is at a batch, also with save_freq="epoch", whose
                # restore rule would resume at the next epoch. Keras's rule for
                # save_freq=N (chosen by an int here) resumes at (epoch, batch + 1), and at
                # the next epoch for an epoch's last batch, which is where an epoch-end
                # backup is (on_train_batch_end records the last batch trained).
                self._training_state._save_freq = int(self.params["steps"])
            restored = self._training_state.read_checkpoint_manager.latest_checkpoint
            self._input.begin_fit(self._model_step() if restored else None)
            self._preemption.begin_fit()  # last: nothing after it may fail

        def _model_step(self) -> int:
            # `_train_counter` is in Keras's checkpoint: restored with the model.
            return int(self.model._train_counter.numpy())

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self._preemption.enabled:
                # The last batch trained (on_train_batch_begin recorded the first of
                # steps_per_execution): a restart resumes after it.
                self._training_state._ckpt_saved_batch.assign(batch)
            if self._preemption.due:
                epoch = self._current_epoch
                self._back_up_for_preemption(lambda: self._backup(epoch, batch),
                                             f"epoch {epoch}, batch {batch}")
                return
            super().on_train_batch_end(batch, logs)

        def _epoch_end_backup(self, epoch: int) -> None:
            self._backup(epoch)

        def _backup(self, epoch: int, batch: int = 0) -> None:
            self._input.save(self._model_step())
            super()._backup(epoch, batch)

        def on_train_end(self, logs: Any = None) -> None:
            keep = True  # if the final pre-emption backup fails, nothing is deleted
            try:
                keep = self._end_preemption(lambda: self._backup(self._current_epoch))
            finally:
                self._input.end_fit(delete=self.delete_checkpoint and not keep)
                self._keras_train_end(logs, keep)

else:

    class BackupAndRestore(_InputMixin, _KerasBackupAndRestore):  # type: ignore[no-redef]
        """Keras 3's `BackupAndRestore`, with the input pipeline's position.

        Keras 3 restores only the epoch: after a mid-epoch backup it runs that
        epoch's steps again in full, on the input continuing where the backup
        was taken (no batch repeated or skipped; the resumed run trains on
        more batches in total than an uninterrupted one, by the steps done in
        that epoch before the backup). The two backup files are written beside
        and renamed over Keras's (which overwrites them in place), so that a
        kill mid-write leaves the previous backup loadable.

        Pre-emption (`preemption_signals=(signal.SIGTERM,)`): the handlers are
        installed at `on_train_begin` (main thread). On a signal the batch in
        flight finishes; at its end the input checkpoint, then the model's
        backup, are written at that batch, and the fit stops
        (`model.stop_training`). Neither the `on_epoch_end` that follows nor
        `on_train_end` (`delete_checkpoint`) touches that backup. A restart
        with this callback re-runs that epoch's steps, as above, on the input
        continuing at the batch after the signal's; after a signal at an
        epoch's last batch it begins the next epoch (the count is then the
        uninterrupted one). Further signals are logged and ignored; without a
        signal the handlers are put back at `on_train_end`.

        Args:
          backup_dir, save_freq, delete_checkpoint: as Keras's. `save_freq=False`
            backs up on pre-emption only (it needs `preemption_signals`).
          double_checkpoint: must be False.
          external_state_policy, num_shards: for the input checkpoints, as for
            `IteratorCheckpointManager`.
          preemption_signals: signals that mean pre-emption, e.g.
            `(signal.SIGTERM,)`; none by default (nothing is installed).

        Raises:
          ValueError: a bad argument, naming it; at `on_train_begin`, a fit
            outside the main thread with `preemption_signals`.
        """

        def __init__(
            self,
            backup_dir: str,
            save_freq: Any = "epoch",
            double_checkpoint: bool = False,
            delete_checkpoint: bool = True,
            *,
            external_state_policy: str = "fail",
            num_shards: int | None = None,
            preemption_signals: tuple[int, ...] = (),
        ) -> None:
            if double_checkpoint:
                raise ValueError(
                    "double_checkpoint=True is not supported by "
                    "tfdata_checkpoint.keras.BackupAndRestore: Keras would fall back to the "
                    "previous weights without telling which input checkpoint goes with them"
                )
            self._preemption = FitPreemption(preemption_signals)
            # Keras 3 takes save_freq=False (an int to its check) and would back up at
            # every batch: on_train_batch_end leaves it out.
            _check_save_freq(save_freq, self._preemption)
            super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=False,
                             delete_checkpoint=delete_checkpoint)
            self._input = InputBackup(input_directory(backup_dir),
                                      external_state_policy=external_state_policy,
                                      num_shards=num_shards)

        def on_train_begin(self, logs: Any = None) -> None:
            self._check_fit()
            restored = tf.io.gfile.exists(self._weights_path)
            super().on_train_begin(logs)
            # optimizer.iterations is in the weights file: restored with them.
            self._input.begin_fit(self._model_step() if restored else None)
            self._preemption.begin_fit()  # last: nothing after it may fail

        def _model_step(self) -> int:
            return int(self.model.optimizer.iterations.numpy())

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            # Keras 3 sets the epoch it backs up only at on_epoch_end: a resumed fit's
            # batch backups of its first epoch would say epoch 0.
            self._current_epoch = epoch
            super().on_epoch_begin(epoch, logs)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self._preemption.due:
                self._last_batch_seen = batch
                self._batches_seen_since_last_saving = 0
                where = f"epoch {self._current_epoch}, batch {batch}"
                steps = (self.params or {}).get("steps")
                if steps is not None and batch + 1 >= steps:
                    # The epoch's last batch: its backup is the epoch's own (a restart
                    # begins the next epoch), as on_epoch_end would write it.
                    self._current_epoch += 1
                    self._last_batch_seen = 0
                self._back_up_for_preemption(self._save_model, where)
                return
            if self.save_freq is False:
                self._last_batch_seen = batch
                return
            super().on_train_batch_end(batch, logs)

        def _epoch_end_backup(self, epoch: int) -> None:
            del epoch  # Keras 3 counts epochs itself (on_epoch_begin above)
            self._save_model()

        def _save_model(self) -> None:
            self._input.save(self._model_step())
            # Keras writes both files in place: written beside, then renamed over them,
            # so that a kill mid-write leaves the previous backup loadable. Killed between
            # the renames: the new weights (and step) with the previous epoch, which Keras
            # re-runs from its start on the input continuing at the new step.
            weights, metadata = self._weights_path, self._training_metadata_path
            writing_weights = layout.join_path(str(self.backup_dir),
                                               layout.KERAS3_WEIGHTS_BEING_WRITTEN)
            writing_metadata = layout.join_path(str(self.backup_dir),
                                                layout.KERAS3_METADATA_BEING_WRITTEN)
            self._weights_path, self._training_metadata_path = writing_weights, writing_metadata
            try:
                super()._save_model()
            finally:
                self._weights_path, self._training_metadata_path = weights, metadata
            tf.io.gfile.rename(writing_weights, weights, overwrite=True)
            tf.io.gfile.rename(writing_metadata, metadata, overwrite=True)

        def on_train_end(self, logs: Any = None) -> None:
            keep = True  # if the final pre-emption backup fails, nothing is deleted
            try:
                keep = self._end_preemption(self._save_model)
            finally:
                self._input.end_fit(delete=False)  # Keras removes backup_dir, ours inside it
                self._keras_train_end(logs, keep)
