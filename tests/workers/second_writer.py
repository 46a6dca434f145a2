"""The second writer of test_concurrent_writers.py, while the first holds the lock.

Usage: python -m tests.workers.second_writer DIRECTORY

A manager, then a hook, on the same directory and basename as the first
writer; then the lock of another basename in the same directory. Prints what
each got as JSON on the last line.
"""

from __future__ import annotations

import json
import sys

import tensorflow as tf

import tfdata_checkpoint as tc
from tfdata_checkpoint._src.storage import writer_lock

directory = sys.argv[1]
results = {}
it = iter(tf.data.Dataset.range(10**6).shuffle(32, seed=2))
next(it)
manager = tc.IteratorCheckpointManager(it, directory, async_save=True)
try:
    manager.save(1000)
    manager.wait()
    results["manager"] = "saved"
except tf.errors.OpError as e:
    results["manager"] = [type(e).__name__, e.message]
with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    x = tf.compat.v1.data.make_one_shot_iterator(tf.data.Dataset.range(10)).get_next()
    train_op = step.assign_add(1)
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=1)
    try:
        with tf.compat.v1.train.MonitoredTrainingSession(
                hooks=[hook], save_summaries_steps=None, save_summaries_secs=None,
                log_step_count_steps=None) as session:
            session.run([x, train_op])
        results["hook"] = "trained"
    except tf.errors.OpError as e:
        results["hook"] = [type(e).__name__, e.message]
# A worker of its own basename in the same directory is not blocked.
writer_lock.WriterLock(directory, "input_worker_1.ckpt").acquire()
results["other basename"] = "locked"
print(json.dumps(results))
