"""A TF2 training job checkpointing with tf.train.Checkpoint + TrackableIterator (child process).

    python -m tests.workers.trackable_child CONFIG_JSON

CONFIG keys: dir, steps (run until this step), save_every, max_to_keep,
iterators (how many), mode ("manager", "write_fn": ckpt.write inside a
tf.function, "async": CheckpointManager with enable_async), restore_from (a prefix to
read instead of restore_or_initialize), raw (bool: put the
raw iterators into the checkpoint instead), kill_at (step of a save killed
with SIGKILL after our files committed, before TF's index), kill_during (step
of a save killed by a watcher thread as soon as our first file appears).

Restores what the directory holds (restore_or_initialize), trains, and prints
one JSON line: the step it started from, the element ids each iterator gave,
per step, and the model variable after the restore.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.trackable_pipeline import make_dataset
from tfdata_checkpoint._src import trackable_iterator


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_after_our_commit(step_holder: dict, kill_at: int) -> None:
    original = trackable_iterator.TrackableIterator._write_state

    def write_then_die(self, prefix):
        result = original(self, prefix)
        if step_holder["step"] == kill_at:
            _kill_self()  # our files committed, TF's index not written
        return result

    trackable_iterator.TrackableIterator._write_state = write_then_die


def _kill_while_writing(directory: str, step_holder: dict, kill_at: int) -> None:
    def watch() -> None:
        while True:
            if step_holder["step"] == kill_at and step_holder.get("saving"):
                names = os.listdir(directory)
                if any(".tfdc-" in n and ".data-" in n and n not in step_holder["before"]
                       for n in names):
                    _kill_self()

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    config = json.loads(sys.argv[1])
    directory = config["dir"]
    steps = config["steps"]
    save_every = config.get("save_every", 5)
    count = config.get("iterators", 1)
    mode = config.get("mode", "manager")
    iterators = [iter(make_dataset(i)) for i in range(count)]
    wrapped = iterators if config.get("raw") else [tc.TrackableIterator(it) for it in iterators]
    step_var = tf.Variable(0, dtype=tf.int64)
    objects = {"step": step_var}
    objects.update({f"iterator{i}": w for i, w in enumerate(wrapped)})
    ckpt = tf.train.Checkpoint(**objects)
    manager = tf.train.CheckpointManager(
        ckpt, directory, max_to_keep=config.get("max_to_keep", 2),
        step_counter=step_var, checkpoint_interval=config.get("checkpoint_interval"),
    )
    if "restore_from" in config:
        ckpt.read(config["restore_from"]).assert_consumed()
        restored = config["restore_from"]
    else:
        restored = manager.restore_or_initialize()
    start = int(step_var.numpy())
    holder = {"step": None}
    if "kill_at" in config:
        _kill_after_our_commit(holder, config["kill_at"])
    if "kill_during" in config:
        os.makedirs(directory, exist_ok=True)
        _kill_while_writing(directory, holder, config["kill_during"])
    options = tf.train.CheckpointOptions(enable_async=True) if mode == "async" else None

    @tf.function
    def write_in_function(prefix):
        return ckpt.write(prefix)

    elements = []
    for step in range(start, steps):
        elements.append([int(next(it)[0].numpy()) for it in iterators])
        step_var.assign(step + 1)
        if (step + 1) % save_every == 0:
            holder["step"] = step + 1
            holder["before"] = set(os.listdir(directory)) if os.path.isdir(directory) else set()
            holder["saving"] = True
            if mode == "write_fn":
                os.makedirs(directory, exist_ok=True)
                prefix = f"{directory}/fn-{step + 1}"
                write_in_function(tf.constant(prefix))
            elif "checkpoint_interval" in config:
                manager.save(checkpoint_number=step + 1)
            else:
                manager.save(checkpoint_number=step + 1, options=options)
            holder["saving"] = False
    if mode == "async":
        ckpt.sync()
    print(json.dumps({"restored": restored, "start": start, "elements": elements}), flush=True)


if __name__ == "__main__":
    main()
