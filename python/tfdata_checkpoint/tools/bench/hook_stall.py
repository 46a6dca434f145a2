"""Per-save training stall of an input-pipeline hook on an Estimator job (TF <= 2.15).

The same job (a model that only counts steps, fed by a large shuffle buffer of incompressible
float32 elements, each step taking `step_ms` as a model's compute would) runs once with
TensorFlow's `tf.data.experimental.CheckpointInputPipelineHook` and once with ours, each in a
fresh process (`jobs/train_with_input_hook.py`). With steps that take no time, saves would come
faster than any write completes and ours would measure queueing behind the previous write, not
the capture. A wrapper times the hook's own callbacks at every step: a save's stall is the time
the hook held the step in which it saved.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

from tfdata_checkpoint.tools.bench.scenario import Scenario


def job_command(which: str, model_dir: str, scenario: Scenario, steps: int, save_steps: int,
                step_ms: float) -> list[str]:
    """The command line of `jobs/train_with_input_hook.py` with hook `which`."""
    return [sys.executable, "-m", "tfdata_checkpoint.tools.bench.jobs.train_with_input_hook",
            which, model_dir, str(steps), str(save_steps), json.dumps(asdict(scenario)),
            str(step_ms)]


def run_in(model_dir: str, which: str, scenario: Scenario, steps: int, save_steps: int,
           step_ms: float) -> dict:
    """Runs the job with hook `which` in a fresh process writing into `model_dir`; its report."""
    out = subprocess.run(
        job_command(which, model_dir, scenario, steps, save_steps, step_ms),
        check=False, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if out.returncode != 0:
        raise RuntimeError(f"{which} hook job failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def stalls(report: dict, save_steps: int) -> dict:
    """The stalls of the saves in a job's report, and the overhead of the other steps."""
    runs = report["runs"]
    # Run i (1-based) ends at global step i; saves happen where i % save_steps == 0. The
    # first run also holds the initial save.
    save_runs = [runs[0]] + [runs[i - 1] for i in range(save_steps, len(runs) + 1, save_steps)]
    other = [d for i, d in enumerate(runs, 1) if i != 1 and i % save_steps != 0]
    return {
        "save_stalls": save_runs,
        "median_save_stall": statistics.median(save_runs[1:] or save_runs),
        "median_other_step_overhead": statistics.median(other) if other else 0.0,
        "end_seconds": report["end"],
        "train_seconds": report["train_seconds"],
    }


def run_job(which: str, scenario: Scenario, steps: int, save_steps: int,
            step_ms: float) -> dict:
    """Trains `steps` steps with hook `which` ('tf' or 'ours') in a fresh process; the stalls."""
    with tempfile.TemporaryDirectory() as model_dir:
        report = run_in(model_dir, which, scenario, steps, save_steps, step_ms)
    return stalls(report, save_steps)


def run(scenario: Scenario, steps: int = 60, save_steps: int = 20, step_ms: float = 100.0) -> dict:
    """Both hooks on the same job, one after the other."""
    t0 = time.time()
    results = {which: run_job(which, scenario, steps, save_steps, step_ms)
               for which in ("tf", "ours")}
    results["ratio"] = results["ours"]["median_save_stall"] / results["tf"]["median_save_stall"]
    results["scenario"] = scenario.name
    results["steps"], results["save_steps"], results["step_ms"] = steps, save_steps, step_ms
    results["wall_seconds"] = time.time() - t0
    return results


def available() -> bool:
    """Whether this TensorFlow still has Estimator and TF's own hook."""
    try:
        import tensorflow as tf

        return hasattr(tf, "estimator") and hasattr(
            tf.data.experimental, "CheckpointInputPipelineHook")
    except ImportError:
        return False


if __name__ == "__main__":
    print(json.dumps(run(Scenario("shuffle 1024 MiB / 4 MiB elements", 1024, 4096)), indent=2))
    os._exit(0)
