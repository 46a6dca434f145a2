"""One worker of a loopback MultiWorkerMirroredStrategy job, run as a process.

    python mwms_worker.py DIR RECORD STEPS SAVE_STEPS SLEEP_S

`TF_CONFIG` says which worker this is. The documented per-worker pattern: a
plain iterator over this worker's own shard (`make_dataset`), its batch fed to
`strategy.run` (an all-reduce across the workers, so the job really runs in
lockstep), checkpointed by an IteratorCheckpointManager under this task's own
names (`input_worker_<i>.ckpt`, `checkpoint_input_worker_<i>`). Each step
appends `{"step", "ids"}` to RECORD, flushed, then `maybe_save(step + 1)`.
Ends itself after MAX_LIFETIME_S.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from tests.support.mwms_pipeline import NUM_WORKERS, make_dataset
from tests.support.subprocesses import exit_after

MAX_LIFETIME_S = 240


def task_names(task_id: int) -> tuple[str, str]:
    """(checkpoint_name, latest_filename) of a worker: TF's per-task naming."""
    task = f"input_worker_{task_id}"
    return f"{task}.ckpt", f"checkpoint_{task}"


def newest_committed(directory: str, task_id: int) -> int | None:
    checkpoint_name, _ = task_names(task_id)
    if not os.path.isdir(directory):
        return None
    steps = [int(name[len(checkpoint_name) + 1 : -len(".index")]) for name in os.listdir(directory)
             if name.startswith(checkpoint_name + "-") and name.endswith(".index")]
    return max(steps, default=None)


def main(directory: str, record: str, steps: int, save_steps: int, sleep_s: float) -> None:
    import tfdata_checkpoint as tc

    task_id = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=60))
    iterator = iter(make_dataset(task_id))
    checkpoint_name, latest_filename = task_names(task_id)
    manager = tc.IteratorCheckpointManager(iterator, directory, save_steps=save_steps,
                                           checkpoint_name=checkpoint_name,
                                           latest_filename=latest_filename)
    # Every worker restarts at the same step, the newest all of them committed,
    # as they would at the model checkpoint's step: the all-reduces must pair up.
    newest = [newest_committed(directory, task) for task in range(NUM_WORKERS)]
    common = None if None in newest else min(newest)
    restored = None if common is None else manager.restore_or_initialize(step=common)
    start = 0 if restored is None else int(restored.rsplit("-", 1)[1])

    @tf.function
    def train_step(batch):
        def replica_fn(x):
            return tf.distribute.get_replica_context().all_reduce("sum", tf.reduce_sum(x))
        return strategy.run(replica_fn, args=(batch,))

    with open(record, "a") as out:
        for step in range(start, steps):
            batch = next(iterator)
            train_step(batch)
            out.write(json.dumps({"step": step, "ids": batch.numpy().tolist()}) + "\n")
            out.flush()
            manager.maybe_save(step + 1)
            time.sleep(sleep_s)
    manager.wait()


if __name__ == "__main__":
    exit_after(MAX_LIFETIME_S)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
