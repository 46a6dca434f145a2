"""Runs one phase of a save or restore when told, so that a profiler sees only that phase.

Usage: python -m tfdata_checkpoint.tools.bench.jobs.profiled_phase
           SCENARIO_JSON PHASE DIRECTORY [PREFIX]

PHASE: `capture` (an asynchronous full save, until it returns: the stall),
`save` (a synchronous full save with fsync), `incremental_save` (a synchronous
incremental save after 8 new elements, its base saved before READY),
`tf_save` (`tf.train.Checkpoint.write`), `restore` (`restore_iterator` of
PREFIX into a fresh iterator), `tf_restore` (TF's `Checkpoint.read` of PREFIX).
Everything else (filling the buffer, building the iterator, earlier saves) is
done first; then the job prints `READY <pid>`, waits for a line on stdin, runs
the phase, and prints at once {"seconds": ..., "thread_id": native id of the
thread that ran it}; then it waits for its background writes and exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def main(argv: list[str]) -> None:
    scenario_json, phase, directory, *rest = argv
    import tensorflow as tf

    import tfdata_checkpoint as tc
    from tfdata_checkpoint._src.iterator_state import release_incremental_base
    from tfdata_checkpoint.tools.bench.scenario import Scenario, filled_iterator, make_dataset

    scenario = Scenario(**json.loads(scenario_json))
    prefix = os.path.join(directory, "ckpt")
    key = prefix
    if phase in ("restore", "tf_restore"):
        (source,) = rest
        it = iter(make_dataset(scenario))
        actions = {
            "restore": lambda: tc.restore_iterator(it, source),
            "tf_restore": lambda: tf.train.Checkpoint(iterator=it).read(source).expect_partial(),
        }
    else:
        it = filled_iterator(scenario)
        if phase == "incremental_save":
            tc.save_iterator(it, prefix + "-1", incremental_key=key)
            for _ in range(8):
                next(it)
        actions = {
            "capture": lambda: tc.save_iterator(it, prefix, asynchronous=True),
            "save": lambda: tc.save_iterator(it, prefix),
            "incremental_save": lambda: tc.save_iterator(it, prefix + "-2", incremental_key=key),
            "tf_save": lambda: tf.train.Checkpoint(iterator=it).write(prefix),
        }
    if phase not in actions:
        raise SystemExit(f"unknown phase {phase!r}: one of {sorted(actions)}")
    os.sync()
    print(f"READY {os.getpid()}", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    actions[phase]()
    seconds = time.perf_counter() - t0
    # At once, so that the profiler stops here (a capture's background write goes on).
    print(json.dumps({"seconds": seconds, "thread_id": threading.get_native_id()}), flush=True)
    tc.wait_for_pending_saves(directory)
    release_incremental_base(key)


if __name__ == "__main__":
    main(sys.argv[1:])
