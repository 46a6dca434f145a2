"""Restores one checkpoint in a new process, timed, or reads its bytes into fresh memory.

Usage: python -m tfdata_checkpoint.tools.bench.jobs.timed_restore
           SCENARIO_JSON {ours,tf,read} PREFIX NEXT [--estimator-input] [FILE ...]

`ours`: `restore_iterator` into a fresh iterator of the scenario's dataset (of
its Estimator form with --estimator-input, for a hook's checkpoint); `tf`:
`tf.train.Checkpoint(iterator=...).read`; `read`: no restore, the FILEs (the
checkpoint's index and every shard it reads) read into one freshly allocated
buffer, the floor a restore is compared with. Everything runs in this new
process, so every figure pays for touching fresh memory, as a restarted job
does.

Prints {"seconds": the restore (or the read), "first_next_seconds": the first
next() after it, "growth": peak resident-set growth of the restore in bytes,
"bytes": bytes read (read only), "next": fingerprints of the NEXT elements after
the restore}.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _read_into_fresh_memory(paths: list[str]) -> int:
    import numpy as np

    sizes = [os.path.getsize(p) for p in paths]
    # np.empty maps fresh pages: the reads below touch them first, as a
    # restore's allocations are touched first by its reads.
    buffer = np.empty(sum(sizes), dtype=np.uint8)
    view = memoryview(buffer)
    offset = 0
    chunk = 32 << 20
    for path, size in zip(paths, sizes):
        with open(path, "rb", buffering=0) as f:
            end = offset + size
            while offset < end:
                got = f.readinto(view[offset:min(end, offset + chunk)])
                if not got:
                    raise OSError(f"{path}: short read")
                offset += got
    return offset


def main(argv: list[str]) -> None:
    scenario_json, which, prefix, count, *rest = argv
    estimator_input = "--estimator-input" in rest
    files = [a for a in rest if a != "--estimator-input"]

    from tfdata_checkpoint.tools.bench.memory import peak_memory_growth

    if which == "read":
        result: dict = {}

        def read() -> None:
            result["bytes"] = _read_into_fresh_memory(files)

        t0 = time.perf_counter()
        growth = peak_memory_growth(read)
        print(json.dumps({"seconds": time.perf_counter() - t0, "growth": growth,
                          "bytes": result["bytes"], "first_next_seconds": 0.0, "next": []}))
        return

    import tensorflow as tf

    import tfdata_checkpoint as tc
    from tfdata_checkpoint.tools.bench.scenario import (
        Scenario,
        fingerprint,
        make_dataset,
        make_estimator_dataset,
    )

    scenario = Scenario(**json.loads(scenario_json))
    dataset = make_estimator_dataset(scenario) if estimator_input else make_dataset(scenario)
    it = iter(dataset)
    if which == "ours":
        def restore() -> None:
            tc.restore_iterator(it, prefix)
    elif which == "tf":
        def restore() -> None:
            tf.train.Checkpoint(iterator=it).read(prefix).expect_partial()
    else:
        raise SystemExit(f"unknown restore {which!r}: 'ours', 'tf' or 'read'")
    t0 = time.perf_counter()
    growth = peak_memory_growth(restore)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = next(it)
    first_next = time.perf_counter() - t0
    following = [fingerprint(first)] + [fingerprint(next(it)) for _ in range(int(count) - 1)]
    print(json.dumps({"seconds": seconds, "first_next_seconds": first_next, "growth": growth,
                      "next": following}))


if __name__ == "__main__":
    main(sys.argv[1:])
