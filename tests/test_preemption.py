"""Saving on pre-emption: real processes, real SIGTERMs at random moments.

Trials (workers/preemption_trials.py forks the jobs, workers/preemption_child.py is the job):
a training job with `preemption_signals=(SIGTERM,)` gets SIGTERM a random
delay after it started training, sometimes a second SIGTERM right after, or a
SIGKILL shortly after (a grace period shorter than the save). Then a second
job resumes on the same directory. For every trial:

- a job that got SIGTERM only ends by itself (exit 0; 42 under TensorFlow's
  PreemptionCheckpointHandler), reporting the pre-emption;
- its model checkpoint and its input checkpoint are both at its last trained
  step, and the resumed job starts there: nothing repeated or skipped (the
  ids it trains on continue the uninterrupted stream, and the model's sum of
  ids equals the uninterrupted one);
- with a SIGKILL soon after the SIGTERM (the save did not finish in the
  grace period), the resumed job starts from the checkpoints that committed:
  the model's state matches its step, and the input continues the
  uninterrupted stream from its newest checkpoint at or before that step
  (elements written by a background save the kill interrupted are read
  again, as the hook warns; never skipped, never a wrong stream);
- every committed input checkpoint verifies.

Seeded: TFDC_PREEMPT_SEED=<seed> reruns the same delays.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_sessions import shuffled_dataset, train
from tests.support.kill_pipeline import make_dataset
from tests.support.subprocesses import run_trials
from tfdata_checkpoint._src import preemption
from tfdata_checkpoint._src.retention import CheckpointRetention

HAS_ESTIMATOR = hasattr(tf, "estimator") and hasattr(tf.estimator, "Estimator")
MODES = {"mts": 5, "estimator": 4 if HAS_ESTIMATOR else 0, "manager": 5, "pch": 2}
MAX_DELAY_S = 0.6
RESUME_STEPS = 5
PARALLEL = 2


# --- the watcher, in this process -------------------------------------------------------------


def test_bad_preemption_signals_name_the_argument():
    for bad in ["SIGTERM", 15, [signal.SIGKILL], [12345], [True]]:
        with pytest.raises(ValueError, match="preemption_signals"):
            preemption.check_preemption_signals(bad)
    with pytest.raises(ValueError, match="preemption_signals"):
        tc.CheckpointInputPipelineHook(checkpoint_dir="/tmp/x", save_steps=1,
                                       preemption_signals=[signal.SIGSTOP])
    assert preemption.check_preemption_signals([signal.SIGTERM, 15, signal.SIGUSR1]) == (
        signal.SIGTERM, signal.SIGUSR1)


def test_watcher_records_ignores_repeats_and_puts_the_handler_back(caplog):
    before = signal.getsignal(signal.SIGUSR1)
    watcher = preemption.PreemptionWatcher([signal.SIGUSR1], owner="test")
    watcher.install()
    try:
        assert not watcher.requested
        with caplog.at_level(logging.WARNING):
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0)  # the handler runs at the next bytecode boundary
        assert watcher.requested and watcher.signal == signal.SIGUSR1
        assert watcher.seconds_since_signal() >= 0
        assert "ignored" in caplog.text
    finally:
        watcher.uninstall()
    assert signal.getsignal(signal.SIGUSR1) == before


def test_watcher_outside_the_main_thread_is_refused():
    errors = []

    def install():
        try:
            preemption.PreemptionWatcher([signal.SIGUSR1], owner="test").install()
        except ValueError as error:
            errors.append(str(error))

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert errors and "main thread" in errors[0]
    # Without signals nothing is installed, from any thread.
    preemption.PreemptionWatcher((), owner="test").install()


def test_hook_in_process_saves_the_signalled_step_and_stops(tmp_path):
    """SIGTERM at step 5 of a MonitoredTrainingSession: saved at 6, stopped, handler restored."""
    before = signal.getsignal(signal.SIGTERM)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=100,
                                          preemption_signals=[signal.SIGTERM])

    def before_step(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    seen = []
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        element = tf.compat.v1.data.make_one_shot_iterator(shuffled_dataset()).get_next()
        train_op = global_step.assign_add(1)
        with tf.compat.v1.train.MonitoredTrainingSession(
            hooks=[hook], save_summaries_steps=None, save_summaries_secs=None,
            log_step_count_steps=None,
        ) as session:
            step = 0
            while not session.should_stop():
                before_step(step)
                seen.append(session.run([element, train_op])[0])
                step += 1
    # The step in flight when the signal came (the 6th) finished, then the loop stopped.
    assert len(seen) == 6 and hook.preempted
    assert hook.seconds_to_preemption_commit is not None
    assert tf.train.latest_checkpoint(str(tmp_path), "checkpoint_input").endswith("input.ckpt-6")
    # Pre-empted: the handler stays (later savers may still be finishing).
    assert signal.getsignal(signal.SIGTERM) != before
    hook._preemption.uninstall()  # this test process must get its SIGTERM back
    assert signal.getsignal(signal.SIGTERM) == before
    # A fresh run resumes there.
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=100)
    assert seen + train(4, hooks=[hook]) == train(10)


def test_without_a_signal_the_handlers_are_put_back(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path / "h"), save_steps=2,
                                          preemption_signals=[signal.SIGTERM])
    train(5, hooks=[hook])
    assert not hook.preempted and signal.getsignal(signal.SIGTERM) == before
    manager = tc.IteratorCheckpointManager(iter(make_dataset(0)), str(tmp_path / "m"),
                                           preemption_signals=[signal.SIGTERM])
    assert signal.getsignal(signal.SIGTERM) != before
    manager.save(1)
    manager.close()
    assert not manager.preempted and signal.getsignal(signal.SIGTERM) == before


def test_manager_in_process_saves_on_signal(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    iterator = iter(make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, str(tmp_path), save_steps=100,
                                           preemption_signals=(signal.SIGTERM,))
    manager.save(0)
    saved = []
    for step in range(1, 50):
        next(iterator)
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0)
        saved.append(manager.maybe_save(step))
        if manager.preempted:
            break
    manager.close()
    assert step == 7 and saved[-1] == manager.latest_checkpoint
    assert manager.latest_checkpoint.endswith("input.ckpt-7")
    assert signal.getsignal(signal.SIGTERM) != before
    manager._preemption.uninstall()
    assert signal.getsignal(signal.SIGTERM) == before
    restored = iter(make_dataset(0))
    tc.restore_iterator(restored, manager.latest_checkpoint)
    expected = iter(make_dataset(0))
    for _ in range(7):
        next(expected)
    assert int(next(restored)[0]) == int(next(expected)[0])


# --- trials in real processes -------------------------------------------------------------------


def _ids(path: str) -> list[int]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(line) for line in f if line.strip()]


def _baseline(n: int) -> list[int]:
    iterator = iter(make_dataset(0))
    return [int(next(iterator)[0]) for _ in range(n)]


def _input_retention(trial: dict) -> CheckpointRetention:
    return CheckpointRetention(trial["dir"], "input.ckpt", latest_filename="checkpoint_input")


def _check_trial(trial: dict, baseline: list[int], where: str) -> dict:
    first, resume = trial["first"], trial["resume"]
    assert first["ready"] and not first["forced_kill"], where
    killed = trial.get("kill_delay") is not None and first.get("signal") == signal.SIGKILL
    ids_first = _ids(os.path.join(trial["dir"], "ids-first.txt"))
    assert ids_first == baseline[: len(ids_first)], where
    if not killed:
        expected_exit = 42 if trial["mode"] == "pch" else 0
        assert first.get("exit") == expected_exit, f"{where}: {first}"
        result = first["result"]
        assert result["preempted"], where
        # Every step trained before the stop is in both checkpoints.
        assert result["step"] == len(ids_first), where
        assert result["total"] == sum(ids_first), where
        assert result["input_step"] == result["step"], where
        assert result["model_step"] == result["step"], where
    assert not resume["forced_kill"] and resume.get("exit") == 0, f"{where}: {resume}"
    start, end = resume["result"]["start"], resume["result"]["step"]
    ids_resume = _ids(os.path.join(trial["dir"], "ids-resume.txt"))
    # The resumed model holds the sum of the ids before its step, plus what it trained.
    assert resume["result"]["total"] == sum(baseline[:start]) + sum(ids_resume), where
    repeated = 0
    if not killed:
        assert start == first["result"]["step"], where
        assert ids_resume == baseline[start:end], where
    else:
        # Killed: the input resumes from the newest checkpoint it committed at
        # or before the model's step (a background write of the model's step
        # may have been in flight): elements may be read again, never skipped,
        # never a wrong stream.
        # A SIGKILL may land after a step (and its periodic model save) but
        # before the job logged the step's id.
        assert start <= len(ids_first) + 1, where
        matches = [m for m in range(start + 1)
                   if baseline[m : m + len(ids_resume)] == ids_resume]
        assert matches, f"{where}: the resumed stream is no part of the uninterrupted one"
        repeated = start - max(matches)
    retention = _input_retention(trial)
    for step in retention.committed_steps():
        tc.ops.describe_iterator_shards(retention.prefix(step), verify=True)
    return {"killed": killed, "repeated": repeated,
            "seconds": (first.get("result") or {}).get("seconds_to_commit")}


def test_sigterm_at_random_moments_saves_and_resumes_exactly(tmp_path):
    seed = int(os.environ.get("TFDC_PREEMPT_SEED", time.time_ns() % 1_000_000))
    print(f"pre-emption trials: TFDC_PREEMPT_SEED={seed}")
    rng = random.Random(seed)
    trials = []
    for mode, count in MODES.items():
        for i in range(count):
            trial = {"id": len(trials), "mode": mode, "dir": str(tmp_path / f"t{len(trials)}"),
                     "delay": round(rng.uniform(0.0, MAX_DELAY_S), 4),
                     "resume_steps": RESUME_STEPS}
            # Per mode: plain SIGTERMs, a second SIGTERM soon after, a SIGKILL soon after.
            if i % 3 == 1:
                trial["second_delay"] = round(rng.uniform(0.0, 0.05), 4)
            elif i % 3 == 2 and mode != "pch":
                trial["kill_delay"] = round(rng.uniform(0.0, 0.1), 4)
            os.makedirs(trial["dir"])
            trial["spec"] = {"mode": mode, "dir": trial["dir"], "ready": 4, "step_sleep": 0.005}
            trials.append(trial)
    rng.shuffle(trials)
    done = run_trials("preemption_trials", trials, PARALLEL, tmp_path, timeout=1200,
                      what=f"seed {seed}")
    assert len(done) == len(trials), f"seed {seed}: {len(done)} of {len(trials)} trials reported"
    baseline = _baseline(2000)
    summary = {"signalled": 0, "second_signal": 0, "killed_after_signal": 0,
               "steps_read_again_after_kill": [], "seconds": []}
    for trial in sorted(done, key=lambda t: t["id"]):
        where = f"seed {seed}, trial {trial['id']} {trial['mode']} {trial['dir']}"
        try:
            checked = _check_trial(trial, baseline, where)
        except AssertionError:
            for name in ("stderr-first.txt", "stderr-resume.txt"):
                path = os.path.join(trial["dir"], name)
                if os.path.exists(path):
                    with open(path) as f:
                        print(f"--- {where} {name}\n" + f.read()[-3000:])
            raise
        summary["signalled"] += 1
        summary["second_signal"] += trial.get("second_delay") is not None
        summary["killed_after_signal"] += checked["killed"]
        if checked["killed"]:
            summary["steps_read_again_after_kill"].append(checked["repeated"])
        if not checked["killed"]:
            seconds = checked["seconds"]
            summary["seconds"].append((trial["mode"], None if seconds is None else round(seconds, 3)))
    print(f"pre-emption trials: {summary}")
