"""Trains an Estimator job with one input-pipeline hook, timing the hook at every step (TF <= 2.15).

Usage: python -m tfdata_checkpoint.tools.bench.jobs.train_with_input_hook
           {tf,ours,ours-full,ours-skip} MODEL_DIR STEPS SAVE_STEPS SCENARIO_JSON STEP_MS

The hooks: `tf` TensorFlow's; `ours` this library's with its defaults
(incremental saves, on_busy='wait'); `ours-full` with incremental=False;
`ours-skip` with on_busy='skip'. The model only counts steps; each step sleeps
STEP_MS as a model's compute would. Prints {"runs": seconds the hook held each
step, "end": seconds of its end(), "train_seconds": the whole train() call,
"log_counts": how many saves our hook started, waited for the previous write
before, and skipped (from its log)}.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import tensorflow as tf

from tfdata_checkpoint.tools.bench.scenario import Scenario, make_estimator_dataset
from tfdata_checkpoint.tools.timed_hook import TimedHook

# What our hook and its writer log (tfdata_checkpoint.hook, _src.background_writes).
_LOGGED = {
    "saves": "Saving input pipeline checkpoint",
    "waited": "is due but the write of step",
    "skipped": "Skipping the input checkpoint",
}


class _CountLog(logging.Handler):
    """Counts the records of `_LOGGED`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts = dict.fromkeys(_LOGGED, 0)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for name, text in _LOGGED.items():
            if text in message:
                self.counts[name] += 1


class ModelCompute(tf.compat.v1.train.SessionRunHook):
    """Holds every step `seconds`, as a model's compute would."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def after_run(self, run_context, run_values) -> None:
        time.sleep(self._seconds)


# Our hook's variants: keyword arguments of CheckpointInputPipelineHook.
_OURS = {
    "ours": {},
    "ours-full": {"incremental": False},
    "ours-skip": {"on_busy": "skip"},
}


def main(argv: list[str]) -> None:
    which, model_dir, steps, save_steps, scenario_json, step_ms = argv
    scenario = Scenario(**json.loads(scenario_json))
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)

    def input_fn():
        return make_estimator_dataset(scenario)

    def model_fn(features, labels, mode):
        step = tf.compat.v1.train.get_or_create_global_step()
        loss = tf.reduce_mean(features["x"]) * 0.0
        return tf.estimator.EstimatorSpec(
            mode, loss=loss, train_op=tf.compat.v1.assign_add(step, 1))

    config = tf.estimator.RunConfig(save_checkpoints_steps=int(save_steps),
                                    log_step_count_steps=10**9, save_summary_steps=10**9,
                                    keep_checkpoint_max=1)
    estimator = tf.estimator.Estimator(model_fn, model_dir=model_dir, config=config)
    if which == "tf":
        hook = tf.data.experimental.CheckpointInputPipelineHook(estimator)
    elif which in _OURS:
        import tfdata_checkpoint

        hook = tfdata_checkpoint.CheckpointInputPipelineHook(estimator, **_OURS[which])
    else:
        raise SystemExit(f"unknown hook {which!r}: 'tf' or one of {sorted(_OURS)}")
    log = _CountLog()
    package_logger = logging.getLogger("tfdata_checkpoint")
    package_logger.addHandler(log)
    package_logger.setLevel(logging.INFO)
    timed = TimedHook(hook)
    t0 = time.perf_counter()
    estimator.train(input_fn, steps=int(steps),
                    hooks=[timed, ModelCompute(float(step_ms) / 1000)])
    print(json.dumps({"runs": timed.step_seconds, "end": timed.end_seconds,
                      "train_seconds": time.perf_counter() - t0, "log_counts": log.counts}))


if __name__ == "__main__":
    main(sys.argv[1:])
