"""CheckpointInputPipelineHook: a drop-in for TF's hook of the same name."""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfdata_checkpoint._src import (
    arguments,
    atomic_restore,
    iterator_state,
    layout,
    multi_worker,
    preemption,
    tf_bundle_checkpoints,
)
from tfdata_checkpoint._src.background_writes import CheckpointWrites
from tfdata_checkpoint._src.policy import restore_policy
from tfdata_checkpoint._src.policy.keep_policy import check_max_to_keep
from tfdata_checkpoint._src.policy.save_policy import (
    Clock,
    SavePolicy,
    check_on_busy,
    skips_when_busy,
)
from tfdata_checkpoint._src.retention import CheckpointRetention

logger = logging.getLogger(__name__)

# tf.compat.v1 iterators and Estimator's input iterators are added to this
# graph collection (GLOBAL_ITERATORS in TF's iterator_ops).
ITERATORS_COLLECTION = "iterators"


class CheckpointInputPipelineHook(tf.compat.v1.train.SessionRunHook):
    """Checkpoints the input pipeline state every N steps or seconds.

    A drop-in replacement for `tf.data.experimental.CheckpointInputPipelineHook`
    (removed from TF 2.16) that writes in the background, and also works
    without an Estimator (`tf.compat.v1.train.MonitoredTrainingSession`,
    `MonitoredSession`).

    It saves the iterators of the graph collection `"iterators"` (where
    Estimator's input iterators and `tf.compat.v1.data` iterators land) so
    that when training resumes, the input pipeline continues where it left
    off.

    Files: the checkpoint of global step `s` is `<dir>/<prefix>.ckpt-<s>`
    (`.index` plus shard files), with `<prefix>` = `input`, or
    `input_<task_type>_<task_id>` with more than one worker replica (from an
    Estimator's config, else `task_type` / `task_id` or `TF_CONFIG`; see
    `tfdata_checkpoint._src.multi_worker`). The state file
    `<dir>/checkpoint_<prefix>` stays readable by
    `tf.train.latest_checkpoint(dir, latest_filename="checkpoint_<prefix>")`.
    Several iterators in the collection are saved together, under the same
    step: iterator 0 (in collection order, i.e. creation order) as above,
    iterator `i > 0` as `<dir>/<prefix>.ckpt.iterator<i>/<prefix>.ckpt-<s>`.
    The checkpoint counts only once every iterator's part has committed, and
    restoring needs the same iterators, created in the same order.

    Timeline:
    - `begin()` builds the save and restore ops; no iterator in the graph:
      `ValueError`.
    - The first `before_run()` (after the dataset initializers ran) restores
      the input checkpoint, or saves an initial one at the current global
      step if there is none. When the directory holds a model checkpoint, the
      input checkpoint restored is the one whose step equals the global step
      the model was restored to; where there is none, the newest one before
      it, with a warning; where all are newer, none (the pipeline starts
      over), with a warning. Otherwise the newest input checkpoint. A
      non-chief worker applies the same rule to the shared global step, which
      other workers advanced meanwhile: restarted alone, it restores its own
      newest input checkpoint.
      Migration: when the directory holds none in our format but the state
      file lists TF-format checkpoints (written by TF's own hook), the same
      rule picks one of those; see `tfdata_checkpoint._src.tf_bundle_checkpoints`.
    - `after_run()` saves when due, by global step with
      `tf.compat.v1.train.SecondOrStepTimer` semantics.
    - `end()` saves a final checkpoint and waits for every pending write.

    Background writing (`async_save=True`): the training step is held only
    while the iterator state is captured (a shallow copy); the files are
    written while training goes on. A save that comes while the previous one
    is still being written waits for it, holding the training step, and logs
    a warning saying so: choose `save_steps` / `save_secs` longer than a
    write takes. A failed background write raises its error from the training
    loop at the next step (the next `session.run`), or from `end()`.

    Retention: the newest `max_to_keep` committed checkpoints are kept; older
    ones are deleted only after a newer one has committed.

    Pre-emption (`preemption_signals=(signal.SIGTERM,)`): when one of the
    signals arrives, the step in flight finishes; then the hook saves the
    input checkpoint of that step, waits for its commit (logging the time
    since the signal) and asks the session to stop. The training loop ends
    (Estimator's does; write your own as `while not session.should_stop()`),
    and `end()` of TensorFlow's `CheckpointSaverHook` saves the model at the
    same global step: a restart resumes with nothing repeated or skipped. The
    input commits first, so a kill between the two commits leaves the model
    at its previous checkpoint, whose input checkpoint exists when both save
    on the same steps. Further signals are logged and ignored; SIGKILL at the
    end of the grace period cannot damage the last committed checkpoint.
    The handlers are installed by `begin()` (from the main thread); `end()`
    puts the previous ones back if no signal came. After a signal they stay
    (later signals are ignored until the process ends), since the model's
    `CheckpointSaverHook.end()` may still be saving after this hook's end().
    Once pre-empted the hook stays so (`preempted`): a later training run
    with it stops after one step.

    Args:
      estimator: an Estimator (TF <= 2.15), or None. With one, the directory is
        `estimator.model_dir` and the interval comes from its config's
        `save_checkpoints_steps` / `save_checkpoints_secs` (unless
        `save_steps` / `save_secs` is given).
      external_state_policy: 'fail' (default, also for None), 'warn' or
        'ignore': what to do when the pipeline depends on external state.
      checkpoint_dir: the directory, when there is no estimator.
      task_type: with `task_id`, when there is no estimator: this task's job
        in a multi-worker cluster (e.g. 'worker'); its files are then
        `input_<task_type>_<task_id>.ckpt-<step>`. Neither given: taken from
        `TF_CONFIG` when its cluster has more than one chief/worker task.
      task_id: this task's index in its job.
      save_steps: save every this many global steps.
      save_secs: save every this many seconds. Without an estimator exactly
        one of `save_steps` / `save_secs` must be given.
      max_to_keep: committed checkpoints to keep; None or 0 keeps all.
      num_shards: shard files per iterator and checkpoint; None picks from
        size and cores.
      async_save: write in the background.
      fsync: make each checkpoint durable before it commits.
      clock: time source in seconds for `save_secs` (for tests);
        `time.monotonic` by default.
      on_corrupt: 'raise' (default): a damaged checkpoint (or state file)
        fails the first step with `tf.errors.DataLossError` (or
        `NotFoundError` for a missing shard) naming the file. 'fallback':
        restore the newest checkpoint that is not damaged (never one newer
        than the model's step), logging each one skipped and why; if none is
        left, start over with a warning. See `restore_policy`.
      preemption_signals: signals that mean pre-emption, e.g.
        `(signal.SIGTERM,)`; none by default (nothing is installed).
      incremental: a save writes only the tensors (buffered elements) that
        the previous checkpoint of this hook does not hold; the rest are
        references into that checkpoint's shards (docs/INCREMENTAL.md).
        False writes every tensor each time.
      on_busy: what a due save does while the previous background write is
        still running: 'wait' (default) for it, holding the step, or 'skip'
        (logged): the input checkpoint of that step is then missing, and a
        restart from the model checkpoint of that step restores the input
        checkpoint before it (with a warning: those elements are seen again).
        The final save in `end()` and pre-emption saves always wait.

    Raises:
      ValueError: on a bad argument, naming it; from `begin()`, when
        `preemption_signals` are given and it runs outside the main thread.
      tf.errors.FailedPreconditionError: (at the first step) another process,
        or another live hook or manager of this process, writes checkpoints
        of the same basename into the same local directory. This hook lets
        the name go at `end()`, or once its session is closed (a failed
        session skips `end()`), or when garbage-collected.
    """

    def __init__(
        self,
        estimator: Any = None,
        external_state_policy: str | None = "fail",
        *,
        checkpoint_dir: str | None = None,
        task_type: str | None = None,
        task_id: int | None = None,
        save_steps: int | None = None,
        save_secs: float | None = None,
        max_to_keep: int | None = 5,
        num_shards: int | None = None,
        async_save: bool = True,
        fsync: bool = True,
        clock: Clock | None = None,
        on_corrupt: str = "raise",
        preemption_signals: Sequence[int] = (),
        incremental: bool = True,
        on_busy: str = "wait",
    ) -> None:
        self._on_corrupt = restore_policy.check_on_corrupt(on_corrupt)
        self._on_busy = check_on_busy(on_busy)
        self._incremental = arguments.boolean("incremental", incremental)
        self._preemption = preemption.PreemptionWatcher(
            preemption_signals, owner="CheckpointInputPipelineHook"
        )
        if external_state_policy is None:
            external_state_policy = "fail"
        iterator_state.external_state_policy_value(external_state_policy)
        iterator_state.check_num_shards(num_shards)
        check_max_to_keep(max_to_keep)
        if estimator is not None:
            if checkpoint_dir is not None:
                raise ValueError(
                    "checkpoint_dir must not be set with an estimator: its model_dir is used"
                )
            if task_type is not None or task_id is not None:
                raise ValueError(
                    "task_type / task_id must not be set with an estimator: its config is used"
                )
            config = getattr(estimator, "config", None) or estimator._config
            checkpoint_dir = estimator.model_dir
            if save_steps is None and save_secs is None:
                save_steps = config.save_checkpoints_steps
                save_secs = config.save_checkpoints_secs
                if save_steps is None and save_secs is None:
                    raise ValueError(
                        "save_steps / save_secs: the estimator's config sets neither "
                        "save_checkpoints_steps nor save_checkpoints_secs; pass one of them"
                    )
            task = multi_worker.task_from_estimator_config(config)
        elif checkpoint_dir is None:
            raise ValueError("checkpoint_dir must be set when no estimator is given")
        else:
            task = multi_worker.task_from_arguments(task_type, task_id)
        checkpoint_prefix = task.prefix
        checkpoint_dir = os.fspath(checkpoint_dir)
        if not checkpoint_dir:
            raise ValueError("checkpoint_dir must not be empty")
        self._policy = SavePolicy(save_steps, save_secs, clock=clock)
        self._checkpoint_dir = checkpoint_dir
        self._checkpoint_prefix = checkpoint_prefix
        self._is_chief = task.is_chief
        self._latest_filename = layout.latest_filename_for(checkpoint_prefix)
        self._max_to_keep = max_to_keep
        self._external_state_policy = external_state_policy
        self._num_shards = num_shards
        self._async_save = bool(async_save)
        self._fsync = bool(fsync)
        self._graph: tf.Graph | None = None
        self._writes: CheckpointWrites | None = None
        self._first_run = True
        self._ran_a_step = False
        self._skipped_step: int | None = None  # a due save skipped (on_busy='skip')

    @property
    def checkpoint_dir(self) -> str:
        """The directory of the input checkpoints."""
        return self._checkpoint_dir

    @property
    def latest_filename(self) -> str:
        """The name of the state file, e.g. `checkpoint_input`."""
        return self._latest_filename

    @property
    def checkpoint_basename(self) -> str:
        """The checkpoint file name before `-<step>`, e.g. `input.ckpt`."""
        return layout.basename_for(self._checkpoint_prefix)

    @property
    def preempted(self) -> bool:
        """Whether one of `preemption_signals` arrived (the training run then stops)."""
        return self._preemption.requested

    @property
    def seconds_to_preemption_commit(self) -> float | None:
        """Seconds from the pre-emption signal to the commit of its checkpoint, or None."""
        return self._preemption.seconds_to_commit

    def begin(self) -> None:
        # Before the session is created (restoring a model can take long): a
        # signal from now on is a request to save, not an immediate end.
        self._preemption.install()
        graph = tf.compat.v1.get_default_graph()
        if self._graph is graph:
            return  # Built already; a second begin() must not change the graph.
        iterators = graph.get_collection(ITERATORS_COLLECTION)
        if not iterators:
            raise ValueError(
                "CheckpointInputPipelineHook found no iterator in the graph collection "
                f"{ITERATORS_COLLECTION!r}: the input must come from a tf.data iterator"
            )
        self._global_step = tf.compat.v1.train.get_global_step(graph)
        if self._global_step is None:
            raise RuntimeError("Global step should be created to use CheckpointInputPipelineHook.")
        retention = CheckpointRetention(
            self._checkpoint_dir,
            self.checkpoint_basename,
            latest_filename=self._latest_filename,
            max_to_keep=self._max_to_keep,
            num_parts=len(iterators),
        )
        self._writes = CheckpointWrites(
            retention,
            asynchronous=self._async_save,
            writer="CheckpointInputPipelineHook",
            remedy=(
                "One CheckpointInputPipelineHook saves every iterator of its graph: use one "
                "per training session, or give each its own checkpoint_dir. "
            ),
            incremental=self._incremental,
        )
        self._save_prefixes = []
        self._save_ops = []
        self._restore_prefixes = []
        with graph.as_default(), tf.compat.v1.name_scope("CheckpointInputPipelineHook"):
            for i, iterator in enumerate(iterators):
                save_prefix = tf.compat.v1.placeholder(tf.string, [], name=f"save_prefix_{i}")
                self._save_prefixes.append(save_prefix)
                restore_prefix = tf.compat.v1.placeholder(tf.string, [], name=f"restore_prefix_{i}")
                self._restore_prefixes.append(restore_prefix)
                # On the iterator's own task in a distributed session: the
                # iterator state (a variant) cannot be sent to another process.
                with graph.colocate_with(iterator):
                    self._save_ops.append(
                        iterator_state.save_iterator(
                            iterator,
                            save_prefix,
                            external_state_policy=self._external_state_policy,
                            num_shards=self._num_shards,
                            fsync=self._fsync,
                            asynchronous=self._async_save,
                            incremental_key=self._writes.incremental_keys[i],
                        )
                    )
            self._restore_op = atomic_restore.build_graph_restore(
                iterators, self._restore_prefixes
            )
            self._tf_bundle_restore = tf_bundle_checkpoints.TFBundleRestore(iterators)
        self._graph = graph

    def after_create_session(self, session: Any, coord: Any) -> None:
        # Restoring waits for the first before_run(): other hooks' after_create_session
        # (e.g. Estimator's dataset initializer hook) must have run first.
        del coord
        self._first_run = True
        # A session that fails skips end(): once it is closed (or gone) this
        # hook is over, and a hook built to carry on may take the name over.
        session_ref = weakref.ref(session)
        self._writes.set_finished_probe(lambda: _session_over(session_ref))

    def before_run(self, run_context: Any) -> Any:
        if self._first_run:
            self._restore_or_save_initial(run_context.session)
            self._first_run = False
            self._ran_a_step = True
        return tf.compat.v1.train.SessionRunArgs(self._global_step)

    def after_run(self, run_context: Any, run_values: Any) -> None:
        if self._preemption.requested:
            self._save_for_preemption(run_context)
            return
        # Raises a background write failure at the step after it happened.
        self._writes.poll()
        stale_global_step = run_values.results
        if self._policy.should_save(stale_global_step + 1):
            # The fetched value may predate the train op; read it again.
            global_step = run_context.session.run(self._global_step)
            if not self._policy.should_save(global_step):
                return
            if skips_when_busy(self._on_busy, self._writes.busy()):
                logger.info(
                    "Skipping the input checkpoint of step %d: the write of step %d is still "
                    "running (on_busy='skip').", global_step, self._writes.pending_step)
                self._policy.record_save(int(global_step))
                self._skipped_step = int(global_step)
                return
            self._save(run_context.session, global_step)

    def end(self, session: Any) -> None:
        try:
            if self._ran_a_step:
                last_step = session.run(self._global_step)
                if last_step != self._policy.last_saved_step or last_step == self._skipped_step:
                    self._save(session, last_step)
            else:
                # Without a before_run() nothing was restored: saving would
                # overwrite a good checkpoint with a fresh pipeline.
                logger.info("No step ran; not saving the input pipeline.")
        finally:
            try:
                self._writes.release()
            finally:
                self._preemption.release()

    def _save_for_preemption(self, run_context: Any) -> None:
        if self._preemption.committed_prefix is None:
            session = run_context.session
            preemption.save_on_preemption(
                self._preemption,
                self._writes,
                int(session.run(self._global_step)),
                lambda prefixes: self._start_save(session, prefixes),
                last_saved_step=self._policy.last_saved_step,
                on_saved=self._policy.record_save,
            )
        # Saved first, then stopped: end() finds this step saved, and the
        # model's CheckpointSaverHook saves the same step in its end().
        run_context.request_stop()

    def _restore_or_save_initial(self, session: Any) -> None:
        self._writes.wait()
        # Before restoring: a second job writing here fails before it reads.
        self._writes.claim()
        retention = self._writes.retention
        global_step = int(session.run(self._global_step))

        def restore(step: int) -> None:
            logger.info("Restoring input pipeline checkpoint %s.", retention.prefix(step))
            atomic_restore.run_graph_restore(
                session,
                self._restore_op,
                {
                    placeholder: retention.part_prefix(step, part)
                    for part, placeholder in enumerate(self._restore_prefixes)
                },
                retention.prefix(step),
            )

        # In a model directory the session restored the model to global_step.
        model_step = global_step if tf.train.latest_checkpoint(self._checkpoint_dir) else None
        restored = restore_policy.restore_newest_good(
            retention,
            restore,
            on_corrupt=self._on_corrupt,
            model_step=model_step,
            is_chief=self._is_chief,
        )
        if restored is not None or (
            not retention.committed_steps() and self._migrate_tf_checkpoint(session, model_step)
        ):
            self._policy.record_save(global_step)
        else:
            self._save(session, global_step)

    def _migrate_tf_checkpoint(self, session: Any, model_step: int | None) -> bool:
        """Restores from a checkpoint of TF's own hook, if there is one to use."""
        checkpoint = tf_bundle_checkpoints.choose_tf_bundle_checkpoint(
            tf_bundle_checkpoints.list_tf_bundle_checkpoints(
                self._checkpoint_dir, self.checkpoint_basename, self._latest_filename
            ),
            model_step,
        )
        if checkpoint is None:
            return False
        logger.warning(
            "Migrating: restoring the input pipeline from %s, written by TensorFlow's own "
            "CheckpointInputPipelineHook; new checkpoints are saved in tfdata-checkpoint's "
            "format, and TF's files are left in place.",
            checkpoint.prefix,
        )
        self._tf_bundle_restore.restore(session, checkpoint)
        return True

    def _save(self, session: Any, step: Any) -> None:
        step = int(step)
        self._skipped_step = None
        self._policy.record_save(step)
        self._writes.save(step, lambda prefixes: self._start_save(session, prefixes))

    def _start_save(self, session: Any, prefixes: Sequence[str]) -> None:
        session.run(self._save_ops, feed_dict=dict(zip(self._save_prefixes, prefixes)))


def _session_over(session_ref: weakref.ref) -> bool:
    """Whether the session (a `tf.compat.v1.Session`) was closed or collected."""
    session = session_ref()
    return session is None or bool(getattr(session, "_closed", False))
