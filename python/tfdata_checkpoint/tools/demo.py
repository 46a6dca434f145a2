"""The README's main job: a training job is interrupted and resumes its input stream exactly.

A job trains on synthetic data through a large shuffle buffer with
`CheckpointInputPipelineHook` (an Estimator on TF <= 2.15, MonitoredTrainingSession
elsewhere). It crashes mid-run, as a pre-empted job does (no hook's `end()` runs), then
starts again from the same directory: the model resumes from its last checkpoint and the
input pipeline from the input checkpoint of the same step. The stream it trained on is
compared, element by element, with an uninterrupted run of the same job.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from typing import Any, Callable

import tensorflow as tf

from tfdata_checkpoint.hook import CheckpointInputPipelineHook
from tfdata_checkpoint.tools.progress import progress
from tfdata_checkpoint.tools.timed_hook import TimedHook

_ELEMENT_FLOATS = 64 * 1024  # 256 KiB elements
_IDS = "tfdata_checkpoint_demo_ids"


class Interrupted(Exception):
    """Ends a run the way a pre-emption does: no hook's end() runs."""


def synthetic_dataset(buffer_mib: int) -> tf.data.Dataset:
    """Random float32 'images' with their index, through a large shuffle buffer."""
    buffer_elements = max(1, buffer_mib * (1 << 20) // (4 * _ELEMENT_FLOATS))

    def make(i):
        return {"id": i, "x": tf.random.stateless_uniform([_ELEMENT_FLOATS], seed=[i, 7])}

    return (
        tf.data.Dataset.range(10**9)
        .map(make)
        .shuffle(buffer_elements, seed=42, reshuffle_each_iteration=False)
        .prefetch(2)
    )


class _StreamRecorder(tf.compat.v1.train.SessionRunHook):
    """Records the ids the model trained on; stops the run at `interrupt_at` (global step)."""

    def __init__(self, bar: Any, interrupt_at: int | None = None) -> None:
        self.ids: list[int] = []
        self.steps: list[int] = []
        self._bar = bar
        self._interrupt_at = interrupt_at

    def begin(self) -> None:
        self._ids = tf.compat.v1.get_collection(_IDS)[0]
        self._global_step = tf.compat.v1.train.get_global_step()

    def after_create_session(self, session: Any, coord: Any) -> None:
        # Read once here: fetched in a train step, the value would race the train op.
        self._start_step = int(session.run(self._global_step))

    def before_run(self, run_context: Any) -> Any:
        return tf.compat.v1.train.SessionRunArgs(self._ids)

    def after_run(self, run_context: Any, run_values: Any) -> None:
        self.ids.append(int(run_values.results))
        step = self._start_step + len(self.ids)  # Global step after this train step.
        self.steps.append(step)
        self._bar.update(1)
        if self._interrupt_at is not None and step >= self._interrupt_at:
            raise Interrupted()


def _model(features: dict) -> tf.Operation:
    tf.compat.v1.add_to_collection(_IDS, features["id"])
    step = tf.compat.v1.train.get_or_create_global_step()
    return tf.compat.v1.assign_add(step, 1)


# Makes a run's hooks, given the Estimator (None without one).
HookFactory = Callable[[Any], list]


class _Run:
    """One training run: what it trained on, and how long our hook held each step."""

    def __init__(self, bar: Any, interrupt_at: int | None, directory: str,
                 save_every: int) -> None:
        self.recorder = _StreamRecorder(bar, interrupt_at)
        self.timed: TimedHook | None = None
        self._directory = directory
        self._save_every = save_every

    def hooks(self, estimator: Any) -> list:
        if estimator is not None:
            hook = CheckpointInputPipelineHook(estimator)
        else:
            hook = CheckpointInputPipelineHook(checkpoint_dir=self._directory,
                                               save_steps=self._save_every)
        self.timed = TimedHook(hook)
        return [self.timed, self.recorder]

    def save_stalls(self) -> list[float]:
        """Seconds our hook held the steps at which it saved."""
        return [seconds for seconds, step in zip(self.timed.step_seconds, self.recorder.steps)
                if step % self._save_every == 0]


def _train_estimator(model_dir: str, steps: int, save_every: int, buffer_mib: int,
                     make_hooks: HookFactory) -> None:
    def model_fn(features, labels, mode):
        del labels
        loss = tf.reduce_mean(features["x"]) * 0.0
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=_model(features))

    config = tf.estimator.RunConfig(save_checkpoints_steps=save_every, log_step_count_steps=None,
                                    save_summary_steps=None)
    estimator = tf.estimator.Estimator(model_fn, model_dir=model_dir, config=config)
    estimator.train(lambda: synthetic_dataset(buffer_mib), max_steps=steps,
                    hooks=make_hooks(estimator))


def _train_monitored(model_dir: str, steps: int, save_every: int, buffer_mib: int,
                     make_hooks: HookFactory) -> None:
    with tf.Graph().as_default():
        features = tf.compat.v1.data.make_one_shot_iterator(
            synthetic_dataset(buffer_mib)).get_next()
        train_op = _model(features)
        # Every session.run goes through the hooks, which fetch an element: only
        # train steps may run, so the step limit comes from a hook, not a query.
        stop = tf.compat.v1.train.StopAtStepHook(last_step=steps)
        with tf.compat.v1.train.MonitoredTrainingSession(
            checkpoint_dir=model_dir, save_checkpoint_steps=save_every,
            save_summaries_steps=None, save_summaries_secs=None, log_step_count_steps=None,
            hooks=[stop, *make_hooks(None)],
        ) as session:
            while not session.should_stop():
                session.run(train_op)


def _estimator_available() -> bool:
    return hasattr(tf, "estimator") and hasattr(tf.estimator, "Estimator")


def run(steps: int = 300, interrupt_at: int = 170, save_every: int = 50, buffer_mib: int = 64,
        directory: str | None = None) -> int:
    """Runs the demo; returns the process exit status (0 when the stream resumed exactly)."""
    if not 0 < interrupt_at < steps:
        raise ValueError("--interrupt-at must be between 0 and --steps")
    if not 1 <= save_every <= interrupt_at:
        raise ValueError("--save-every must be between 1 and --interrupt-at")
    if buffer_mib < 1:
        raise ValueError("--buffer-mib must be at least 1")
    if directory is not None and tf.io.gfile.isdir(directory) and tf.io.gfile.listdir(directory):
        # Its model and input checkpoints would be restored by the first run, which would
        # then not be the pre-empted run the reference is compared with.
        raise ValueError(f"--dir {directory} is not empty (a previous run's checkpoints?): the "
                         "demo trains from scratch, give it a new or empty directory")
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    use_estimator = _estimator_available()
    train = _train_estimator if use_estimator else _train_monitored
    kind = "an Estimator" if use_estimator else "a MonitoredTrainingSession"

    with tempfile.TemporaryDirectory() as tmp:
        directory = directory or os.path.join(tmp, "run")
        print(f"Training {kind} job on synthetic data, {buffer_mib} MiB shuffle buffer, "
              f"input and model checkpoints every {save_every} steps, in {directory}")

        with progress(total=steps, desc="uninterrupted reference", unit="step") as bar:
            reference = _StreamRecorder(bar)
            train(os.path.join(tmp, "reference"), steps, save_every, buffer_mib,
                  lambda estimator: [reference])

        with progress(total=interrupt_at, desc="run 1 (pre-empted)", unit="step") as bar:
            first = _Run(bar, interrupt_at, directory, save_every)
            try:
                train(directory, steps, save_every, buffer_mib, first.hooks)
            except Interrupted:
                pass
        print(f"Pre-empted at step {interrupt_at}: no final save ran.")

        resumed_from = tf.train.latest_checkpoint(directory)
        with progress(total=steps, desc="run 2 (resumed)", unit="step") as bar:
            bar.update(int(resumed_from.rsplit("-", 1)[1]))
            second = _Run(bar, None, directory, save_every)
            train(directory, steps, save_every, buffer_mib, second.hooks)
        restart_step = second.recorder.steps[0] - 1 if second.recorder.steps else steps
        print(f"Resumed from model checkpoint {os.path.basename(resumed_from)} "
              f"(step {restart_step}) and the input checkpoint of the same step.")

    # The model replays the steps after its last checkpoint; so does the input.
    stream = first.recorder.ids[:restart_step] + second.recorder.ids
    saves = first.save_stalls() + second.save_stalls()
    if saves:
        print(f"Training stall per input checkpoint (capture; the files are written in the "
              f"background): median {statistics.median(saves) * 1e3:.1f} ms, "
              f"max {max(saves) * 1e3:.1f} ms over {len(saves)} saves")
    if stream == reference.ids:
        print(f"OK: the resumed stream of {len(stream)} elements is exactly the uninterrupted "
              "one: no element repeated or skipped.")
        return 0
    first_bad = next((i for i, (a, b) in enumerate(zip(stream, reference.ids)) if a != b),
                     min(len(stream), len(reference.ids)))
    print(f"MISMATCH at step {first_bad}: the resumed job saw "
          f"{stream[first_bad:first_bad + 5]}, the uninterrupted one "
          f"{reference.ids[first_bad:first_bad + 5]}")
    return 1


if __name__ == "__main__":
    raise SystemExit(run())
