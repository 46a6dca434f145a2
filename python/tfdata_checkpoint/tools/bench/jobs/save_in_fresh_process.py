"""Saves of one filled iterator in a new process: capture stalls and memory growth, then files.

Usage: python -m tfdata_checkpoint.tools.bench.jobs.save_in_fresh_process
           SCENARIO_JSON DIRECTORY K NEXT

In this order, on one iterator whose buffer is full:
1. `first`: `save_iterator(..., asynchronous=True, incremental_key=KEY)` into
   DIRECTORY/incremental/ckpt-1: the first save of the process (full: there is
   no base yet), the first to allocate anything for saving.
2. K elements consumed.
3. `incremental`: the same into DIRECTORY/incremental/ckpt-2 (references what
   ckpt-1 holds).
4. `full`: a synchronous full save (no key, fsync) of that same state into
   DIRECTORY/full/ckpt.
5. `tf`: `tf.train.Checkpoint(iterator=...).write` of it into DIRECTORY/tf/ckpt.
For each: `stall` (until the call returned), `commit` (until committed),
`growth` (peak resident set above its start, through the commit). Then the
NEXT elements after that state, for the restores of those checkpoints.

Prints {"fill_seconds", "first", "incremental", "full", "tf": {...},
"incremental_description": own/referenced bytes of ckpt-2, "prefixes": {...},
"next": fingerprints}.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> None:
    scenario_json, directory, k, count = argv
    import tensorflow as tf

    import tfdata_checkpoint as tc
    from tfdata_checkpoint._src.iterator_state import (
        describe_checkpoint,
        release_incremental_base,
    )
    from tfdata_checkpoint.tools.bench.memory import peak_memory_growth
    from tfdata_checkpoint.tools.bench.scenario import Scenario, filled_iterator, fingerprint

    scenario = Scenario(**json.loads(scenario_json))
    prefixes = {
        "first": os.path.join(directory, "incremental", "ckpt-1"),
        "incremental": os.path.join(directory, "incremental", "ckpt-2"),
        "full": os.path.join(directory, "full", "ckpt"),
        "tf": os.path.join(directory, "tf", "ckpt"),
    }
    for prefix in prefixes.values():
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
    key = os.path.join(directory, "incremental", "ckpt")
    t0 = time.perf_counter()
    it = filled_iterator(scenario)
    fill_seconds = time.perf_counter() - t0
    out: dict = {"fill_seconds": fill_seconds, "prefixes": prefixes}

    def measured(name: str, start, finish=None) -> None:
        figures: dict = {}

        def whole() -> None:
            t0 = time.perf_counter()
            start()
            figures["stall"] = time.perf_counter() - t0
            if finish is not None:
                finish()
            figures["commit"] = time.perf_counter() - t0

        os.sync()  # the previous save's dirty pages are not this one's cost
        figures["growth"] = peak_memory_growth(whole)
        out[name] = figures

    incremental_dir = os.path.dirname(prefixes["first"])
    try:
        measured("first",
                 lambda: tc.save_iterator(it, prefixes["first"], asynchronous=True,
                                          incremental_key=key),
                 lambda: tc.wait_for_pending_saves(incremental_dir))
        for _ in range(int(k)):
            next(it)
        measured("incremental",
                 lambda: tc.save_iterator(it, prefixes["incremental"], asynchronous=True,
                                          incremental_key=key),
                 lambda: tc.wait_for_pending_saves(incremental_dir))
        measured("full", lambda: tc.save_iterator(it, prefixes["full"]))
        measured("tf", lambda: tf.train.Checkpoint(iterator=it).write(prefixes["tf"]))
    finally:
        release_incremental_base(key)
    info = describe_checkpoint(prefixes["incremental"])
    out["incremental_description"] = {
        "own_bytes": info["total_bytes"],
        "referenced_bytes": info.get("referenced_bytes"),
        "referenced_files": info.get("referenced_files"),
        "format_version": info["format_version"],
        "num_entries": info["num_entries"],
    }
    out["full_description"] = {
        "own_bytes": describe_checkpoint(prefixes["full"])["total_bytes"],
        "index_bytes": os.path.getsize(prefixes["full"] + ".index"),
    }
    out["next"] = [fingerprint(next(it)) for _ in range(int(count))]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
