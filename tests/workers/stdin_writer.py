"""A writer of test_writer_exclusive.py that saves when told.

Usage: python -m tests.workers.stdin_writer DIRECTORY

Prints "ready", then for each line "save <step>" on stdin saves that step
synchronously into DIRECTORY and prints "ok" or [error type, message] as JSON.
"""

from __future__ import annotations

import json
import sys

import tensorflow as tf

import tfdata_checkpoint as tc

it = iter(tf.data.Dataset.range(10**6).shuffle(32, seed=1))
manager = tc.IteratorCheckpointManager(it, sys.argv[1], async_save=False, max_to_keep=None)
print("ready", flush=True)
for line in sys.stdin:
    next(it)
    try:
        manager.save(int(line.split()[1]))
        print(json.dumps("ok"), flush=True)
    except tf.errors.OpError as e:
        print(json.dumps([type(e).__name__, e.message]), flush=True)
