"""tfdata_checkpoint.keras.BackupAndRestore: model.fit interrupted, then resumed in a fresh process.

Each run is a child process (`keras_fit_child.py`) recording the ids of every
batch it trained on. A run is SIGKILLed mid-epoch, or stopped by an exception
mid-epoch; a fresh process with the same backup_dir resumes. Compared with an
uninterrupted fit:

- tf.keras 2 (TF 2.15): the first run's batches up to the restored step, then
  the resumed run's, are exactly the uninterrupted run's, and as many.
- Keras 3 (TF >= 2.16): the resumed run's batches continue the stream exactly
  at the restored step (none repeated or skipped); Keras 3 re-runs the
  interrupted epoch's steps in full, so the resumed run trains on
  (epochs - restored epoch) * steps_per_epoch batches.

Pre-emption (`preemption_signals=(SIGTERM,)`): a child printing a line per
batch gets SIGTERM after a random (seeded: TFDC_PREEMPT_SEED) number of
batches, must stop early by itself (exit 0) backed up at the batch it was
in, and a fresh process finishes the fit from there, compared as above (on
tf.keras 2 both runs together are the uninterrupted run). Also: a second
SIGTERM during the save is ignored; a SIGKILL soon after the SIGTERM leaves
the last committed backup restorable; the handler is ours only during a fit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
import tfdata_checkpoint.keras as tck
from tests.support.subprocesses import child_env, sigkill_when, worker_command
from tests.workers.keras_fit_child import build, make_dataset
from tfdata_checkpoint._src.retention import CheckpointRetention

EPOCHS, STEPS, SAVE_FREQ = 3, 12, 5
DEADLINE_S = 180
IS_KERAS_3 = hasattr(tf.keras.callbacks.BackupAndRestore, "_load_model")


def child(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [*worker_command("keras_fit_child"), *args], env=child_env(**env), capture_output=True,
        text=True, timeout=DEADLINE_S,
        check=False,
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"child {args} failed:\n{completed.stderr[-3000:]}")
    return completed


def fit_args(backup: Path, record: Path, *, epochs: int = EPOCHS, save_freq=SAVE_FREQ,
             fail_at: int = -1, sleep_s: float = 0.0, class_weight: bool = False) -> list[str]:
    return ["fit", str(backup), str(record), str(epochs), str(STEPS), str(save_freq),
            str(fail_at), str(sleep_s), "1" if class_weight else "0"]


def read(record: Path) -> tuple[dict, list[list[int]]]:
    """(header, batches) of a RECORD file; a line cut by SIGKILL is dropped."""
    lines = [json.loads(line) for line in record.read_text().splitlines() if line.endswith("}")]
    return lines[0], [line["ids"] for line in lines[1:]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[list[int]]:
    """An uninterrupted fit's batches, two epochs longer than the runs compared with it.

    Keras 3 re-runs the restored epoch's steps, so each pre-emption adds the
    batches it was into its epoch to the stream: pre-empted twice
    (`test_preempted_twice_resumes_each_time`: signals after at most 21 and 9
    batches, a few more trained before the stop) the three runs read up to
    about 21 + 9 + 2 * 12 batches and more: one epoch longer (48) was seen
    one batch short, 19 + 6 + 24."""
    base = tmp_path_factory.mktemp("uninterrupted")
    child(*fit_args(base / "backup", base / "record", epochs=EPOCHS + 2))
    header, batches = read(base / "record")
    assert header["restored_step"] == 0 and len(batches) == (EPOCHS + 2) * STEPS
    return batches


def input_step(backup: Path) -> int | None:
    latest = tf.train.latest_checkpoint(str(backup / "input_pipeline"),
                                        latest_filename="checkpoint_input")
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def kill_mid_epoch(backup: Path, record: Path) -> None:
    """SIGKILLs a fit once a mid-epoch backup (step 15: epoch 1, batch 2) was taken
    and more batches trained on."""
    process = subprocess.Popen([*worker_command("keras_fit_child"),
                                *fit_args(backup, record, sleep_s=0.05)], env=child_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def backed_up_mid_epoch() -> bool:
        step = input_step(backup)
        return (step is not None and step >= 15 and record.exists()
                and len(read(record)[1]) >= step + 2)

    sigkill_when(process, backed_up_mid_epoch, deadline_s=DEADLINE_S, what="mid-epoch backup")
    assert len(read(record)[1]) < EPOCHS * STEPS


def check_resumed(first: Path, second: Path, uninterrupted: list[list[int]]) -> int:
    _, before = read(first)
    header, after = read(second)
    restored, epoch = header["restored_step"], header["initial_epoch"]
    assert 0 < restored <= len(before)
    assert before == uninterrupted[: len(before)]
    if IS_KERAS_3:
        assert epoch == restored // STEPS
        assert len(after) == (EPOCHS - epoch) * STEPS
        assert after == uninterrupted[restored: restored + len(after)]
    else:
        assert before[:restored] + after == uninterrupted[: EPOCHS * STEPS]
    return restored


def test_sigkilled_mid_epoch_resumes_the_input_exactly(tmp_path, uninterrupted):
    backup = tmp_path / "backup"
    kill_mid_epoch(backup, tmp_path / "first")
    child(*fit_args(backup, tmp_path / "second"))
    restored = check_resumed(tmp_path / "first", tmp_path / "second", uninterrupted)
    assert restored % STEPS != 0  # a mid-epoch backup
    # Keras's semantics: the finished fit deletes its backup, ours with it.
    assert not (backup / "input_pipeline").exists()


@pytest.mark.parametrize(
    ("save_freq", "class_weight", "expected_step"),
    [(SAVE_FREQ, True, 15), ("epoch", False, STEPS)],
    ids=["mid_epoch_class_weight", "epoch"],
)
def test_failed_fit_resumes_the_input_exactly(tmp_path, uninterrupted, save_freq, class_weight,
                                              expected_step):
    backup = tmp_path / "backup"
    failed = child(*fit_args(backup, tmp_path / "first", save_freq=save_freq, fail_at=17,
                             class_weight=class_weight), check=False)
    assert failed.returncode != 0 and "failing at step 17" in failed.stderr
    child(*fit_args(backup, tmp_path / "second", save_freq=save_freq,
                    class_weight=class_weight))
    # class_weight maps the dataset (ids unchanged): same stream as without.
    assert check_resumed(tmp_path / "first", tmp_path / "second", uninterrupted) == expected_step


def test_what_cannot_resume_is_a_clear_error(tmp_path):
    result = json.loads(child("edge", str(tmp_path)).stdout.strip().splitlines()[-1])
    for name in ("strategy_scope", "numpy_input", "not_resumable", "no_steps_per_epoch",
                 "too_many_steps"):
        assert result[name]["error"] == "ValueError", (name, result[name])
    assert "MirroredStrategy" in result["strategy_scope"]["message"]
    assert "PER_REPLICA" in result["strategy_scope"]["message"]
    assert "got ndarray" in result["numpy_input"]["message"]
    assert "from_tensor_slices" in result["numpy_input"]["message"]
    assert "backup.resumable(dataset)" in result["not_resumable"]["message"]
    for name in ("no_steps_per_epoch", "too_many_steps"):
        assert "steps_per_epoch" in result[name]["message"], name
        assert "dataset.repeat()" in result[name]["message"], name
    # One pass over a finite dataset needs neither.
    assert result["one_pass_without_steps"]["error"] is None, result["one_pass_without_steps"]


# --- pre-emption: preemption_signals=(SIGTERM,), real signals -------------------------------------

PREEMPT_SLEEP_S = 0.05  # per batch: a signal lands while a batch is in flight
PREEMPT_SEED = int(os.environ.get("TFDC_PREEMPT_SEED", time.time_ns() % 1_000_000))


def seeded(name: str) -> random.Random:
    """A generator per test, from TFDC_PREEMPT_SEED (printed, to rerun a failure)."""
    print(f"keras pre-emption: TFDC_PREEMPT_SEED={PREEMPT_SEED} ({name})")
    return random.Random(f"{PREEMPT_SEED}-{name}")


def preempt_args(backup: Path, record: Path, save_freq, second_signal: bool = False) -> list[str]:
    freq = "none" if save_freq is False else str(save_freq)
    return ["preempt", str(backup), str(record), str(EPOCHS), str(STEPS), freq,
            str(PREEMPT_SLEEP_S), "1" if second_signal else "0"]


def signalled_fit(backup: Path, record: Path, save_freq, *, after_batches: int,
                  kill_after_s: float | None = None, second_signal: bool = False,
                  ) -> tuple[int, dict | None, str]:
    """Runs a `preempt` child, SIGTERMs it once it printed `after_batches` batches (and
    SIGKILLs it `kill_after_s` later, if given). Returns (exit code, its JSON line, stderr)."""
    stderr_path = record.with_name(record.name + ".stderr")
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [*worker_command("keras_fit_child"), *preempt_args(backup, record, save_freq,
                                                               second_signal)],
            env=child_env(), stdout=subprocess.PIPE, stderr=stderr, text=True)
        lines = []
        try:
            for line in process.stdout:
                lines.append(line)
                if line.strip() == f"BATCH {after_batches}":
                    process.send_signal(signal.SIGTERM)
                    if kill_after_s is not None:
                        time.sleep(kill_after_s)
                        process.send_signal(signal.SIGKILL)
            process.wait(timeout=DEADLINE_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    results = [json.loads(line) for line in lines if line.startswith("{")]
    return process.returncode, (results[-1] if results else None), stderr_path.read_text()


def resumed_fit(backup: Path, record: Path, save_freq) -> dict:
    """A fresh process with the same callback, not signalled: it finishes the fit."""
    completed = child(*preempt_args(backup, record, save_freq))
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert not result["preempted"], result
    # Installed during the fit, put back after it: no signal came.
    assert result["handler_during_fit"] and result["default_handler_after"], result
    return result


def check_continued(before: list[list[int]], header: dict, after: list[list[int]],
                    uninterrupted: list[list[int]]) -> None:
    """The resumed run continues the stream at the step its backup restored."""
    restored, epoch = header["restored_step"], header["initial_epoch"]
    assert before[:restored] == uninterrupted[:restored]
    if IS_KERAS_3:
        # Keras 3 re-runs the restored epoch's steps, on the input continuing exactly.
        assert len(after) == (EPOCHS - epoch) * STEPS
        assert after == uninterrupted[restored: restored + len(after)]
    else:
        # tf.keras 2 resumes at the next batch: both runs together are the uninterrupted one.
        assert before[:restored] + after == uninterrupted[: EPOCHS * STEPS]


@pytest.mark.parametrize(
    ("save_freq", "second_signal"),
    [(SAVE_FREQ, False), ("epoch", True), (False, False)],
    ids=["save_freq_5", "epoch_second_signal_in_the_save", "only_on_preemption"],
)
def test_sigterm_backs_up_the_batch_in_flight_and_a_restart_continues(
        tmp_path, uninterrupted, save_freq, second_signal):
    rng = seeded(f"sigterm-{save_freq}-{second_signal}")
    after_batches = rng.randint(1, 2 * STEPS)  # an epoch or more left: the signal stops it early
    print(f"SIGTERM after batch {after_batches}")
    backup = tmp_path / "backup"
    code, result, stderr = signalled_fit(backup, tmp_path / "first", save_freq,
                                         after_batches=after_batches,
                                         second_signal=second_signal)
    assert code == 0 and result is not None, stderr[-3000:]
    assert result["preempted"] and result["handler_during_fit"], result
    step = result["step"]
    _, before = read(tmp_path / "first")
    # The batch in flight finished, then the fit stopped, well before its end.
    assert after_batches <= step == len(before) < EPOCHS * STEPS, (step, len(before))
    assert before == uninterrupted[:step]
    # Backed up at that very batch: the input (and, via the restart, the model).
    assert input_step(backup) == step
    assert result["seconds_to_commit"] is not None and "Pre-emption (SIGTERM)" in stderr
    if second_signal:
        assert "again (signal 2): ignored" in stderr, stderr[-3000:]

    resumed_fit(backup, tmp_path / "second", save_freq)
    header, after = read(tmp_path / "second")
    print(f"stopped at step {step} ({result['seconds_to_commit']:.3f} s from signal to commit); "
          f"resumed at {header}, {len(after)} batches")
    assert header["restored_step"] == step
    if IS_KERAS_3:
        # The epoch it was in, or the next one after an epoch's last batch.
        assert header["initial_epoch"] == step // STEPS
    else:
        assert len(after) == EPOCHS * STEPS - step
    check_continued(before, header, after, uninterrupted)
    # The finished fit deletes its backup (delete_checkpoint=True), ours with it.
    assert not (backup / "input_pipeline").exists()


def test_preempted_twice_resumes_each_time(tmp_path, uninterrupted):
    """Pre-empted in epoch 1, pre-empted again in the restarted fit, then finished."""
    rng = seeded("twice")
    backup = tmp_path / "backup"
    records = [tmp_path / "first", tmp_path / "second", tmp_path / "third"]
    for record, after_batches in [(records[0], rng.randint(STEPS + 1, 2 * STEPS - 3)),
                                  (records[1], rng.randint(1, STEPS - 3))]:
        print(f"{record.name}: SIGTERM after batch {after_batches}")
        code, result, stderr = signalled_fit(backup, record, SAVE_FREQ,
                                             after_batches=after_batches)
        assert code == 0 and result["preempted"], stderr[-3000:]
    resumed_fit(backup, records[2], SAVE_FREQ)
    runs = [read(record) for record in records]
    print("runs: " + "; ".join(f"{header} then {len(batches)} batches"
                               for header, batches in runs))
    start = 0
    for (header, batches), (next_header, _) in zip(runs, runs[1:]):
        # Each restart restores the step the run before it stopped at.
        assert header["restored_step"] == start
        start += len(batches)
        assert next_header["restored_step"] == start
        if IS_KERAS_3:
            # In the epoch the pre-empted run was in (it re-ran that epoch from its start).
            assert next_header["initial_epoch"] == header["initial_epoch"] + len(batches) // STEPS
    trained = [batch for _, batches in runs for batch in batches]
    if IS_KERAS_3:
        assert len(trained) <= len(uninterrupted)
        assert trained == uninterrupted[: len(trained)]
        assert len(runs[2][1]) == (EPOCHS - runs[2][0]["initial_epoch"]) * STEPS
    else:
        assert trained == uninterrupted[: EPOCHS * STEPS]


def test_sigkill_soon_after_the_sigterm_leaves_a_restorable_backup(tmp_path, uninterrupted):
    """A grace period shorter than the save: SIGKILL at once, or 0-200 ms after the SIGTERM
    (the save commits about 0.1 s after it here: before, in or after the save)."""
    rng = seeded("sigkill")
    for trial in range(2):
        after_batches = rng.randint(SAVE_FREQ + 2, 2 * STEPS)  # a periodic backup committed
        kill_after_s = 0.0 if trial == 0 else round(rng.uniform(0.0, 0.2), 4)
        print(f"trial {trial}: SIGTERM after batch {after_batches}, SIGKILL {kill_after_s} s later")
        backup, first, second = (tmp_path / f"backup{trial}", tmp_path / f"first{trial}",
                                 tmp_path / f"second{trial}")
        code, _, stderr = signalled_fit(backup, first, SAVE_FREQ, after_batches=after_batches,
                                        kill_after_s=kill_after_s)
        assert code in (0, -signal.SIGKILL), stderr[-3000:]
        # Every input checkpoint that committed verifies.
        retention = CheckpointRetention(str(backup / "input_pipeline"), "input.ckpt",
                                        latest_filename="checkpoint_input")
        committed = retention.committed_steps()
        for step in committed:
            tc.ops.describe_iterator_shards(retention.prefix(step), verify=True)
        resumed_fit(backup, second, SAVE_FREQ)
        _, before = read(first)
        header, after = read(second)
        print(f"trial {trial}: exit {code}, {len(before)} batches trained, input checkpoints "
              f"{committed}, resumed at {header}, {len(after)} batches")
        # The pre-emption backup if it committed, else the periodic one before it.
        assert SAVE_FREQ <= header["restored_step"] <= len(before), (header, len(before))
        check_continued(before, header, after, uninterrupted)


@pytest.mark.skipif(not IS_KERAS_3, reason="tf.keras 2's model backup is a tf.train.Checkpoint")
def test_keras3_a_kill_while_writing_the_weights_leaves_the_previous_backup(tmp_path,
                                                                            uninterrupted):
    """Keras 3 overwrites latest.weights.h5 in place; ours writes beside it, then renames."""
    backup = tmp_path / "backup"
    # The third backup (step 15): its input checkpoint commits, its weights are cut.
    killed = child(*fit_args(backup, tmp_path / "first"), check=False,
                   TFDC_TEST_TEAR_WEIGHTS_AT="3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert input_step(backup) == 15
    child(*fit_args(backup, tmp_path / "second"))
    assert check_resumed(tmp_path / "first", tmp_path / "second", uninterrupted) == 10


class _Ids:
    """A RECORD file in memory (build() writes JSON lines to it)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def write(self, line: str) -> None:
        self.batches.append(json.loads(line)["ids"])

    def flush(self) -> None:
        pass


class _SignalAt(tf.keras.callbacks.Callback):
    """Sends this process SIGTERM once, at `hook` (a callback method name) in `epoch`."""

    def __init__(self, hook: str, epoch: int) -> None:
        super().__init__()
        self._epoch, self._sent = epoch, False
        self._current = -1
        setattr(self, hook, self._send)

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch

    def _send(self, *args, **kwargs):
        if self._current == self._epoch and not self._sent:
            self._sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def _fit_in_process(backup_dir: Path, *callbacks, validation: bool = False):
    ids = _Ids()
    backup = tck.BackupAndRestore(str(backup_dir), save_freq=SAVE_FREQ,
                                  preemption_signals=(signal.SIGTERM,))
    before = signal.getsignal(signal.SIGTERM)
    try:
        build(ids).fit(backup.resumable(make_dataset()), epochs=EPOCHS, steps_per_epoch=STEPS,
                       callbacks=[backup, *callbacks], verbose=0,
                       validation_data=make_dataset(repeat=False).take(2) if validation else None)
    finally:
        backup._preemption.uninstall()  # this test process must get its SIGTERM back
        assert signal.getsignal(signal.SIGTERM) == before
    return backup, ids.batches


def test_a_signal_after_an_epochs_last_batch_or_after_the_fit(tmp_path, uninterrupted):
    """In this process: SIGTERM during epoch 0's validation, backed up at that epoch's end;
    SIGTERM after the last epoch's end, the final backup kept (a restart trains nothing)."""
    backup = tmp_path / "validation"
    stopped, first = _fit_in_process(backup, _SignalAt("on_test_begin", 0), validation=True)
    assert stopped.preempted and len(first) == STEPS and input_step(backup) == STEPS
    resumed, second = _fit_in_process(backup)
    assert not resumed.preempted
    # The epoch had finished: both flavours begin the next one; nothing repeated or skipped.
    assert first + second == uninterrupted[: EPOCHS * STEPS]

    backup = tmp_path / "end"
    stopped, first = _fit_in_process(backup, _SignalAt("on_epoch_end", EPOCHS - 1))
    assert stopped.preempted and len(first) == EPOCHS * STEPS
    assert input_step(backup) == EPOCHS * STEPS  # kept, not deleted (delete_checkpoint=True)
    resumed, second = _fit_in_process(backup)
    assert second == [] and not (backup / "input_pipeline").exists()


def test_preemption_arguments_and_the_main_thread(tmp_path):
    with pytest.raises(ValueError, match="preemption_signals"):
        tck.BackupAndRestore(str(tmp_path), preemption_signals=(signal.SIGKILL,))
    with pytest.raises(ValueError, match="preemption_signals"):
        tck.BackupAndRestore(str(tmp_path), save_freq=False)
    if not IS_KERAS_3:
        with pytest.raises(ValueError, match=r"preemption_signals=\(signal.SIGTERM,\)"):
            tck.BackupAndRestore(str(tmp_path), save_before_preemption=True)
    # Outside the main thread fit is refused at on_train_begin, nothing installed.
    before = signal.getsignal(signal.SIGTERM)
    errors = []

    def fit_in_a_thread():
        backup = tck.BackupAndRestore(str(tmp_path / "thread"), preemption_signals=(signal.SIGTERM,))
        model = build(None)
        try:
            model.fit(backup.resumable(make_dataset()), epochs=1, steps_per_epoch=2,
                      callbacks=[backup], verbose=0)
        except ValueError as error:
            errors.append(str(error))

    thread = threading.Thread(target=fit_in_a_thread)
    thread.start()
    thread.join()
    assert errors and "preemption_signals" in errors[0] and "main thread" in errors[0], errors
    assert signal.getsignal(signal.SIGTERM) == before
