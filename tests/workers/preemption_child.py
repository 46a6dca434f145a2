"""A training job that saves on pre-emption, for test_preemption.py; not a test module.

Usage: python -m tests.workers.preemption_child SPEC_JSON

SPEC: {"mode": "mts" | "estimator" | "manager" | "pch", "dir": model and input
directory, "log": file that gets one trained element id per line, "steps": the
global step to stop at (the pre-empted run gets a large one), "ready": the
step after which "READY" is printed, "step_sleep": seconds per step}.

Every job trains on `kill_pipeline.make_dataset(0)` (shuffle and prefetch
buffers): a step reads one element, adds its id to the model variable `total`
and increments the global step; the model is checkpointed every 3 steps, the
input every 3 steps with `preemption_signals=(SIGTERM,)`. The ids are logged
after each step. At the end the job prints one JSON line: whether it was
pre-empted, its global step, the model's `total`, the seconds from the signal
to the input commit.

Modes: "mts" MonitoredTrainingSession + CheckpointInputPipelineHook; "estimator"
an Estimator (TF <= 2.15) + the hook; "manager" an eager loop with
IteratorCheckpointManager and tf.train.CheckpointManager; "pch" the same loop
under TensorFlow's PreemptionCheckpointHandler, which owns SIGTERM and saves the
input from its TerminationConfig(save_fn=...) (exit code 42, its default).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support import kill_pipeline
from tfdata_checkpoint._src.storage.listing import CheckpointListing

SAVE_STEPS = 3
SIGNALS = (signal.SIGTERM,)


class _Log:
    def __init__(self, path: str, ready: int) -> None:
        self._file = open(path, "a")  # noqa: SIM115 - lives as long as the job
        self._ready = ready
        self._count = 0

    def step(self, element_id: int) -> None:
        self._file.write(f"{int(element_id)}\n")
        self._file.flush()
        self._count += 1
        if self._count == self._ready:
            print("READY", flush=True)


def _result(spec: dict, start: int, preempted: bool, step: int, total: int,
            seconds: float | None) -> None:
    """Prints the outcome, with the steps of the newest model and input checkpoints."""
    if spec["mode"] in ("mts", "estimator"):
        model_step = _model_step(spec["dir"])
    else:
        path = tf.train.latest_checkpoint(os.path.join(spec["dir"], "model"))
        model_step = int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE"))
    latest = CheckpointListing(spec["dir"], "input.ckpt", "checkpoint_input", 1).latest()
    print(json.dumps({"start": int(start), "preempted": bool(preempted), "step": int(step),
                      "total": int(total), "seconds_to_commit": seconds,
                      "model_step": model_step,
                      "input_step": None if latest is None else int(latest.rsplit("-", 1)[1])}),
          flush=True)


def _model_step(directory: str) -> int:
    path = tf.train.latest_checkpoint(directory)
    return 0 if path is None else int(tf.train.load_variable(path, "global_step"))


def _graph_model(element_id):
    global_step = tf.compat.v1.train.get_or_create_global_step()
    total = tf.compat.v1.Variable(0, name="total", dtype=tf.int64, trainable=False)
    return global_step, total, tf.group(global_step.assign_add(1), total.assign_add(element_id))


def run_mts(spec: dict, log: _Log) -> None:
    with tf.Graph().as_default():
        element_id, _ = tf.compat.v1.data.make_one_shot_iterator(
            kill_pipeline.make_dataset(0)).get_next()
        global_step, _, train_op = _graph_model(element_id)
        hook = tc.CheckpointInputPipelineHook(
            checkpoint_dir=spec["dir"], save_steps=SAVE_STEPS, max_to_keep=3,
            preemption_signals=SIGNALS)
        with tf.compat.v1.train.MonitoredTrainingSession(
            checkpoint_dir=spec["dir"], save_checkpoint_steps=SAVE_STEPS, hooks=[hook],
            save_summaries_steps=None, save_summaries_secs=None, log_step_count_steps=None,
        ) as session:
            step = start = session.run(global_step)
            while not session.should_stop() and step < spec["steps"]:
                value, _ = session.run([element_id, train_op])
                log.step(value)
                time.sleep(spec["step_sleep"])
                step += 1
        # The model checkpoint (written by CheckpointSaverHook.end) holds what counts.
        path = tf.train.latest_checkpoint(spec["dir"])
        _result(spec, start, hook.preempted, tf.train.load_variable(path, "global_step"),
                tf.train.load_variable(path, "total"), hook.seconds_to_preemption_commit)


class _RecordIds(tf.compat.v1.train.SessionRunHook):
    def __init__(self, element_id, log: _Log, step_sleep: float) -> None:
        self._element_id, self._log, self._sleep = element_id, log, step_sleep

    def before_run(self, run_context):
        return tf.compat.v1.train.SessionRunArgs(self._element_id)

    def after_run(self, run_context, run_values):
        self._log.step(run_values.results)
        time.sleep(self._sleep)


def run_estimator(spec: dict, log: _Log) -> None:
    def model_fn(features, labels, mode):
        # A dataset of (id, payload) pairs gives Estimator (features, labels).
        del labels
        element_id = features
        _, _, train_op = _graph_model(element_id)
        return tf.estimator.EstimatorSpec(
            mode, loss=tf.constant(0.0), train_op=train_op,
            training_hooks=[_RecordIds(element_id, log, spec["step_sleep"])])

    config = tf.estimator.RunConfig(save_checkpoints_steps=SAVE_STEPS, save_summary_steps=None,
                                    log_step_count_steps=None, keep_checkpoint_max=3)
    start = _model_step(spec["dir"])
    est = tf.estimator.Estimator(model_fn, model_dir=spec["dir"], config=config)
    hook = tc.CheckpointInputPipelineHook(est, max_to_keep=3, preemption_signals=SIGNALS)
    est.train(lambda: kill_pipeline.make_dataset(0), max_steps=spec["steps"], hooks=[hook])
    path = tf.train.latest_checkpoint(spec["dir"])
    _result(spec, start, hook.preempted, tf.train.load_variable(path, "global_step"),
            tf.train.load_variable(path, "total"), hook.seconds_to_preemption_commit)


def _eager_model(directory: str):
    step = tf.Variable(0, dtype=tf.int64)
    total = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(step=step, total=total)
    model_manager = tf.train.CheckpointManager(checkpoint, os.path.join(directory, "model"),
                                               max_to_keep=3)
    return step, total, model_manager


def run_manager(spec: dict, log: _Log) -> None:
    step, total, model_manager = _eager_model(spec["dir"])
    model_manager.restore_or_initialize()
    iterator = iter(kill_pipeline.make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, spec["dir"], save_steps=SAVE_STEPS,
                                           max_to_keep=3, preemption_signals=SIGNALS)
    start = int(step)
    if manager.restore_or_initialize(step=start) is None:
        manager.save(start)  # the initial checkpoint: input and model save on the same steps
    while int(step) < spec["steps"]:
        element_id, _ = next(iterator)
        total.assign_add(element_id)
        step.assign_add(1)
        log.step(element_id)
        time.sleep(spec["step_sleep"])
        manager.maybe_save(int(step))
        if manager.preempted or int(step) % SAVE_STEPS == 0:
            # On pre-emption, after the input's commit (maybe_save waited for it).
            model_manager.save(checkpoint_number=int(step))
        if manager.preempted:
            break
    manager.close()
    if not manager.preempted:
        manager.save(int(step))
        manager.wait()
        model_manager.save(checkpoint_number=int(step))
    _result(spec, start, manager.preempted, int(step), int(total),
            manager.seconds_to_preemption_commit)


def run_pch(spec: dict, log: _Log) -> None:
    step, total, model_manager = _eager_model(spec["dir"])
    iterator = iter(kill_pipeline.make_dataset(0))
    # No preemption_signals: PreemptionCheckpointHandler owns SIGTERM.
    manager = tc.IteratorCheckpointManager(iterator, spec["dir"], max_to_keep=3)

    def save_fn():
        # Called once the signal's step is reached, before its exit (code 42).
        runs = handler.total_run_calls
        manager.save(runs)
        manager.wait()  # the input commits before the model
        model_manager.save(checkpoint_number=runs)
        _result(spec, start, True, runs, int(total), None)

    handler = tf.distribute.experimental.PreemptionCheckpointHandler(
        None, model_manager,
        termination_config=tf.distribute.experimental.TerminationConfig(save_fn=save_fn))
    start = handler.total_run_calls
    manager.restore_or_initialize(step=start)

    def train_step():
        element_id, _ = next(iterator)
        total.assign_add(element_id)
        step.assign_add(1)
        log.step(element_id)
        time.sleep(spec["step_sleep"])

    while handler.total_run_calls < spec["steps"]:
        handler.run(train_step)
    manager.save(handler.total_run_calls)
    manager.wait()
    model_manager.save(checkpoint_number=handler.total_run_calls)
    _result(spec, start, False, handler.total_run_calls, int(total), None)


MODES = {"mts": run_mts, "estimator": run_estimator, "manager": run_manager, "pch": run_pch}


def main(spec: dict) -> None:
    # PreemptionCheckpointHandler asks the GCE metadata server whether it runs
    # on GCP; answer "no" at once instead of after a DNS timeout.
    os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:9")
    MODES[spec["mode"]](spec, _Log(spec["log"], spec["ready"]))


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        main(json.load(f))
