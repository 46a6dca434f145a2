"""Checkpoint cost on large buffers, side by side with TensorFlow's own path, in one run.

Every figure is the median over `repeats` runs; ratios are against TensorFlow's
`tf.train.Checkpoint` on the same iterator, and against the raw speed of the same disk
measured in the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from tqdm import tqdm

MIB = 1 << 20


@dataclass
class Scenario:
    """A shuffle buffer of `buffer_mib` MiB in float32 elements of `element_kib` KiB."""

    name: str
    buffer_mib: int
    element_kib: int

    @property
    def element_floats(self) -> int:
        return self.element_kib * 1024 // 4

    @property
    def buffer_elements(self) -> int:
        return max(1, self.buffer_mib * 1024 // self.element_kib)


@dataclass
class Result:
    scenario: dict
    repeats: int
    seconds: dict = field(default_factory=dict)  # figure -> list of runs
    bytes_on_disk: dict = field(default_factory=dict)
    restore_memory_growth: dict = field(default_factory=dict)  # bytes, fresh process
    checks: dict = field(default_factory=dict)

    def median(self, figure: str) -> float:
        return statistics.median(self.seconds[figure])


def make_dataset(scenario: Scenario):
    """Incompressible float32 elements with an id, through a shuffle buffer."""
    import tensorflow as tf

    floats = scenario.element_floats

    def element(i):
        return i, tf.random.stateless_uniform([floats], seed=[i, 1])

    return (
        tf.data.Dataset.range(1 << 40)
        .map(element, num_parallel_calls=2)
        .shuffle(scenario.buffer_elements, seed=5)
    )


def _dir_bytes(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))


def _clear(directory: str) -> None:
    for f in os.listdir(directory):
        os.remove(os.path.join(directory, f))


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def raw_disk_write(directory: str, nbytes: int, fsync: bool) -> float:
    """Seconds to write `nbytes` in 64 MiB blocks (with fsync if asked): the disk's limit."""
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


_FRESH_RESTORE = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    import tfdata_checkpoint as tc
    from tfdata_checkpoint.benchmark import Scenario, make_dataset

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    scenario = Scenario(**json.loads(sys.argv[1]))
    it = iter(make_dataset(scenario))
    before = status("VmRSS")
    if sys.argv[2] == "ours":
        tc.restore_iterator(it, sys.argv[3])
    else:
        tf.train.Checkpoint(iterator=it).read(sys.argv[3]).expect_partial()
    peak = status("VmHWM")
    print(json.dumps({"growth": peak - before, "next_id": int(next(it)[0])}))
    """
)


def fresh_process_restore(scenario: Scenario, which: str, prefix: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _FRESH_RESTORE, json.dumps(asdict(scenario)), which, prefix],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_scenario(scenario: Scenario, repeats: int, directory: str) -> Result:
    """Measures TF's path and ours on the same filled iterator."""
    import tensorflow as tf

    import tfdata_checkpoint as tc

    result = Result(scenario=asdict(scenario), repeats=repeats)
    runs: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        runs.setdefault(name, []).append(seconds)

    it = iter(make_dataset(scenario))
    next(it)  # The shuffle buffer is full from here on.
    nbytes = scenario.buffer_elements * scenario.element_kib * 1024
    ok = {"ours": 0, "tf": 0}
    steps = tqdm(range(repeats), desc=f"{scenario.name}", unit="repeat")
    for r in steps:
        tf_dir = os.path.join(directory, "tf")
        our_dir = os.path.join(directory, "ours")
        os.makedirs(tf_dir, exist_ok=True)
        os.makedirs(our_dir, exist_ok=True)

        add("disk_write_nofsync", raw_disk_write(directory, nbytes, fsync=False))
        add("disk_write_fsync", raw_disk_write(directory, nbytes, fsync=True))

        ckpt = tf.train.Checkpoint(iterator=it)
        tf_prefix = os.path.join(tf_dir, "ckpt")
        add("tf_save", _timed(lambda: ckpt.write(tf_prefix)))
        result.bytes_on_disk["tf"] = _dir_bytes(tf_dir)

        ours = os.path.join(our_dir, "ckpt")
        add("ours_save_nofsync", _timed(lambda: tc.save_iterator(it, ours, fsync=False)))
        _clear(our_dir)
        add("ours_save_fsync", _timed(lambda: tc.save_iterator(it, ours, fsync=True)))
        result.bytes_on_disk["ours"] = _dir_bytes(our_dir)
        _clear(our_dir)
        t0 = time.perf_counter()
        tc.save_iterator(it, ours, fsync=True, asynchronous=True)
        add("ours_async_stall", time.perf_counter() - t0)
        tc.wait_for_pending_saves(our_dir)
        add("ours_async_commit_fsync", time.perf_counter() - t0)

        expected_id = int(next(it)[0])  # Both checkpoints hold the state before this element.
        restored = iter(make_dataset(scenario))
        add("tf_restore", _timed(lambda: tf.train.Checkpoint(iterator=restored).read(tf_prefix)))
        ok["tf"] += int(next(restored)[0]) == expected_id
        del restored
        restored = iter(make_dataset(scenario))
        add("ours_restore", _timed(lambda: tc.restore_iterator(restored, ours)))
        ok["ours"] += int(next(restored)[0]) == expected_id
        del restored

        if r == 0:
            for which, prefix in (("tf", tf_prefix), ("ours", ours)):
                fresh = fresh_process_restore(scenario, which, prefix)
                result.restore_memory_growth[which] = fresh["growth"]
                result.checks[f"{which}_fresh_process_next_id_ok"] = fresh["next_id"] == expected_id
        _clear(tf_dir)
        _clear(our_dir)
    result.checks["ours_restores_exactly"] = f"{ok['ours']}/{repeats}"
    result.checks["tf_restores_exactly"] = f"{ok['tf']}/{repeats}"
    result.seconds = runs
    result.scenario["buffer_bytes"] = nbytes
    return result


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| scenario | TF save | ours save (no fsync) | speed-up | ours save (fsync) | "
        "fsync'd disk write | of disk | background stall | TF restore | ours restore | "
        "speed-up | restore memory TF / ours (x buffer) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.median
        size = r.scenario["buffer_bytes"]
        mem = r.restore_memory_growth
        lines.append(
            f"| {r.scenario['name']} | {m('tf_save'):.2f} s | {m('ours_save_nofsync'):.2f} s | "
            f"{m('tf_save') / m('ours_save_nofsync'):.1f}x | {m('ours_save_fsync'):.2f} s | "
            f"{m('disk_write_fsync'):.2f} s | "
            f"{m('disk_write_fsync') / m('ours_save_fsync') * 100:.0f}% | "
            f"{m('ours_async_stall') * 1e3:.1f} ms | {m('tf_restore'):.2f} s | "
            f"{m('ours_restore'):.2f} s | {m('tf_restore') / m('ours_restore'):.1f}x | "
            f"{mem.get('tf', 0) / size:.2f} / {mem.get('ours', 0) / size:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buffer-mib", type=int, default=1024)
    parser.add_argument("--element-kib", type=int, nargs="+", default=[4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for kib in args.element_kib:
            scenario = Scenario(f"{args.buffer_mib} MiB in {kib} KiB elements", args.buffer_mib, kib)
            results.append(run_scenario(scenario, args.repeats, tmp))
    print(markdown_table(results))
    for r in results:
        print(r.scenario["name"], json.dumps(r.checks))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump([asdict(r) for r in results], f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
