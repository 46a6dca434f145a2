"""The training process test_hook_crash.py SIGKILLs mid-write.

Usage: python -m tests.workers.hook_crash_training DIRECTORY

Trains with CheckpointInputPipelineHook on MonitoredTrainingSession, an input
checkpoint into DIRECTORY every step, until it is killed.
"""

from __future__ import annotations

import sys

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_crash_pipeline import make_dataset

directory = sys.argv[1]
with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    element_id, _ = tf.compat.v1.data.make_one_shot_iterator(make_dataset()).get_next()
    train_op = global_step.assign_add(1)
    hook = tc.CheckpointInputPipelineHook(
        checkpoint_dir=directory, save_steps=1, max_to_keep=3, num_shards=2)
    with tf.compat.v1.train.MonitoredTrainingSession(
            hooks=[hook], save_summaries_steps=None, save_summaries_secs=None,
            log_step_count_steps=None) as session:
        while True:
            session.run([element_id, train_op])
