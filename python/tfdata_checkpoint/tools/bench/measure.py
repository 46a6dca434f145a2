"""Checkpoint cost on large buffers, side by side with TensorFlow's own path, in one run.

Each scenario fills one iterator's buffer with incompressible float32 data, then, `repeats`
times over, measures TensorFlow's `tf.train.Checkpoint` and this library on that same iterator,
and the raw speed of the same disk (the same number of bytes written with and without fsync).
Reports use medians over the repeats and ratios against TensorFlow.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Callable

import numpy as np

from tfdata_checkpoint.tools.bench.memory import peak_memory_growth
from tfdata_checkpoint.tools.bench.result import Result
from tfdata_checkpoint.tools.bench.scenario import Scenario, filled_iterator, make_dataset
from tfdata_checkpoint.tools.progress import progress

MIB = 1 << 20


def _dir_bytes(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))


def _clear(directory: str) -> None:
    for f in os.listdir(directory):
        os.remove(os.path.join(directory, f))


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _settle() -> None:
    """Writes back all dirty pages, so that a timed write does not pay for the previous one."""
    os.sync()


def raw_disk_write(directory: str, nbytes: int, fsync: bool) -> float:
    """Seconds to write `nbytes` in 64 MiB blocks (then fsync if asked): the disk's limit."""
    block = np.random.default_rng(0).integers(0, 255, size=64 * MIB, dtype=np.uint8).tobytes()
    path = os.path.join(directory, "raw.bin")
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        left = nbytes
        while left > 0:
            left -= os.write(fd, block[: min(left, len(block))])
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    os.remove(path)
    return seconds


def warm_up_memory(directory: str, nbytes: int) -> float:
    """Touches `nbytes` of fresh memory twice and writes and deletes a file of that size.

    On a virtual machine, memory the guest has never touched is backed by the host on first
    touch, which was measured here at up to 7 s per GiB (against 0.5 s per GiB once backed).
    Whichever side of a comparison first needs new memory (TF's save allocates a compressed copy
    of the buffer, any write needs page cache) would pay for it. Returns the seconds spent.
    """
    t0 = time.perf_counter()
    for _ in range(2):
        block = np.ones(nbytes, dtype=np.uint8)
        del block
    raw_disk_write(directory, nbytes, fsync=False)
    _settle()
    return time.perf_counter() - t0


def fresh_process_restore(scenario: Scenario, which: str, prefix: str) -> dict:
    """Restores in a new process, as a restarted job does; returns memory growth and next id."""
    out = subprocess.run(
        [sys.executable, "-m", "tfdata_checkpoint.tools.bench.jobs.restore_in_fresh_process",
         json.dumps(asdict(scenario)), which, prefix],
        capture_output=True, text=True, check=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_scenario(scenario: Scenario, repeats: int, directory: str) -> Result:
    """Measures TF's path and ours on the same filled iterator, `repeats` times."""
    import tensorflow as tf

    import tfdata_checkpoint as tc

    result = Result(scenario=asdict(scenario), repeats=repeats)
    result.scenario["buffer_bytes"] = scenario.buffer_bytes
    runs: dict[str, list[float]] = {}
    memory: dict[str, list[int]] = {}

    def add(name: str, seconds: float) -> None:
        runs.setdefault(name, []).append(seconds)

    def add_memory(name: str, nbytes: int) -> None:
        memory.setdefault(name, []).append(nbytes)

    tf_dir = os.path.join(directory, "tf")
    our_dir = os.path.join(directory, "ours")
    os.makedirs(tf_dir, exist_ok=True)
    os.makedirs(our_dir, exist_ok=True)
    it = filled_iterator(scenario)
    tf_prefix = os.path.join(tf_dir, "ckpt")
    ours = os.path.join(our_dir, "ckpt")

    def tf_save() -> None:
        tf.train.Checkpoint(iterator=it).write(tf_prefix)

    def ours_save(fsync: bool) -> None:
        tc.save_iterator(it, ours, fsync=fsync)

    def restore_and_check(which: str, expected_id: int) -> tuple[float, bool]:
        restored = iter(make_dataset(scenario))
        t0 = time.perf_counter()
        if which == "tf":
            tf.train.Checkpoint(iterator=restored).read(tf_prefix)
        else:
            tc.restore_iterator(restored, ours)
        seconds = time.perf_counter() - t0
        return seconds, int(next(restored)[0]) == expected_id

    ok = {"ours": 0, "tf": 0}
    add("warm_up", warm_up_memory(directory, 2 * scenario.buffer_bytes))

    def timed_tf_save() -> None:
        _settle()
        t0 = time.perf_counter()
        add_memory("tf_save", peak_memory_growth(tf_save))
        add("tf_save", time.perf_counter() - t0)
        result.bytes_on_disk["tf"] = _dir_bytes(tf_dir)
        # Freed page cache for whoever writes next: the second writer must not
        # pay for fresh memory the first one's files took.
        _clear(tf_dir)

    def timed_ours_save() -> None:
        _settle()
        t0 = time.perf_counter()
        add_memory("ours_save", peak_memory_growth(lambda: ours_save(fsync=False)))
        add("ours_save_nofsync", time.perf_counter() - t0)
        _clear(our_dir)
        _settle()
        add("ours_save_fsync", _timed(lambda: ours_save(fsync=True)))
        result.bytes_on_disk["ours"] = _dir_bytes(our_dir)
        _clear(our_dir)

    for r in progress(range(repeats), desc=scenario.name, unit="repeat", leave=False):
        nbytes = scenario.buffer_bytes
        _settle()
        add("disk_write_nofsync", raw_disk_write(directory, nbytes, fsync=False))
        _settle()
        add("disk_write_fsync", raw_disk_write(directory, nbytes, fsync=True))

        # Alternate who goes first: neither side always inherits the other's page cache.
        for save in (timed_tf_save, timed_ours_save) if r % 2 == 0 else (timed_ours_save,
                                                                           timed_tf_save):
            save()
        _settle()
        t0 = time.perf_counter()
        tc.save_iterator(it, ours, fsync=True, asynchronous=True)
        add("ours_async_stall", time.perf_counter() - t0)
        tc.wait_for_pending_saves(our_dir)
        add("ours_async_commit_fsync", time.perf_counter() - t0)
        tf_save()  # untimed: TF's checkpoint of the same state, to restore below

        # Both checkpoints hold the state from before this element.
        expected_id = int(next(it)[0])
        for which in ("tf", "ours") if r % 2 == 0 else ("ours", "tf"):
            seconds, exact = restore_and_check(which, expected_id)
            add(f"{which}_restore", seconds)
            ok[which] += exact

        if r == 0:
            for which, prefix in (("tf", tf_prefix), ("ours", ours)):
                fresh = fresh_process_restore(scenario, which, prefix)
                add_memory(f"{which}_restore_fresh_process", fresh["growth"])
                result.checks[f"{which}_fresh_process_restores_exactly"] = (
                    fresh["next_id"] == expected_id)
        _clear(tf_dir)
        _clear(our_dir)
    result.checks["ours_restores_exactly"] = f"{ok['ours']}/{repeats}"
    result.checks["tf_restores_exactly"] = f"{ok['tf']}/{repeats}"
    result.seconds = runs
    result.memory_growth = {k: int(statistics.median(v)) for k, v in memory.items()}
    return result


def run(scenarios: list[Scenario], repeats: int, directory: str) -> list[Result]:
    """Runs every scenario in `directory` (on the disk to be measured)."""
    results = []
    for scenario in progress(scenarios, desc="scenarios", unit="scenario"):
        results.append(run_scenario(scenario, repeats, directory))
    return results


