"""model.fit with tfdata_checkpoint.keras.BackupAndRestore, as a process of its own.

    python keras_fit_child.py fit BACKUP RECORD EPOCHS STEPS SAVE_FREQ FAIL_AT SLEEP CLASS_WEIGHT
    python keras_fit_child.py preempt BACKUP RECORD EPOCHS STEPS SAVE_FREQ SLEEP SECOND_SIGNAL
    python keras_fit_child.py edge BACKUP      (prints one JSON line)

`fit` trains a tiny model on `make_dataset()` (a seeded shuffle that
reshuffles on each pass of a `repeat()`, a map and a prefetch), with the
backup callback (SAVE_FREQ: "epoch" or a number of batches). RECORD gets a
first line `{"restored_step", "initial_epoch"}` (the model step and epoch
the backup restored, 0 when none) and then one line per trained batch
`{"ids": [...]}`, flushed before that step's backup can be taken. FAIL_AT >= 0
raises at that global step (a failed job); the test SIGKILLs it otherwise.
`preempt` is `fit` with `preemption_signals=(SIGTERM,)` (SAVE_FREQ "none":
save_freq=False, backups on pre-emption only): it prints `BATCH <n>` on
stdout as batch n (from 1, counted in this process) starts, for the test to
time its SIGTERM, and at the end one JSON line: whether it was pre-empted,
the model step it ended at, the seconds from the signal to the backup's
commit, and whether the SIGTERM handler was ours during the fit and is the
default again after it. SECOND_SIGNAL=1: the child sends itself a second
SIGTERM as its pre-emption backup starts (a duplicate signal during the
save). `edge` tries the inputs and settings
that cannot resume exactly and prints what each raised.

TFDC_TEST_TEAR_WEIGHTS_AT=N (Keras 3): the Nth `save_weights` of the fit
leaves its file cut in half and the process SIGKILLs itself: a kill in the
middle of writing the model's backup.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tfdata_checkpoint.keras as tck
from tests.support.subprocesses import exit_after

MAX_LIFETIME_S = 240
BATCH = 4


def make_dataset(repeat: bool = True) -> tf.data.Dataset:
    """30 batches per pass; ids are the first feature."""
    dataset = tf.data.Dataset.range(120).shuffle(40, seed=3)
    if repeat:
        dataset = dataset.repeat()
    return (
        dataset.map(lambda i: (tf.stack([tf.cast(i, tf.float32), tf.cast(i % 7, tf.float32)]),
                               tf.cast(i % 2, tf.float32)))
        .batch(BATCH)
        .prefetch(2)
    )


class Recording(tf.keras.Model):
    """A one-layer model that appends the ids of each batch it trains on."""

    def __init__(self, record, sleep_s: float = 0.0, announce: bool = False) -> None:
        super().__init__()
        self.dense = tf.keras.layers.Dense(1)
        self._record = record
        self._sleep_s = sleep_s
        self._announce = announce
        self._batches = 0
        self._weights_saved = 0
        self._tear_at = int(os.environ.get("TFDC_TEST_TEAR_WEIGHTS_AT", "0"))

    def call(self, x):
        return self.dense(x)

    def save_weights(self, filepath, *args, **kwargs):
        super().save_weights(filepath, *args, **kwargs)
        self._weights_saved += 1
        if self._weights_saved == self._tear_at:
            with open(filepath, "r+b") as f:
                f.truncate(os.path.getsize(filepath) // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    def train_step(self, data):
        if self._record is not None:
            ids = data[0][:, 0].numpy().astype(int).tolist()
            self._record.write(json.dumps({"ids": ids}) + "\n")
            self._record.flush()
        if self._announce:
            self._batches += 1
            print(f"BATCH {self._batches}", flush=True)
        if self._sleep_s:
            time.sleep(self._sleep_s)
        return super().train_step(data)


def build(record, sleep_s: float = 0.0, announce: bool = False) -> Recording:
    model = Recording(record, sleep_s, announce)
    model(tf.zeros([1, 2]))  # Keras 3's BackupAndRestore needs a built model
    model.compile(optimizer=tf.keras.optimizers.SGD(0.001), loss="mse", run_eagerly=True)
    return model


class FailAt(tf.keras.callbacks.Callback):
    def __init__(self, step: int) -> None:
        super().__init__()
        self._step = step
        self._seen = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._seen == self._step:
            raise RuntimeError(f"failing at step {self._step} as asked")
        self._seen += 1


class Restored(tf.keras.callbacks.Callback):
    """Writes the step and epoch the backup restored, before the first batch."""

    def __init__(self, backup, record) -> None:
        super().__init__()
        self._backup = backup
        self._record = record

    def on_epoch_begin(self, epoch, logs=None):
        if self._record is None:
            return
        if tck.IS_KERAS_3:
            step = int(self.model.optimizer.iterations.numpy())
        else:
            step = int(self.model._train_counter.numpy())
        self._record.write(json.dumps({"restored_step": step, "initial_epoch": epoch}) + "\n")
        self._record.flush()
        self._record = None


def fit(backup_dir: str, record_path: str, epochs: int, steps: int, save_freq: str,
        fail_at: int, sleep_s: float, class_weight: bool) -> None:
    with open(record_path, "a") as record:
        model = build(record, sleep_s)
        backup = tck.BackupAndRestore(backup_dir,
                                      save_freq="epoch" if save_freq == "epoch" else int(save_freq))
        callbacks = [Restored(backup, record), backup]
        if fail_at >= 0:
            callbacks.append(FailAt(fail_at))
        model.fit(backup.resumable(make_dataset()), epochs=epochs, steps_per_epoch=steps,
                  callbacks=callbacks, verbose=0,
                  class_weight={0: 1.0, 1: 2.0} if class_weight else None)


def model_step(model) -> int:
    if tck.IS_KERAS_3:
        return int(model.optimizer.iterations.numpy())
    return int(model._train_counter.numpy())


class SecondSignal(tck.BackupAndRestore):
    """Sends this process a second SIGTERM as the pre-emption backup starts."""

    def _back_up_for_preemption(self, back_up, where):
        def signalled_back_up():
            os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode: in the save
            back_up()

        super()._back_up_for_preemption(signalled_back_up, where)


class HandlerDuringFit(tf.keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.ours = None

    def on_train_batch_begin(self, batch, logs=None):
        if self.ours is None:
            self.ours = signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)


def preempt(backup_dir: str, record_path: str, epochs: int, steps: int, save_freq: str,
            sleep_s: float, second_signal: bool) -> None:
    freq = {"epoch": "epoch", "none": False}.get(save_freq)
    if freq is None:
        freq = int(save_freq)
    with open(record_path, "a") as record:
        model = build(record, sleep_s, announce=True)
        backup = (SecondSignal if second_signal else tck.BackupAndRestore)(
            backup_dir, save_freq=freq, preemption_signals=(signal.SIGTERM,))
        handler = HandlerDuringFit()
        model.fit(backup.resumable(make_dataset()), epochs=epochs, steps_per_epoch=steps,
                  callbacks=[Restored(backup, record), handler, backup], verbose=0)
    print(json.dumps({
        "preempted": backup.preempted,
        "step": model_step(model),
        "seconds_to_commit": backup.seconds_to_preemption_commit,
        "handler_during_fit": handler.ours,
        "default_handler_after": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
    }), flush=True)


def edge(backup_dir: str) -> None:
    result = {}

    def attempt(name, run):
        try:
            run()
        except ValueError as error:
            result[name] = {"error": "ValueError", "message": str(error)}
        except Exception as error:  # noqa: BLE001 - reported to the test
            result[name] = {"error": type(error).__name__, "message": str(error)}
        else:
            result[name] = {"error": None}

    x = np.zeros((40, 2), np.float32)

    def numpy_input():
        tck.BackupAndRestore(os.path.join(backup_dir, "numpy")).resumable(x)

    def not_resumable():
        backup = tck.BackupAndRestore(os.path.join(backup_dir, "plain"))
        build(None).fit(make_dataset(), epochs=1, steps_per_epoch=3, callbacks=[backup],
                        verbose=0)

    def no_steps_per_epoch():
        backup = tck.BackupAndRestore(os.path.join(backup_dir, "nosteps"))
        build(None).fit(backup.resumable(make_dataset(repeat=False)), epochs=2,
                        callbacks=[backup], verbose=0)

    def too_many_steps():
        backup = tck.BackupAndRestore(os.path.join(backup_dir, "toomany"))
        build(None).fit(backup.resumable(make_dataset(repeat=False)), epochs=2,
                        steps_per_epoch=20, callbacks=[backup], verbose=0)

    def one_pass_without_steps():
        backup = tck.BackupAndRestore(os.path.join(backup_dir, "onepass"))
        build(None).fit(backup.resumable(make_dataset(repeat=False)), epochs=1,
                        callbacks=[backup], verbose=0)

    def strategy_scope():
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = build(None)
        backup = tck.BackupAndRestore(os.path.join(backup_dir, "strategy"))
        model.fit(backup.resumable(make_dataset()), epochs=1, steps_per_epoch=3,
                  callbacks=[backup], verbose=0)

    # The strategy case configures the devices: it must come first.
    for name, run in [("strategy_scope", strategy_scope), ("numpy_input", numpy_input),
                      ("not_resumable", not_resumable), ("no_steps_per_epoch", no_steps_per_epoch),
                      ("too_many_steps", too_many_steps),
                      ("one_pass_without_steps", one_pass_without_steps)]:
        attempt(name, run)
    print(json.dumps(result))


if __name__ == "__main__":
    exit_after(MAX_LIFETIME_S)
    mode, *args = sys.argv[1:]
    if mode == "fit":
        fit(args[0], args[1], int(args[2]), int(args[3]), args[4], int(args[5]), float(args[6]),
            args[7] == "1")
    elif mode == "preempt":
        preempt(args[0], args[1], int(args[2]), int(args[3]), args[4], float(args[5]),
                args[6] == "1")
    elif mode == "edge":
        edge(args[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
