"""Saving on pre-emption: the signal handling every checkpoint owner shares.

Pre-emption (spot and preemptible VMs, Kubernetes, Slurm) is a SIGTERM, then
a SIGKILL once a grace period has passed (about 30 s on GKE, 120 s on AWS
spot). The input checkpoint that matters most is the one of the last step
trained before it. One path, for every owner (the hook, the manager, and by
the same contract `TrackableIterator`'s and the Keras callback's owners):

1. `watcher = PreemptionWatcher(signals, owner=...)` checks the signals
   (ValueError naming `preemption_signals`); no signals: nothing is installed.
2. `watcher.install()` when training starts, from the main thread (Python
   runs signal handlers there only; ValueError from another thread);
   `watcher.release()` when it ends: without a signal it puts back the
   handlers found; after one it keeps them (further signals stay ignored
   until the process ends), because other savers may still be finishing
   after the owner (e.g. `CheckpointSaverHook.end()` saving the model after
   the input hook's `end()`), and a duplicate SIGTERM must not end them.
3. The handler only records which signal came and when. It never saves: a
   handler runs between two bytecodes of whatever the main thread is doing,
   possibly inside a save, and the step in flight must finish first.
4. At each step boundary the owner reads `watcher.requested`; once set, it
   calls `save_on_preemption(watcher, writes, step, start_save, ...)`, then stops
   its loop (`run_context.request_stop()`, `break`, `model.stop_training`).
   `save_on_preemption` finishes the write in flight (its failure is logged,
   not raised: the pre-emption save still runs), saves `step` unless the
   owner's own last save was of that step and committed, waits for the
   commit, and logs the time from the signal to the commit
   (`watcher.seconds_to_commit`). A failure of that save is raised, after
   logging how long after the signal it failed.
5. A second signal (or any later one) is logged and otherwise ignored while
   the owner saves, as TensorFlow's `PreemptionCheckpointHandler` does: a
   duplicate SIGTERM from a wrapper must not kill the save that matters most.
   The SIGKILL at the end of the grace period cannot be caught; the commit
   protocol (shards, then the index renamed into place, then the state file)
   keeps the previous checkpoint restorable whatever moment it lands on.

One owner per signal and process: installing replaces the handler found
(logged when it was a Python function, e.g. TensorFlow's
`PreemptionCheckpointHandler`, whose SIGTERM handler would then never run).
With `PreemptionCheckpointHandler`, let it own SIGTERM and save the input from
its `TerminationConfig(save_fn=...)` instead (see docs/PREEMPTION.md).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from types import FrameType
from typing import Any, Callable

from tfdata_checkpoint._src.background_writes import CheckpointWrites, StartSave

logger = logging.getLogger(__name__)

# SIGKILL and SIGSTOP cannot be caught; the others here end a process by
# default or are meant for asking it to stop.
_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}


def check_preemption_signals(signals: Any) -> tuple[signal.Signals, ...]:
    """The signals as `signal.Signals`, checked.

    Raises:
      ValueError: not a sequence of catchable signal numbers, naming
        `preemption_signals`.
    """
    if signals is None:
        return ()
    if isinstance(signals, (int, str, bytes)) or not isinstance(signals, Iterable):
        # ValueError, as for every bad argument of the hook and the manager.
        raise ValueError(  # noqa: TRY004
            "preemption_signals must be a sequence of signal numbers, e.g. "
            f"(signal.SIGTERM,), got {signals!r}"
        )
    checked = []
    for value in signals:
        try:
            if isinstance(value, bool):
                raise ValueError  # noqa: TRY004 - caught below
            number = signal.Signals(value)
        except (TypeError, ValueError):
            raise ValueError(f"preemption_signals: {value!r} is not a signal number") from None
        if number in _UNCATCHABLE:
            raise ValueError(f"preemption_signals: {number.name} cannot be caught")
        if number not in checked:
            checked.append(number)
    return tuple(checked)


class PreemptionWatcher:
    """Records pre-emption signals for an owner that saves at a step boundary.

    Args:
      signals: the signals that mean pre-emption, e.g. `(signal.SIGTERM,)`;
        checked by `check_preemption_signals`. Empty: `install` does nothing
        and `requested` stays False.
      owner: who saves, for the log lines (e.g. "CheckpointInputPipelineHook").

    Not thread-safe beyond what signal handling needs: the handler runs in the
    main thread; any thread may read `requested`.
    """

    def __init__(self, signals: Sequence[int], *, owner: str) -> None:
        self._signals = check_preemption_signals(signals)
        self._owner = owner
        self._previous: dict[signal.Signals, Any] = {}
        self._event = threading.Event()
        self._signal: signal.Signals | None = None
        self._received_at: float | None = None
        self._count = 0
        self.seconds_to_commit: float | None = None
        self.committed_prefix: str | None = None

    @property
    def signals(self) -> tuple[signal.Signals, ...]:
        """The signals watched."""
        return self._signals

    @property
    def installed(self) -> bool:
        """Whether the handlers are installed."""
        return bool(self._previous)

    @property
    def requested(self) -> bool:
        """Whether one of the signals has arrived."""
        return self._event.is_set()

    @property
    def signal(self) -> signal.Signals | None:
        """The first signal that arrived, or None."""
        return self._signal

    def seconds_since_signal(self) -> float | None:
        """Seconds since the first signal arrived (monotonic clock), or None."""
        if self._received_at is None:
            return None
        return time.monotonic() - self._received_at

    def install(self) -> None:
        """Installs the handlers (idempotent).

        Raises:
          ValueError: called from a thread other than the main thread.
        """
        if not self._signals or self._previous:
            return
        if threading.current_thread() is not threading.main_thread():
            raise ValueError(
                f"preemption_signals: {self._owner} must start training in the main thread "
                "(Python runs signal handlers there only)"
            )
        for number in self._signals:
            previous = signal.signal(number, self._handle)
            if callable(previous) and previous not in (signal.default_int_handler,):
                logger.warning(
                    "%s: replacing the %s handler %r (it will not run while training).",
                    self._owner, number.name, previous,
                )
            self._previous[number] = previous

    def uninstall(self) -> None:
        """Puts back the handlers found by `install` (idempotent).

        A handler replaced since by someone else is left alone (logged).
        Must be called from the main thread, as `install`.
        """
        previous, self._previous = self._previous, {}
        for number, handler in previous.items():
            if signal.getsignal(number) == self._handle:
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)
            else:
                logger.warning(
                    "%s: the %s handler was replaced while training; leaving it.",
                    self._owner, number.name,
                )

    def release(self) -> None:
        """Training ended: `uninstall`, unless a signal arrived (see the module doc)."""
        if not self.requested:
            self.uninstall()

    def record_commit(self, prefix: str) -> float:
        """Logs and keeps the time from the signal to the commit of `prefix`."""
        elapsed = self.seconds_since_signal() or 0.0
        self.seconds_to_commit = elapsed
        self.committed_prefix = prefix
        logger.warning(
            "Pre-emption (%s): input pipeline checkpoint %s committed %.3f s after the signal.",
            self._signal.name if self._signal is not None else "requested",
            prefix,
            elapsed,
        )
        return elapsed

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self._count += 1
        if self._count == 1:
            self._signal = signal.Signals(signum)
            self._received_at = time.monotonic()
            self._event.set()
            logger.warning(
                "%s received %s: saving the input pipeline at the end of the current step, "
                "then stopping.",
                self._owner, self._signal.name,
            )
        else:
            logger.warning(
                "%s received %s again (signal %d): ignored, the pre-emption save is under way.",
                self._owner, signal.Signals(signum).name, self._count,
            )


def save_on_preemption(
    watcher: PreemptionWatcher,
    writes: CheckpointWrites,
    step: int,
    start_save: StartSave,
    *,
    last_saved_step: int | None = None,
    on_saved: Callable[[int], None] | None = None,
) -> str:
    """The one pre-emption save path: the checkpoint of `step`, committed.

    Finishes the background write in flight first; its failure is logged and
    does not stop this save (the checkpoint it was writing never committed,
    and the next commit's sweep removes its files). Then saves `step` unless
    this owner saved that step already and it committed (a checkpoint of the
    step from an earlier run is saved again: it may hold another state), waits
    for the commit and logs the time since the signal.

    Args:
      watcher: the watcher whose signal arrived.
      writes: the owner's `CheckpointWrites`.
      step: the last step trained.
      start_save: starts the save of every part, given their prefixes (as for
        `CheckpointWrites.save`).
      last_saved_step: the step the owner saved last in this run, or None.
      on_saved: called with `step` once a save has started (the owner's save
        policy records it there).

    Returns:
      The committed prefix.

    Raises:
      tf.errors.OpError: this save failed (logged with the time since the signal).
    """
    try:
        writes.wait()
    except Exception as error:  # noqa: BLE001 - logged; the pre-emption save goes on
        logger.error(
            "Pre-emption: the background write before it failed (%s: %s); saving step %d "
            "anyway.",
            type(error).__name__, error, step,
        )
    retention = writes.retention
    try:
        if last_saved_step != step or not retention.is_committed(step):
            writes.save(step, start_save)
            if on_saved is not None:
                on_saved(step)
            writes.wait()
    except BaseException:
        logger.error(
            "Pre-emption: the input pipeline checkpoint of step %d failed %.3f s after the "
            "signal; the previous checkpoint stays the latest.",
            step, watcher.seconds_since_signal() or 0.0,
        )
        raise
    prefix = retention.prefix(step)
    watcher.record_commit(prefix)
    return prefix
