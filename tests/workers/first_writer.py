"""The first writer of test_concurrent_writers.py: holds the writer lock until it is killed.

Usage: python -m tests.workers.first_writer DIRECTORY

Saves steps 1, 2, ... into DIRECTORY and prints each step once it is
committed; keeps saving (holding the lock) until it is killed.
"""

from __future__ import annotations

import sys
import time

import tensorflow as tf

import tfdata_checkpoint as tc

it = iter(tf.data.Dataset.range(10**6).shuffle(32, seed=1))
manager = tc.IteratorCheckpointManager(it, sys.argv[1], async_save=False, max_to_keep=None)
step = 0
while True:
    next(it)
    step += 1
    manager.save(step)
    print(step, flush=True)
    time.sleep(0.05)
