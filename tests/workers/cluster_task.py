"""One task of a loopback training cluster (chief, worker or ps), run as a process.

    python -m tests.workers.cluster_task estimator|session MODEL_DIR RECORD_FILE STOP_FILE

`TF_CONFIG` says which task this is. `estimator` runs
`tf.estimator.train_and_evaluate` (TF <= 2.15); `session` runs a
`tf.distribute.Server` and `MonitoredTrainingSession` with
`replica_device_setter` (any TF). Either way, a chief or worker trains with
`CheckpointInputPipelineHook` on its own input pipeline (see
`tests.support.cluster_pipeline`), appends the id of every element it trained
on to RECORD_FILE (one per line, flushed before the step's input checkpoint
can be taken), and stops once STOP_FILE exists. A ps serves until it is killed. Every process ends itself
after MAX_LIFETIME_S, so that none outlives a test that died.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from tests.support.cluster_pipeline import make_dataset

SAVE_STEPS = 10
STEP_SLEEP_S = 0.02  # keeps the global step from racing ahead on 2 shared cores
MAX_LIFETIME_S = 300
OPERATION_TIMEOUT_MS = 60_000
_IDS = "cluster_task_ids"


def session_config(task_type: str, task_id: int) -> tf.compat.v1.ConfigProto:
    # Device filters: a task talks to the ps and itself only, so it neither
    # waits for nor breaks with the other worker. The operation timeout turns
    # a dead peer into an error instead of a hang.
    return tf.compat.v1.ConfigProto(
        device_filters=["/job:ps", f"/job:{task_type}/task:{task_id}"],
        operation_timeout_in_ms=OPERATION_TIMEOUT_MS,
    )


class Recorder(tf.compat.v1.train.SessionRunHook):
    """Appends the id trained on in each step; stops when the stop file exists."""

    def __init__(self, record_file: str, stop_file: str) -> None:
        self._record = open(record_file, "a")  # noqa: SIM115 - open for the process's life
        self._stop_file = stop_file

    def begin(self) -> None:
        self._ids = tf.compat.v1.get_collection(_IDS)[0]

    def before_run(self, run_context):
        return tf.compat.v1.train.SessionRunArgs(self._ids)

    def after_run(self, run_context, run_values):
        # Before the checkpoint hook's after_run (hooks run in list order), so
        # a checkpoint never holds a position beyond what the file shows.
        self._record.write(f"{int(run_values.results)}\n")
        self._record.flush()
        if os.path.exists(self._stop_file):
            run_context.request_stop()
        time.sleep(STEP_SLEEP_S)


def _train_op(ids: tf.Tensor) -> tf.Operation:
    tf.compat.v1.add_to_collection(_IDS, ids)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    return global_step.assign_add(1)


def run_estimator(task_type: str, task_id: int, model_dir: str, hooks_args) -> None:
    import tfdata_checkpoint as tc

    def model_fn(features, labels, mode):
        del labels
        train_op = _train_op(features)
        return tf.estimator.EstimatorSpec(mode, loss=tf.constant(0.0), train_op=train_op)

    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        save_checkpoints_steps=SAVE_STEPS,
        save_summary_steps=None,
        log_step_count_steps=None,
        session_config=session_config(task_type, task_id),
        # Workers would wait 5 s per task id before training.
        experimental_max_worker_delay_secs=0,
    )
    estimator = tf.estimator.Estimator(model_fn, config=config)
    hooks = [Recorder(*hooks_args), tc.CheckpointInputPipelineHook(estimator)]
    train_spec = tf.estimator.TrainSpec(
        input_fn=lambda: make_dataset(task_type, task_id), max_steps=10**9, hooks=hooks
    )
    eval_spec = tf.estimator.EvalSpec(input_fn=lambda: make_dataset("chief", 0), steps=1)
    tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)


def run_session(task_type: str, task_id: int, model_dir: str, hooks_args, cluster) -> None:
    import tfdata_checkpoint as tc

    config = session_config(task_type, task_id)
    server = tf.distribute.Server(
        cluster, job_name=task_type, task_index=task_id, config=config, start=True
    )
    if task_type == "ps":
        server.join()
        return
    with tf.Graph().as_default():
        device = f"/job:{task_type}/task:{task_id}"
        setter = tf.compat.v1.train.replica_device_setter(worker_device=device, cluster=cluster)
        with tf.compat.v1.device(setter):
            iterator = tf.compat.v1.data.make_one_shot_iterator(make_dataset(task_type, task_id))
            train_op = _train_op(iterator.get_next())
        # The prefix input_<task_type>_<task_id> comes from TF_CONFIG.
        hooks = [
            Recorder(*hooks_args),
            tc.CheckpointInputPipelineHook(checkpoint_dir=model_dir, save_steps=SAVE_STEPS),
        ]
        with tf.compat.v1.train.MonitoredTrainingSession(
            master=server.target,
            is_chief=task_type == "chief",
            checkpoint_dir=model_dir,
            save_checkpoint_steps=SAVE_STEPS,
            save_summaries_steps=None,
            save_summaries_secs=None,
            log_step_count_steps=None,
            hooks=hooks,
            config=config,
            max_wait_secs=120,
        ) as session:
            while not session.should_stop():
                session.run(train_op)


def main(argv: list[str]) -> None:
    mode, model_dir, record_file, stop_file = argv[1:5]
    # A watchdog: no task outlives a test run that died without killing it.
    threading.Timer(MAX_LIFETIME_S, lambda: os._exit(3)).start()
    tf_config = json.loads(os.environ["TF_CONFIG"])
    task_type, task_id = tf_config["task"]["type"], int(tf_config["task"]["index"])
    print(f"{task_type} {task_id} pid {os.getpid()} starting", flush=True)
    if mode == "estimator":
        # train_and_evaluate serves a ps task too.
        run_estimator(task_type, task_id, model_dir, (record_file, stop_file))
    else:
        run_session(
            task_type,
            task_id,
            model_dir,
            (record_file, stop_file),
            tf.train.ClusterSpec(tf_config["cluster"]),
        )
    print(f"{task_type} {task_id} done", flush=True)
    os._exit(0)  # not waiting for the watchdog timer


if __name__ == "__main__":
    main(sys.argv)
