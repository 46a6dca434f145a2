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
import textwrap
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from tqdm import tqdm

MIB = 1 << 20


@dataclass
class Scenario:
    """A `kind` ('shuffle' or 'prefetch') buffer of `buffer_mib` MiB in `element_kib` KiB elements."""

    name: str
    buffer_mib: int
    element_kib: int
    kind: str = "shuffle"

    @property
    def element_floats(self) -> int:
        return self.element_kib * 1024 // 4

    @property
    def buffer_elements(self) -> int:
        return max(1, self.buffer_mib * 1024 // self.element_kib)

    @property
    def buffer_bytes(self) -> int:
        return self.buffer_elements * self.element_kib * 1024


@dataclass
class Result:
    scenario: dict
    repeats: int
    seconds: dict = field(default_factory=dict)  # figure -> one value per repeat
    bytes_on_disk: dict = field(default_factory=dict)
    memory_growth: dict = field(default_factory=dict)  # figure -> peak bytes over the start
    checks: dict = field(default_factory=dict)

    def median(self, figure: str) -> float:
        return statistics.median(self.seconds[figure])


def make_dataset(scenario: Scenario):
    """Incompressible float32 elements with an id, through the scenario's buffer."""
    import tensorflow as tf

    floats = scenario.element_floats

    def element(i):
        return i, tf.random.stateless_uniform([floats], seed=[i, 1])

    ds = tf.data.Dataset.range(1 << 40).map(element, num_parallel_calls=2)
    if scenario.kind == "shuffle":
        return ds.shuffle(scenario.buffer_elements, seed=5)
    if scenario.kind == "prefetch":
        return ds.prefetch(scenario.buffer_elements)
    raise ValueError(f"unknown scenario kind {scenario.kind!r}")


def filled_iterator(scenario: Scenario):
    """An iterator whose buffer is full."""
    it = iter(make_dataset(scenario))
    next(it)  # A shuffle buffer is full once the first element is out.
    if scenario.kind == "prefetch":
        # A prefetch buffer fills in the background; give it the time to.
        time.sleep(1.0 + scenario.buffer_mib / 256)
    return it


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_memory_growth(fn: Callable[[], object]) -> int:
    """Bytes the process's peak resident set grew to above its size before `fn` (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Resets VmHWM to the current resident set.
    before = _proc_status("VmRSS")
    fn()
    return _proc_status("VmHWM") - before


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


_FRESH_RESTORE = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    import tfdata_checkpoint as tc
    from tfdata_checkpoint.benchmark import Scenario, make_dataset, peak_memory_growth

    scenario = Scenario(**json.loads(sys.argv[1]))
    it = iter(make_dataset(scenario))
    if sys.argv[2] == "ours":
        growth = peak_memory_growth(lambda: tc.restore_iterator(it, sys.argv[3]))
    else:
        growth = peak_memory_growth(
            lambda: tf.train.Checkpoint(iterator=it).read(sys.argv[3]).expect_partial())
    print(json.dumps({"growth": growth, "next_id": int(next(it)[0])}))
    """
)


def fresh_process_restore(scenario: Scenario, which: str, prefix: str) -> dict:
    """Restores in a new process, as a restarted job does; returns memory growth and next id."""
    out = subprocess.run(
        [sys.executable, "-c", _FRESH_RESTORE, json.dumps(asdict(scenario)), which, prefix],
        capture_output=True, text=True, check=True,
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

    for r in tqdm(range(repeats), desc=scenario.name, unit="repeat", leave=False):
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


def default_scenarios(buffer_mib: int = 1024) -> list[Scenario]:
    """The benchmark's scenarios: large elements, many small ones, a prefetch buffer."""
    return [
        Scenario(f"shuffle {buffer_mib} MiB / 4 MiB elements", buffer_mib, 4096),
        Scenario(f"shuffle {buffer_mib} MiB / 4 KiB elements", buffer_mib, 4),
        Scenario(f"prefetch {buffer_mib} MiB / 16 MiB elements", buffer_mib, 16384, "prefetch"),
    ]


def scaling_scenarios(sizes_mib: list[int]) -> list[Scenario]:
    """Shuffle buffers of 4 MiB elements of growing size, to show how each cost grows."""
    return [Scenario(f"scaling {s} MiB / 4 MiB elements", s, 4096) for s in sizes_mib]


def machine_description() -> dict:
    """Where a result came from."""
    import platform

    import tensorflow as tf

    import tfdata_checkpoint as tc

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / (1 << 30), 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tfdata_checkpoint": tc.__version__,
    }


def run(scenarios: list[Scenario], repeats: int, directory: str) -> list[Result]:
    """Runs every scenario in `directory` (on the disk to be measured)."""
    results = []
    for scenario in tqdm(scenarios, desc="scenarios", unit="scenario"):
        results.append(run_scenario(scenario, repeats, directory))
    return results


def save_results(results: list[Result], out_dir: str, name: str = "results",
                 hook_stall: dict | None = None) -> dict:
    """Writes JSON, a markdown table and, with several sizes, a PNG plot; returns the paths."""
    from tfdata_checkpoint import bench_report

    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, f"{name}.json"),
             "markdown": os.path.join(out_dir, f"{name}.md")}
    with open(paths["json"], "w") as f:
        json.dump({"machine": machine_description(), "results": [asdict(r) for r in results],
                   "hook_stall": hook_stall}, f, indent=2)
    with open(paths["markdown"], "w") as f:
        f.write(bench_report.markdown(results, machine_description()))
        if hook_stall is not None:
            f.write("\n" + bench_report.hook_stall_markdown(hook_stall))
    scaling = [r for r in results if r.scenario["name"].startswith("scaling")]
    if len(scaling) >= 2:
        paths["plot"] = os.path.join(out_dir, f"{name}.png")
        bench_report.plot_scaling(scaling, paths["plot"])
    return paths
