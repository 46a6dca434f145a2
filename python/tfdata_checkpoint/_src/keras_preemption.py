"""Pre-emption for `tfdata_checkpoint.keras.BackupAndRestore`: the signal side of a fit.

The callback's part of the contract in `preemption.py` (the one path every
owner shares): a `PreemptionWatcher` installed at `on_train_begin` (main
thread), read at each boundary Keras gives a callback, released at
`on_train_end` (handlers put back unless a signal came).

The boundaries, in the order a fit reaches them after a signal:

- `on_train_batch_end`: the batch in flight has finished; the backup (input
  checkpoint, then the model's) is written at that batch and the fit is asked
  to stop (`model.stop_training`). Keras still calls `on_epoch_end` and
  `on_train_end` after the loop breaks: neither may overwrite that backup
  (an epoch-end backup would claim the epoch finished) or delete it
  (`delete_checkpoint`).
- `on_epoch_end`: a signal during the epoch's last batch callbacks or its
  validation; the epoch has finished, so the epoch-end backup is the one.
- `on_train_end`: a signal after the last epoch; the fit is complete and
  its final backup is kept rather than deleted, so that a restart of the
  pre-empted job finds the finished state and trains nothing again.

`FitPreemption` keeps the state across those calls; the callback says how to
back up (`_backup` in tf.keras 2, `_save_model` in Keras 3).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Callable

from tfdata_checkpoint._src.preemption import PreemptionWatcher

logger = logging.getLogger(__name__)

OWNER = "tfdata_checkpoint.keras.BackupAndRestore"


class FitPreemption:
    """What a `BackupAndRestore` knows about pre-emption signals.

    Args:
      signals: `preemption_signals` (checked: ValueError naming it). Empty:
        nothing is ever installed and `due` stays False.
    """

    def __init__(self, signals: Sequence[int]) -> None:
        self._watcher = PreemptionWatcher(signals, owner=OWNER)
        self._backed_up_in_fit = False
        self._preempted = False
        self.seconds_to_commit: float | None = None

    @property
    def enabled(self) -> bool:
        """Whether any signal is watched."""
        return bool(self._watcher.signals)

    @property
    def installed(self) -> bool:
        """Whether the handlers are installed now."""
        return self._watcher.installed

    @property
    def requested(self) -> bool:
        """Whether a signal has arrived (in this process, while installed)."""
        return self._watcher.requested

    @property
    def preempted(self) -> bool:
        """Whether a fit was stopped (or ended) by a signal, its backup written and kept."""
        return self._preempted

    @property
    def backed_up_in_fit(self) -> bool:
        """Whether this fit's pre-emption backup is written: nothing may replace it."""
        return self._backed_up_in_fit

    def begin_fit(self) -> None:
        """At `on_train_begin`, last: installs the handlers.

        Raises:
          ValueError: not in the main thread (naming `preemption_signals`).
        """
        self._backed_up_in_fit = False
        self._watcher.install()

    @property
    def due(self) -> bool:
        """A signal came and this fit has not written its pre-emption backup yet."""
        return self._watcher.requested and not self._backed_up_in_fit

    def back_up(self, back_up: Callable[[], None] | None, where: str, backup_dir: str) -> None:
        """Writes the pre-emption backup through `back_up` (input, then model) and logs it.

        Args:
          back_up: writes the input checkpoint, then the model's backup, both
            committed when it returns; None when the backup of this very
            step was just written (at the same boundary, by the regular
            policy).
          where: the boundary, for the log (e.g. "epoch 1, batch 4").
          backup_dir: the model's backup directory, for the log.

        Raises:
          whatever `back_up` raises, after logging how long after the signal.
        """
        started = time.monotonic()
        try:
            if back_up is not None:
                back_up()
        except BaseException:
            logger.error(
                "Pre-emption: the backup at %s failed %.3f s after the signal; the previous "
                "backup in %s stays the one a restart restores.",
                where, self._watcher.seconds_since_signal() or 0.0, backup_dir,
            )
            raise
        self._backed_up_in_fit = True
        self._preempted = True
        self.seconds_to_commit = self._watcher.seconds_since_signal()
        logger.warning(
            "Pre-emption (%s): input pipeline and model backed up at %s in %s, committed "
            "%.3f s after the signal (%.3f s of saving); the fit stops there and a restart "
            "with this callback resumes from it.",
            self._watcher.signal.name if self._watcher.signal is not None else "requested",
            where, backup_dir, self.seconds_to_commit or 0.0, time.monotonic() - started,
        )

    def end_fit(self) -> None:
        """At `on_train_end`, first: puts the handlers back unless a signal came."""
        self._watcher.release()

    def uninstall(self) -> None:
        """Puts the handlers back even after a signal (tests; a process that goes on)."""
        self._watcher.uninstall()
