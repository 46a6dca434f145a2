"""Per-save training stall of an input-pipeline hook on an Estimator job (TF <= 2.15).

The same job (a model that only counts steps, fed by a large shuffle buffer of incompressible
float32 elements, each step taking `step_ms` as a model's compute would) runs once with
TensorFlow's `tf.data.experimental.CheckpointInputPipelineHook` and once with ours, each in a
fresh process. With steps that take no time, saves would come faster than any write completes
and ours would measure queueing behind the previous write, not the capture. A wrapper times the hook's own callbacks at every
step: a save's stall is the time the hook held the step in which it saved.
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

_JOB = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    from tfdata_checkpoint.benchmark import Scenario, make_dataset
    from tfdata_checkpoint.timed_hook import TimedHook

    which, model_dir, steps, save_steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    scenario = Scenario(**json.loads(sys.argv[5]))
    step_seconds = float(sys.argv[6]) / 1000

    class ModelCompute(tf.compat.v1.train.SessionRunHook):
        def after_run(self, run_context, run_values):
            time.sleep(step_seconds)

    def input_fn():
        return make_dataset(scenario).map(lambda i, x: ({"x": x}, i))

    def model_fn(features, labels, mode):
        step = tf.compat.v1.train.get_or_create_global_step()
        loss = tf.reduce_mean(features["x"]) * 0.0
        return tf.estimator.EstimatorSpec(
            mode, loss=loss, train_op=tf.compat.v1.assign_add(step, 1))

    config = tf.estimator.RunConfig(save_checkpoints_steps=save_steps, log_step_count_steps=10**9,
                                    save_summary_steps=10**9, keep_checkpoint_max=1)
    est = tf.estimator.Estimator(model_fn, model_dir=model_dir, config=config)
    if which == "tf":
        hook = tf.data.experimental.CheckpointInputPipelineHook(est)
    else:
        import tfdata_checkpoint
        hook = tfdata_checkpoint.CheckpointInputPipelineHook(est)
    timed = TimedHook(hook)
    t0 = time.perf_counter()
    est.train(input_fn, steps=steps, hooks=[timed, ModelCompute()])
    print(json.dumps({"runs": timed.step_seconds, "end": timed.end_seconds,
                      "train_seconds": time.perf_counter() - t0}))
    """
)


def run_job(which: str, scenario, steps: int, save_steps: int, step_ms: float) -> dict:
    """Trains `steps` steps with hook `which` ('tf' or 'ours'); returns the stalls."""
    from dataclasses import asdict

    with tempfile.TemporaryDirectory() as model_dir:
        out = subprocess.run(
            [sys.executable, "-c", _JOB, which, model_dir, str(steps), str(save_steps),
             json.dumps(asdict(scenario)), str(step_ms)],
            check=False, capture_output=True, text=True,
        )
    if out.returncode != 0:
        raise RuntimeError(f"{which} hook job failed:\n{out.stderr[-3000:]}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
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


def run(scenario, steps: int = 60, save_steps: int = 20, step_ms: float = 100.0) -> dict:
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
    from tfdata_checkpoint.benchmark import Scenario

    print(json.dumps(run(Scenario("shuffle 1024 MiB / 4 MiB elements", 1024, 4096)), indent=2))
    os._exit(0)
