"""MirroredStrategy on 2 logical CPUs, its input checkpointed by IteratorCheckpointManager.

    python distributed_child.py run DIR RECORD STEPS SAVE_STEPS FAIL_AT STEP_SLEEP_S
    python distributed_child.py refusals DIR          (prints one JSON line)
    python distributed_child.py fewer_replicas DIR    (prints one JSON line)
    python distributed_child.py trackable_run DIR RECORD STEPS SAVE_STEPS STEP_SLEEP_S
    python distributed_child.py trackable_refusals DIR  (prints one JSON line)

`run` builds the PER_REPLICA distributed dataset (`make_dataset`), restores
the newest input checkpoint in DIR (if any), and trains until STEPS: each step
calls `next()` on the distributed iterator inside a `tf.function` running
`strategy.run`, then appends `{"step", "replicas"}` (each replica's batch) to
RECORD, flushed, then `maybe_save(step + 1)`. FAIL_AT >= 0 raises at that
step (a failed job); the test SIGKILLs it otherwise. Ends itself after
MAX_LIFETIME_S so that none outlives a dead test.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from tests.support.subprocesses import exit_after

MAX_LIFETIME_S = 240


def set_up_devices() -> tf.distribute.MirroredStrategy:
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


PER_REPLICA = tf.distribute.InputOptions(
    experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA,
    experimental_fetch_to_device=False,
)


def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
    """Each replica's own shard: a seeded shuffle, a map and a prefetch buffer."""
    return (
        tf.data.Dataset.range(100_000)
        .shard(context.num_input_pipelines, context.input_pipeline_id)
        .shuffle(64, seed=7)
        .map(lambda x: x * 10 + tf.cast(context.input_pipeline_id, tf.int64))
        .batch(4)
        .prefetch(3)
    )


def make_iterator(strategy: tf.distribute.Strategy) -> tf.distribute.DistributedIterator:
    return iter(strategy.distribute_datasets_from_function(dataset_fn, PER_REPLICA))


def one_replica_iterator() -> tf.distribute.DistributedIterator:
    return iter(tf.distribute.MirroredStrategy(["/cpu:0"]).distribute_datasets_from_function(
        dataset_fn, PER_REPLICA))


def value_error_of(call) -> dict:
    """{"error": "ValueError", "message": ...} if `call()` raises one, else {"error": None}."""
    try:
        call()
    except ValueError as error:
        return {"error": "ValueError", "message": str(error)}
    return {"error": None}


def run(directory: str, record: str, steps: int, save_steps: int, fail_at: int,
        sleep_s: float) -> None:
    import tfdata_checkpoint as tc

    strategy = set_up_devices()
    iterator = make_iterator(strategy)
    manager = tc.IteratorCheckpointManager(iterator, directory, save_steps=save_steps)
    restored = manager.restore_or_initialize()
    start = 0 if restored is None else int(restored.rsplit("-", 1)[1])

    @tf.function
    def train_step(it):
        return strategy.run(lambda batch: tf.identity(batch), args=(next(it),))

    with open(record, "a") as out:
        for step in range(start, steps):
            if step == fail_at:
                raise RuntimeError(f"failing at step {step} as asked")
            values = strategy.experimental_local_results(train_step(iterator))
            out.write(json.dumps({"step": step, "replicas": [v.numpy().tolist() for v in values]})
                      + "\n")
            out.flush()
            manager.maybe_save(step + 1)
            time.sleep(sleep_s)
    manager.save(steps)
    manager.wait()


def trackable_run(directory: str, record: str, steps: int, save_steps: int,
                  sleep_s: float) -> None:
    """As `run`, but the distributed iterator is in a tf.train.Checkpoint (TrackableIterator)
    with a model variable, saved by a CheckpointManager every SAVE_STEPS steps."""
    import tfdata_checkpoint as tc

    strategy = set_up_devices()
    iterator = make_iterator(strategy)
    trackable = tc.TrackableIterator(iterator)
    step_var = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(step=step_var, iterator=trackable)
    manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=2)
    manager.restore_or_initialize()
    start = int(step_var.numpy())

    @tf.function
    def train_step(it):
        return strategy.run(lambda batch: tf.identity(batch), args=(next(it),))

    with open(record, "a") as out:
        for step in range(start, steps):
            values = strategy.experimental_local_results(train_step(iterator))
            out.write(json.dumps({"step": step, "replicas": [v.numpy().tolist() for v in values]})
                      + "\n")
            out.flush()
            step_var.assign(step + 1)
            if (step + 1) % save_steps == 0:
                manager.save(checkpoint_number=step + 1)
            time.sleep(sleep_s)


def trackable_refusals(directory: str) -> None:
    """What TrackableIterator does with iterators it cannot save, and with other widths."""
    import tfdata_checkpoint as tc

    strategy = set_up_devices()
    dataset = tf.data.Dataset.range(1000).batch(4)
    result = {}
    multi_device = iter(strategy.experimental_distribute_dataset(dataset))
    next(multi_device)
    result["multi_device"] = value_error_of(lambda: tc.TrackableIterator(multi_device))
    two = make_iterator(strategy)
    next(two)
    prefix = tf.train.Checkpoint(iterator=tc.TrackableIterator(two)).write(
        os.path.join(directory, "two"))
    one = one_replica_iterator()
    before = next(one).numpy().tolist()
    result["fewer"] = value_error_of(
        lambda: tf.train.Checkpoint(iterator=tc.TrackableIterator(one)).read(prefix))
    # Refused before anything was restored: the iterator goes on where it was.
    result["fewer"]["next_after"] = next(one).numpy().tolist()
    reference = one_replica_iterator()
    result["fewer"]["expected"] = [next(reference).numpy().tolist() for _ in range(2)]
    result["fewer"]["first"] = before
    plain = iter(dataset)
    next(plain)
    plain_prefix = tf.train.Checkpoint(iterator=tc.TrackableIterator(plain)).write(
        os.path.join(directory, "plain"))
    three = make_iterator(strategy)
    result["more"] = value_error_of(
        lambda: tf.train.Checkpoint(iterator=tc.TrackableIterator(three)).read(plain_prefix))
    print(json.dumps(result))


def refusals(directory: str) -> None:
    import tfdata_checkpoint as tc

    strategy = set_up_devices()
    dataset = tf.data.Dataset.range(1000).batch(4)
    candidates = {
        "experimental_distribute_dataset": lambda: strategy.experimental_distribute_dataset(
            dataset),
        "experimental_distribute_dataset_no_fetch": lambda: (
            strategy.experimental_distribute_dataset(
                dataset, tf.distribute.InputOptions(experimental_fetch_to_device=False))),
        "distribute_datasets_from_function_default": lambda: (
            strategy.distribute_datasets_from_function(lambda ctx: dataset)),
        "one_device_strategy": lambda: tf.distribute.OneDeviceStrategy(
            "/cpu:0").experimental_distribute_dataset(dataset),
    }
    result = {}
    for name, make in candidates.items():
        iterator = iter(make())
        next(iterator)
        where = os.path.join(directory, name)
        result[name] = value_error_of(
            lambda it=iterator, where=where: tc.IteratorCheckpointManager(it, where))
        result[name]["files"] = (sorted(os.listdir(os.path.join(directory, name)))
                                 if os.path.exists(os.path.join(directory, name)) else [])
    print(json.dumps(result))


def fewer_replicas(directory: str) -> None:
    import tfdata_checkpoint as tc

    strategy = set_up_devices()
    two = make_iterator(strategy)
    next(two)
    tc.IteratorCheckpointManager(two, directory, async_save=False).save(1)
    one = one_replica_iterator()
    print(json.dumps(value_error_of(
        lambda: tc.IteratorCheckpointManager(one, directory).restore_or_initialize())))


def more_replicas(directory: str) -> None:
    """A checkpoint of one replica, met by a manager of two: refused, and never deleted."""
    import tfdata_checkpoint as tc

    strategy = set_up_devices()
    one = one_replica_iterator()
    next(one)
    tc.IteratorCheckpointManager(one, directory, async_save=False).save(1)
    two = make_iterator(strategy)
    outcome = value_error_of(
        lambda: tc.IteratorCheckpointManager(two, directory).restore_or_initialize())
    # A save of the two replicas (without restoring) must not take the
    # one-replica checkpoint for a killed save's leftovers.
    manager = tc.IteratorCheckpointManager(two, directory, async_save=False)
    manager.save(2)
    manager.close()
    outcome["files"] = sorted(os.listdir(directory))
    print(json.dumps(outcome))


if __name__ == "__main__":
    exit_after(MAX_LIFETIME_S)
    mode, *args = sys.argv[1:]
    if mode == "run":
        run(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), float(args[5]))
    elif mode == "trackable_run":
        trackable_run(args[0], args[1], int(args[2]), int(args[3]), float(args[4]))
    elif mode == "trackable_refusals":
        trackable_refusals(args[0])
    elif mode == "refusals":
        refusals(args[0])
    elif mode == "fewer_replicas":
        fewer_replicas(args[0])
    elif mode == "more_replicas":
        more_replicas(args[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
