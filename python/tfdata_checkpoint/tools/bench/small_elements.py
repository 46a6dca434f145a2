"""The many-small-elements case of issue 14: 1 GiB of 4 KiB elements (262,144 entries).

Four measurements, each side by side with its comparison in the same run:

1. In this process, after `measure.warm_up_memory` (`measure.run_scenario`,
   the main benchmark's figures): our full save with fsync against writing the
   same number of bytes with `os.write` + fsync (and both without fsync); the
   capture stall of an asynchronous save; TF's save and restore.
2. In fresh processes (`jobs/save_in_fresh_process.py`), at two buffer sizes:
   the first save of the process (asynchronous, full), an incremental one after
   k elements, a synchronous full save and TF's save of the same state: stall,
   commit and peak memory growth of each (issue 14: growth at most 64 MiB at
   any buffer size).
3. Restores in fresh processes (`jobs/timed_restore.py`) of the checkpoints of
   the last save process: ours (the full one, and the incremental one), TF's,
   and reading the full checkpoint's files into fresh memory; with the files in
   the page cache and (ours full, TF, read) after dropping them from it.
   Issue 14: ours at least 4x faster than TF and within 2x of the read.
4. TF's `CheckpointInputPipelineHook` and ours on an Estimator job fed by that
   buffer (`jobs/train_with_input_hook.py`, TF <= 2.15): stall per save.
   Issue 14: our capture stall at most 1% of TF's hook stall.

Every figure from a fresh process includes first-touch memory: each allocation
of that process is memory it touches for the first time (slow on this VM).
The figures of (1) come after a warm-up that touched twice the buffer size.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from dataclasses import asdict

from tfdata_checkpoint.tools.bench import files, hook_stall, measure
from tfdata_checkpoint.tools.bench.child import run_child
from tfdata_checkpoint.tools.bench.scenario import Scenario
from tfdata_checkpoint.tools.progress import progress

MIB = 1 << 20
NEXT = 4
TARGETS = {
    "save_over_raw_write": 2.0,  # at most
    "stall_over_tf_hook": 0.01,  # at most
    "memory_growth_bytes": 64 * MIB,  # at most
    "tf_restore_over_ours": 4.0,  # at least
    "ours_restore_over_read": 2.0,  # at most
}


def small_scenario(buffer_mib: int = 1024) -> Scenario:
    """A shuffle buffer of `buffer_mib` MiB in 4 KiB elements."""
    return Scenario(f"shuffle {buffer_mib} MiB / 4 KiB elements", buffer_mib, 4)


def _median(values) -> float:
    return statistics.median(list(values))


def fresh_saves(scenario: Scenario, k: int, repeats: int, directory: str) -> tuple[list, str]:
    """`repeats` save processes; returns their reports and the directory of the last one."""
    reports = []
    last = None
    for r in progress(range(repeats), desc=f"saves in fresh processes, {scenario.name}",
                      unit="process", leave=False):
        work = os.path.join(directory, f"saves-{scenario.buffer_mib}-{r}")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        reports.append(run_child("save_in_fresh_process", json.dumps(asdict(scenario)), work,
                                 str(k), str(NEXT)))
        if last is not None:
            shutil.rmtree(last, ignore_errors=True)
        last = work
    return reports, last


def fresh_restores(scenario: Scenario, saved: dict, repeats: int) -> dict:
    """Restores of the checkpoints one save process wrote, in fresh processes."""
    prefixes = saved["prefixes"]
    referenced = saved["incremental_description"].get("referenced_files") or []
    kinds = {
        "ours_full": ("ours", prefixes["full"], files.checkpoint_files(prefixes["full"])),
        "ours_incremental": ("ours", prefixes["incremental"],
                             files.checkpoint_files(prefixes["incremental"], referenced)),
        "tf": ("tf", prefixes["tf"], files.checkpoint_files(prefixes["tf"])),
        "read": ("read", prefixes["full"], files.checkpoint_files(prefixes["full"])),
    }
    cold_kinds = ("ours_full", "tf", "read")
    runs: dict[str, list[dict]] = {}
    spec = json.dumps(asdict(scenario))
    for r in progress(range(repeats), desc=f"restores in fresh processes, {scenario.name}",
                      unit="repeat", leave=False):
        names = list(kinds) if r % 2 == 0 else list(reversed(kinds))
        for cache in ("warm", "cold"):
            for name in names:
                if cache == "cold" and name not in cold_kinds:
                    continue
                which, prefix, paths = kinds[name]
                evicted = files.evict_from_page_cache(paths) if cache == "cold" else 0
                args = [spec, which, prefix, str(NEXT)] + (paths if which == "read" else [])
                result = run_child("timed_restore", *args)
                result["evicted_bytes"] = evicted
                runs.setdefault(f"{name}_{cache}", []).append(result)
    out: dict = {"runs": runs}
    for name, results in runs.items():
        out[f"median_{name}_seconds"] = _median(r["seconds"] for r in results)
        out[f"median_{name}_growth"] = _median(r["growth"] for r in results)
        if not name.startswith("read"):
            out[f"{name}_exact"] = (
                f"{sum(r['next'] == saved['next'] for r in results)}/{len(results)}")
    out["read_bytes"] = runs["read_warm"][0]["bytes"]
    return out


def hook_jobs(scenario: Scenario, steps: int, save_steps: int, step_ms: float,
              repeats: int) -> dict:
    """TF's hook and ours on the Estimator job fed by `scenario`, `repeats` jobs each."""
    out: dict = {"steps": steps, "save_steps": save_steps, "step_ms": step_ms}
    for which in ("tf", "ours"):
        jobs = [hook_stall.run_job(which, scenario, steps, save_steps, step_ms)
                for _ in progress(range(repeats), desc=f"{which} hook, {scenario.name}",
                                  unit="job", leave=False)]
        periodic = [s for job in jobs for s in job["save_stalls"][1:]]
        out[which] = {"jobs": jobs, "median_save_stall": _median(periodic),
                      "mean_save_stall": statistics.fmean(periodic)}
    return out


def run(buffer_mib: int, repeats: int, directory: str, *, k: int = 8, hook: bool = True,
        hook_steps: int = 40, hook_save_steps: int = 10, hook_step_ms: float = 200.0,
        hook_repeats: int | None = None) -> dict:
    """All four measurements (see the module doc); medians, ratios and targets."""
    scenario = small_scenario(buffer_mib)
    out: dict = {"scenario": asdict(scenario), "buffer_bytes": scenario.buffer_bytes,
                 "entries": scenario.buffer_elements, "k": k, "repeats": repeats,
                 "targets": TARGETS, "load_average": {"start": os.getloadavg()}}
    in_process = measure.run_scenario(scenario, repeats, os.path.join(directory, "in-process"))
    out["in_process"] = asdict(in_process)
    out["load_average"]["after_in_process"] = os.getloadavg()

    sizes = sorted({max(1, buffer_mib // 4), buffer_mib})
    out["fresh_saves"] = {}
    last_dir = None
    for size in sizes:
        s = small_scenario(size)
        reports, work = fresh_saves(s, k, repeats if size == buffer_mib else 1, directory)
        out["fresh_saves"][str(size)] = reports
        if size == buffer_mib:
            last_dir, saved = work, reports[-1]
        else:
            shutil.rmtree(work, ignore_errors=True)
    try:
        out["fresh_restores"] = fresh_restores(scenario, saved, repeats)
    finally:
        shutil.rmtree(last_dir, ignore_errors=True)
    out["load_average"]["after_fresh"] = os.getloadavg()
    if hook and hook_stall.available():
        out["hook"] = hook_jobs(Scenario(f"Estimator, {scenario.name}", buffer_mib, 4),
                                hook_steps, hook_save_steps, hook_step_ms,
                                repeats if hook_repeats is None else hook_repeats)
    out["load_average"]["end"] = os.getloadavg()
    out["summary"] = summarize(out)
    return out


def summarize(out: dict) -> dict:
    """The figures the targets are about, and whether each is met."""
    m = lambda figure: _median(out["in_process"]["seconds"][figure])
    restores = out["fresh_restores"]
    big = out["fresh_saves"][str(out["scenario"]["buffer_mib"])]
    growth = {f"{size} MiB {save}": max(report[save]["growth"] for report in reports)
              for size, reports in out["fresh_saves"].items()
              for save in ("first", "incremental", "full")}
    s: dict = {
        "save_fsync_seconds": m("ours_save_fsync"),
        "raw_write_fsync_seconds": m("disk_write_fsync"),
        "save_over_raw_write": m("ours_save_fsync") / m("disk_write_fsync"),
        "save_nofsync_over_raw_write_nofsync": (
            m("ours_save_nofsync") / m("disk_write_nofsync")),
        "capture_stall_in_process": m("ours_async_stall"),
        "capture_stall_fresh_first": _median(r["first"]["stall"] for r in big),
        "capture_stall_fresh_incremental": _median(r["incremental"]["stall"] for r in big),
        "max_memory_growth": growth,
        "tf_restore_fresh_seconds": restores["median_tf_warm_seconds"],
        "ours_restore_fresh_seconds": restores["median_ours_full_warm_seconds"],
        "ours_incremental_restore_fresh_seconds": restores["median_ours_incremental_warm_seconds"],
        "read_fresh_seconds": restores["median_read_warm_seconds"],
        "tf_restore_over_ours": (restores["median_tf_warm_seconds"]
                                 / restores["median_ours_full_warm_seconds"]),
        "ours_restore_over_read": (restores["median_ours_full_warm_seconds"]
                                   / restores["median_read_warm_seconds"]),
        "tf_restore_over_ours_cold": (restores["median_tf_cold_seconds"]
                                      / restores["median_ours_full_cold_seconds"]),
        "ours_restore_over_read_cold": (restores["median_ours_full_cold_seconds"]
                                        / restores["median_read_cold_seconds"]),
    }
    met = {
        "save_over_raw_write": s["save_over_raw_write"] <= TARGETS["save_over_raw_write"],
        "memory_growth_bytes": max(growth.values()) <= TARGETS["memory_growth_bytes"],
        "tf_restore_over_ours": s["tf_restore_over_ours"] >= TARGETS["tf_restore_over_ours"],
        "ours_restore_over_read": (
            s["ours_restore_over_read"] <= TARGETS["ours_restore_over_read"]),
    }
    if "hook" in out:
        tf_stall = out["hook"]["tf"]["median_save_stall"]
        s["tf_hook_stall"] = tf_stall
        s["ours_hook_stall"] = out["hook"]["ours"]["median_save_stall"]
        s["stall_over_tf_hook"] = s["capture_stall_in_process"] / tf_stall
        s["ours_hook_stall_over_tf_hook"] = s["ours_hook_stall"] / tf_stall
        met["stall_over_tf_hook"] = s["stall_over_tf_hook"] <= TARGETS["stall_over_tf_hook"]
    s["met"] = met
    return s
