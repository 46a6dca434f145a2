"""Restores test_writer_exclusive.py's train and eval iterators in a fresh process.

Usage: python -m tests.workers.restore_train_and_eval DIRECTORY

Prints the next 40 elements of each as JSON: [train, eval].
"""

from __future__ import annotations

import json
import sys

import tfdata_checkpoint as tc
from tests.support.hardening_pipelines import eval_data, train_data

directory = sys.argv[1]
train = iter(train_data())
evaluation = iter(eval_data())
tc.IteratorCheckpointManager(train, directory).restore_or_initialize()
tc.IteratorCheckpointManager(evaluation, directory, checkpoint_name="eval.ckpt").restore_or_initialize()
print(json.dumps([[int(next(train)) for _ in range(40)], [int(next(evaluation)) for _ in range(40)]]))
