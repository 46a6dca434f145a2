"""The out-of-space scenario of test_full_disk.py, run in a child process.

Usage: python -m tests.workers.full_disk_scenario ROOT MECHANISM

MECHANISM "rlimit" caps every file at 1 MiB here (RLIMIT_FSIZE); "tmpfs" means
ROOT is a small tmpfs (mounted by the parent's `unshare` command). For
synchronous and background saves in turn: step 1 commits, step 10 cannot be
written; prints "REPORT " and a JSON report of what followed.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

import tensorflow as tf

import tfdata_checkpoint as tc
from tfdata_checkpoint._src.storage import state_file

root, mechanism = sys.argv[1], sys.argv[2]


def dataset():
    # Elements 0-7 are 4 KiB, later ones 2 MiB: the shuffle buffer's state
    # grows from ~20 KiB at step 1 to ~10 MiB at step 10.
    def size(x):
        return tf.where(x < 8, 1024, 512 * 1024)

    return (tf.data.Dataset.range(1000)
            .map(lambda x: tf.fill([size(x)], tf.cast(x, tf.float32)))
            .shuffle(4, seed=3))


def first_values(iterator, n):
    return [float(next(iterator)[0]) for _ in range(n)]


if mechanism == "rlimit":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

report = {}
for mode in ("sync", "async"):
    directory = os.path.join(root, mode)
    iterator = iter(dataset())
    manager = tc.IteratorCheckpointManager(
        iterator, directory, async_save=mode == "async", num_shards=2, max_to_keep=3)
    next(iterator)
    manager.save(1)
    manager.wait()
    first_values(iterator, 9)
    error = None
    try:
        manager.save(10)
        manager.wait()
    except tf.errors.OpError as e:
        error = [type(e).__name__, e.message]
    names = sorted(os.listdir(directory))
    latest = manager.latest_checkpoint
    state = state_file.read(directory, "checkpoint_input", strict=True)
    tc.ops.describe_iterator_shards(latest, verify=True)
    restored = iter(dataset())
    tc.IteratorCheckpointManager(restored, directory).restore_or_initialize()
    baseline = iter(dataset())
    first_values(baseline, 1)
    same = first_values(restored, 3) == first_values(baseline, 3)
    # A save that fits still works afterwards (the small state of a fresh iterator), by a new
    # writer once the first one has let go (one live writer per directory and basename).
    manager.close()
    small = iter(dataset())
    next(small)
    later = tc.IteratorCheckpointManager(small, directory, async_save=False, num_shards=2)
    later.save(11)
    report[mode] = {
        "error": error, "names": names, "latest": latest,
        "state_latest": state.model_checkpoint_path, "restored_exactly": same,
        "after": later.latest_checkpoint,
    }
print("REPORT " + json.dumps(report))
