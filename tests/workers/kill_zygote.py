"""Runs SIGKILL trials for test_kill_trials.py; not a test module.

Usage: python -m tests.workers.kill_zygote TRIALS_JSON PARALLEL

Imports TensorFlow once, then for each trial forks a child that trains and
saves checkpoints back to back (a save per step), waits until the child has
committed its first checkpoint, sleeps the trial's delay and SIGKILLs it.
Forking after the import saves the few seconds each fresh process would need
to import TensorFlow; the zygote itself never runs a TensorFlow op, so the
children start their runtime afresh (OPENBLAS_NUM_THREADS=1 keeps the zygote
single-threaded, as fork wants). Prints one JSON line per trial.

Trial modes: "sync" and "async" (IteratorCheckpointManager, synchronous or
background writes), "hook" (CheckpointInputPipelineHook with two iterators
on MonitoredTrainingSession, background writes).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import sys
import time

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support import kill_pipeline
from tests.support.subprocesses import run_trials_in_batches

READY = b"R"
# Back-to-back saves make the "waiting for the previous write" warning fire
# at every step.
logging.getLogger("tfdata_checkpoint").setLevel(logging.ERROR)


def _run_manager(directory: str, asynchronous: bool, ready_fd: int) -> None:
    iterator = iter(kill_pipeline.make_dataset(0))
    manager = tc.IteratorCheckpointManager(
        iterator, directory, async_save=asynchronous, max_to_keep=3, num_shards=2
    )
    step = 0
    while True:
        next(iterator)
        step += 1
        manager.save(step)
        if step == 1:
            manager.wait()
            os.write(ready_fd, READY)


def _run_hook(directory: str, ready_fd: int) -> None:
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        elements = [
            tf.compat.v1.data.make_one_shot_iterator(kill_pipeline.make_dataset(i)).get_next()
            for i in range(2)
        ]
        train_op = global_step.assign_add(1)
        hook = tc.CheckpointInputPipelineHook(
            checkpoint_dir=directory, save_steps=1, max_to_keep=3, num_shards=2
        )
        with tf.compat.v1.train.MonitoredTrainingSession(
            hooks=[hook], save_summaries_steps=None, save_summaries_secs=None,
            log_step_count_steps=None,
        ) as session:
            step = 0
            while True:
                session.run([elements, train_op])
                step += 1
                # The save of step 2 waited for the write of step 1: committed.
                if step == 2:
                    os.write(ready_fd, READY)


def _child(trial: dict, ready_fd: int) -> None:
    try:
        if trial["mode"] == "hook":
            _run_hook(trial["dir"], ready_fd)
        else:
            _run_manager(trial["dir"], trial["mode"] == "async", ready_fd)
    except BaseException as error:  # noqa: BLE001 - reported through the exit code
        sys.stderr.write(f"trial {trial['id']}: {type(error).__name__}: {error}\n")
        os._exit(3)
    os._exit(4)  # The loops never end: something is wrong.


def _start(trial: dict) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(trial, write_fd)
    os.close(write_fd)
    return pid, read_fd


def _kill_batch(batch: list[dict]) -> None:
    """Starts the batch's trials, then SIGKILLs each its delay after its first commit."""
    running = {}
    for trial in batch:
        pid, read_fd = _start(trial)
        running[read_fd] = (trial, pid)
    kill_at = []
    deadline = time.monotonic() + 120
    waiting = dict(running)
    while waiting:
        ready, _, _ = select.select(list(waiting), [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            for trial, pid in waiting.values():
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                print(json.dumps({"id": trial["id"], "error": "no commit in 120 s"}), flush=True)
            break
        for fd in ready:
            trial, pid = waiting.pop(fd)
            if os.read(fd, 1) != READY:
                _, status = os.waitpid(pid, 0)
                print(json.dumps({"id": trial["id"], "error": f"child exited ({status})"}),
                      flush=True)
                continue
            kill_at.append((time.monotonic() + trial["delay"], trial, pid))
    for when, trial, pid in sorted(kill_at, key=lambda k: k[0]):
        time.sleep(max(0.0, when - time.monotonic()))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        print(json.dumps({"id": trial["id"], "killed": killed, "status": status}), flush=True)
    for fd in running:
        os.close(fd)


if __name__ == "__main__":
    run_trials_in_batches(_kill_batch)
