"""Multi-worker training: which file prefix a task writes, and what it restores.

In TensorFlow's distributed runtime (between-graph replication with parameter
servers) every worker replica reads its own input pipeline, so each must save
and resume its own stream. They share one checkpoint directory (the model
directory), so each task writes under a prefix of its own:

    <dir>/input_<task_type>_<task_id>.ckpt-<global step>   (checkpoint files)
    <dir>/checkpoint_input_<task_type>_<task_id>           (its state file)

exactly as TensorFlow's own `CheckpointInputPipelineHook` names them. The
prefix is `input` alone when there is one worker replica.

The global step is shared: every worker advances it. So a task's checkpoints
carry global steps, not counts of its own elements, and a worker restarted on
its own (the parameter servers and the other workers went on) finds the global
step well past its newest input checkpoint. It then restores its newest input
checkpoint at or before the global step: its own newest one when it alone was
restarted, and, when the whole cluster restarted from a model checkpoint, the
newest one not newer than that model (elements may be read again, none is
skipped). This is the hook's usual rule (see `restore_policy`);
for a non-chief task, whose position the model step does not describe, a
difference between the two steps is expected and is logged as information, not
as a warning.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, NamedTuple

from tfdata_checkpoint._src import arguments
from tfdata_checkpoint._src.layout import DEFAULT_CHECKPOINT_PREFIX, task_checkpoint_prefix

logger = logging.getLogger(__name__)

# Task types whose process also saves the model (TF's RunConfig.is_chief).
CHIEF_TASK_TYPES = ("chief", "master")
# Jobs that run a training loop with an input pipeline: worker replicas.
_WORKER_REPLICA_JOBS = ("chief", "master", "worker")


class Task(NamedTuple):
    """This process's place in the cluster, as far as input checkpoints care."""

    prefix: str
    """File prefix, e.g. `input` or `input_worker_1`."""
    is_chief: bool
    """Whether this task's global step is the one the model was saved at."""


def task_from_estimator_config(config: Any) -> Task:
    """The task of an Estimator's `RunConfig` (TF's hook's rule)."""
    if config.num_worker_replicas > 1:
        prefix = task_checkpoint_prefix(config.task_type, config.task_id)
    else:
        prefix = DEFAULT_CHECKPOINT_PREFIX
    return Task(prefix, bool(getattr(config, "is_chief", True)))


def task_from_arguments(task_type: str | None, task_id: int | None) -> Task:
    """The task of a hook without an Estimator.

    Given `task_type` and `task_id`, the prefix is task-specific; given
    neither, it is derived from the `TF_CONFIG` environment variable as
    Estimator's `RunConfig` does (task-specific when its cluster has more than
    one chief/master/worker task), else `input`.

    Raises:
      ValueError: only one of `task_type` / `task_id` given, a bad value, or an
        unreadable `TF_CONFIG`.
    """
    if (task_type is None) != (task_id is None):
        raise ValueError("task_type and task_id must be given together (or neither)")
    if task_type is None:
        return task_from_tf_config(os.environ.get("TF_CONFIG", ""))
    if not isinstance(task_type, str) or not task_type or "/" in task_type:
        raise ValueError(f"task_type must be a job name such as 'worker', got {task_type!r}")
    task_id = arguments.integer("task_id", task_id, minimum=0)
    return Task(task_checkpoint_prefix(task_type, task_id), task_type in CHIEF_TASK_TYPES)


def task_from_tf_config(tf_config: str) -> Task:
    """The task described by a `TF_CONFIG` value ('' or '{}': a single worker).

    Raises:
      ValueError: `TF_CONFIG` is not JSON, or its task is incomplete.
    """
    if not tf_config.strip():
        return Task(DEFAULT_CHECKPOINT_PREFIX, True)
    try:
        parsed = json.loads(tf_config)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        # An environment variable's content, not an argument: a ValueError.
        raise ValueError("TF_CONFIG must be a JSON object")  # noqa: TRY004
    cluster = parsed.get("cluster") or {}
    replicas = sum(len(cluster.get(job) or ()) for job in _WORKER_REPLICA_JOBS)
    if replicas <= 1:
        return Task(DEFAULT_CHECKPOINT_PREFIX, True)
    task = parsed.get("task") or {}
    task_type, task_id = task.get("type"), task.get("index")
    if not task_type or task_id is None:
        raise ValueError(
            "TF_CONFIG describes a cluster of several workers but no task type and index; "
            "set its 'task', or pass task_type and task_id"
        )
    try:
        task_id = int(task_id)
    except (TypeError, ValueError):
        raise ValueError(f"TF_CONFIG: task index must be an int, got {task_id!r}") from None
    logger.info(
        "TF_CONFIG: %d worker replicas; this task (%s %d) writes input checkpoints as %s.",
        replicas,
        task_type,
        task_id,
        task_checkpoint_prefix(task_type, task_id),
    )
    return Task(task_checkpoint_prefix(task_type, task_id), task_type in CHIEF_TASK_TYPES)
