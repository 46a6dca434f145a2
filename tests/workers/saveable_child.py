"""A TF1 graph job saving its input state with the model's own Saver (child process).

    python saveable_child.py CONFIG_JSON

CONFIG keys: dir, steps (run until this global step), save_every, route
("session": MonitoredTrainingSession, "estimator": tf.estimator on TF 2.15,
"export": a Saver that also exports the meta graph, "import": a Saver rebuilt
by import_meta_graph from the newest checkpoint's meta graph), max_to_keep,
kill_at (SIGKILL itself right after this global step, before any final save),
incremental (passed on if given), kill_in_save_at ("export"/"import": at the save of
this step write only our files, then SIGKILL itself before TF's index is written),
"read" route: restore the checkpoint `prefix` with a Saver from its meta graph and
read `steps` elements, saving nothing.

Prints one JSON line: the global step it started from and the element ids it
got, one per step.
"""

from __future__ import annotations

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.trackable_pipeline import make_dataset

v1 = tf.compat.v1


def _build(config):
    global_step = v1.train.get_or_create_global_step()
    # One-shot: created by the first op using it, the restore included. (An initializable
    # iterator's initializer runs after the Saver's restore in a MonitoredTrainingSession,
    # and would start the stream over; the same holds for TF's own saveable.)
    iterator = v1.data.make_one_shot_iterator(make_dataset())
    extra = {"incremental": config["incremental"]} if "incremental" in config else {}
    saveable = tc.make_saveable_from_iterator(iterator, config.get("policy"), **extra)
    v1.add_to_collection(v1.GraphKeys.SAVEABLE_OBJECTS, saveable)
    element_id = iterator.get_next()[0]
    with tf.control_dependencies([element_id]):
        train = v1.assign_add(global_step, 1)
    v1.add_to_collection("train", train)
    v1.add_to_collection("element", element_id)
    return global_step, element_id, train


def _session(config):
    _, element_id, train = _build(config)
    scaffold = v1.train.Scaffold(saver=v1.train.Saver(
        sharded=True, max_to_keep=config.get("max_to_keep", 2)))
    elements = []
    with v1.train.MonitoredTrainingSession(
            checkpoint_dir=config["dir"], save_checkpoint_steps=config["save_every"],
            save_summaries_steps=None, save_summaries_secs=None, log_step_count_steps=None,
            scaffold=scaffold) as sess:
        start = None
        while True:
            element, step = sess.run([element_id, train])
            if start is None:
                start = int(step) - 1
            elements.append(int(element))
            if step == config.get("kill_at"):
                os.kill(os.getpid(), signal.SIGKILL)
            if step >= config["steps"]:
                break
    return start, elements


def _estimator(config):
    def input_fn():
        iterator = v1.data.make_one_shot_iterator(make_dataset())
        v1.add_to_collection(v1.GraphKeys.SAVEABLE_OBJECTS,
                             tc.make_saveable_from_iterator(iterator))
        return iterator.get_next()

    record = os.path.join(config["dir"], "elements.log")

    def model_fn(features, labels, mode):
        global_step = v1.train.get_or_create_global_step()
        def append(element, step):
            with open(record, "a") as f:
                f.write(f"{int(step)} {int(element)}\n")
            return 0

        log = tf.py_function(append, [features, global_step], tf.int64)
        with tf.control_dependencies([log]):
            train = v1.assign_add(global_step, 1)
        return tf.estimator.EstimatorSpec(mode, loss=tf.constant(0.0), train_op=train)

    def id_input_fn():
        ids, _ = input_fn()
        return ids, None

    run_config = tf.estimator.RunConfig(
        model_dir=config["dir"], save_checkpoints_steps=config["save_every"],
        keep_checkpoint_max=config.get("max_to_keep", 2), log_step_count_steps=None,
        save_summary_steps=None)
    estimator = tf.estimator.Estimator(model_fn, config=run_config)
    hooks = []
    if "kill_at" in config:
        class Kill(v1.train.SessionRunHook):
            def after_run(self, run_context, run_values):
                if run_context.session.run(v1.train.get_global_step()) >= config["kill_at"]:
                    os.kill(os.getpid(), signal.SIGKILL)
        hooks.append(Kill())
    os.makedirs(config["dir"], exist_ok=True)
    before = _read_lines(record)
    estimator.train(id_input_fn, max_steps=config["steps"], hooks=hooks)
    lines = _read_lines(record)[len(before):]
    pairs = [tuple(int(v) for v in line.split()) for line in lines]
    return pairs[0][0], [element for _, element in pairs]


def _read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line for line in f.read().split("\n") if line]


def _export_or_import(config):
    directory = config["dir"]
    latest = tf.train.latest_checkpoint(directory)
    if config["route"] == "import":
        saver = v1.train.import_meta_graph(latest + ".meta")
        train = v1.get_collection("train")[0]
        element_id = v1.get_collection("element")[0]
        global_step = v1.train.get_global_step()
    else:
        global_step, element_id, train = _build(config)
        saver = v1.train.Saver(max_to_keep=config.get("max_to_keep", 2))
    elements = []
    with v1.Session() as sess:
        if latest:
            saver.restore(sess, latest)
        else:
            sess.run(v1.global_variables_initializer())
        start = int(sess.run(global_step))
        for step in range(start, config["steps"]):
            element, _ = sess.run([element_id, train])
            elements.append(int(element))
            if (step + 1) % config["save_every"] == 0:
                prefix = os.path.join(directory, f"model.ckpt-{step + 1}")
                if step + 1 == config.get("kill_in_save_at"):
                    _write_ours_then_die(sess, saver, prefix)
                saver.save(sess, os.path.join(directory, "model.ckpt"), global_step=step + 1)
    return start, elements


def _write_ours_then_die(sess, saver, prefix):
    """A save killed after our SaveIterator ops, before TF wrote its bundle."""
    graph = sess.graph
    ours = [op.outputs[0] for op in graph.get_operations() if op.type == "SaveIterator"]
    sess.run(ours, {saver.saver_def.filename_tensor_name: prefix})
    os.kill(os.getpid(), signal.SIGKILL)


def _read(config):
    saver = v1.train.import_meta_graph(config["prefix"] + ".meta")
    element_id = v1.get_collection("element")[0]
    global_step = v1.train.get_global_step()
    with v1.Session() as sess:
        saver.restore(sess, config["prefix"])
        start = int(sess.run(global_step))
        elements = [int(sess.run(element_id)) for _ in range(config["steps"])]
    return start, elements


def main() -> None:
    config = json.loads(sys.argv[1])
    v1.disable_eager_execution()
    route = config.get("route", "session")
    if route == "session":
        start, elements = _session(config)
    elif route == "estimator":
        start, elements = _estimator(config)
    elif route == "read":
        start, elements = _read(config)
    else:
        start, elements = _export_or_import(config)
    print(json.dumps({"start": start, "elements": elements}), flush=True)


if __name__ == "__main__":
    main()
