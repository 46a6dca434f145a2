"""The frequent-save Estimator job of issue 14: stall per save, TF's hook against ours (TF <= 2.15).

A 1 GiB shuffle buffer of 4 MiB elements, a save every `save_steps` steps
(10), steps of each of `step_ms` (5 and 10 ms of `ModelCompute` sleep). Each
job runs in a fresh process (`jobs/train_with_input_hook.py`) with one hook:
TF's `CheckpointInputPipelineHook`, ours with its defaults (incremental saves,
on_busy='wait'), ours with `incremental=False`, ours with `on_busy='skip'`.
`repeats` rounds, the order of the hooks rotating each round. A save's stall is
the time the hook held the step of that save (`TimedHook`); the first step's
initial save is left out. Reported per hook and step time: median and mean
stall over the periodic saves of all rounds, their ratio to TF's, how many saves
waited for the previous write or were skipped (from our hook's log).

After each job of ours, its last input checkpoint (end()'s, at the last step)
is restored in a fresh process (`jobs/timed_restore.py --estimator-input`) and
its next elements compared with those of an uninterrupted pipeline that gave
as many elements as there were steps (`jobs/uninterrupted_stream.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
from dataclasses import asdict

from tfdata_checkpoint.tools.bench import hook_stall
from tfdata_checkpoint.tools.bench.child import run_child
from tfdata_checkpoint.tools.bench.scenario import Scenario
from tfdata_checkpoint.tools.progress import progress

HOOKS = ("tf", "ours", "ours-full", "ours-skip")
TARGET_RATIO = 0.01  # our stall per save / TF's, issue 14
NEXT = 4


def estimator_scenario(buffer_mib: int = 1024) -> Scenario:
    """The job's buffer: `buffer_mib` MiB of 4 MiB elements."""
    return Scenario(f"Estimator, shuffle {buffer_mib} MiB / 4 MiB elements", buffer_mib, 4096)


def _last_input_checkpoint(model_dir: str) -> str:
    import tensorflow as tf

    prefix = tf.train.latest_checkpoint(model_dir, latest_filename="checkpoint_input")
    if prefix is None:
        raise RuntimeError(f"no input checkpoint in {model_dir}")
    return prefix


def resume_check(scenario: Scenario, model_dir: str, expected: dict[int, list]) -> dict:
    """Restores the job's last input checkpoint in a fresh process; compares what follows."""
    prefix = _last_input_checkpoint(model_dir)
    step = int(prefix.rsplit("-", 1)[1])
    spec = json.dumps(asdict(scenario))
    if step not in expected:
        # One element per step: after `step` steps the pipeline gave `step` elements.
        expected[step] = run_child("uninterrupted_stream", spec, str(step), str(NEXT))["next"]
    restored = run_child("timed_restore", spec, "ours", prefix, str(NEXT), "--estimator-input")
    return {"step": step, "exact": restored["next"] == expected[step],
            "restore_seconds": restored["seconds"]}


def run(scenario: Scenario, step_ms: list[float], steps: int, save_steps: int, repeats: int,
        directory: str, hooks: tuple[str, ...] = HOOKS) -> dict:
    """Every hook at every step time, `repeats` rounds; see the module doc."""
    out: dict = {"scenario": scenario.name, "buffer_bytes": scenario.buffer_bytes,
                 "steps": steps, "save_steps": save_steps, "step_ms": step_ms,
                 "repeats": repeats, "hooks": list(hooks), "target_ratio": TARGET_RATIO,
                 "load_average": {"start": os.getloadavg()}, "rows": []}
    expected: dict[int, list] = {}
    jobs: dict[tuple[float, str], list[dict]] = {}
    for r in progress(range(repeats), desc="frequent-save Estimator jobs", unit="round"):
        for ms in step_ms:
            order = hooks[r % len(hooks):] + hooks[:r % len(hooks)]
            for which in order:
                model_dir = tempfile.mkdtemp(dir=directory, prefix=f"job-{which}-")
                try:
                    report = hook_stall.run_in(model_dir, which, scenario, steps, save_steps, ms)
                    job = hook_stall.stalls(report, save_steps)
                    job["log_counts"] = report.get("log_counts")
                    if which != "tf":
                        job["resume"] = resume_check(scenario, model_dir, expected)
                finally:
                    shutil.rmtree(model_dir, ignore_errors=True)
                jobs.setdefault((ms, which), []).append(job)
    for ms in step_ms:
        tf_row = None
        for which in hooks:
            runs = jobs[(ms, which)]
            periodic = [s for job in runs for s in job["save_stalls"][1:]]
            row = {
                "step_ms": ms, "hook": which, "jobs": runs,
                "periodic_saves": len(periodic),
                "median_save_stall": statistics.median(periodic),
                "mean_save_stall": statistics.fmean(periodic),
                "max_save_stall": max(periodic),
                "median_train_seconds": statistics.median(j["train_seconds"] for j in runs),
                "median_end_seconds": statistics.median(j["end_seconds"] for j in runs),
            }
            if which == "tf":
                tf_row = row
            else:
                row["waited"] = sum((j["log_counts"] or {}).get("waited", 0) for j in runs)
                row["skipped"] = sum((j["log_counts"] or {}).get("skipped", 0) for j in runs)
                row["resumed_exactly"] = f"{sum(j['resume']['exact'] for j in runs)}/{len(runs)}"
            out["rows"].append(row)
        for row in out["rows"]:
            if row["step_ms"] == ms and row["hook"] != "tf" and tf_row is not None:
                row["median_over_tf"] = row["median_save_stall"] / tf_row["median_save_stall"]
                row["mean_over_tf"] = row["mean_save_stall"] / tf_row["mean_save_stall"]
                row["meets_target"] = row["median_over_tf"] <= TARGET_RATIO
    out["load_average"]["end"] = os.getloadavg()
    return out
