"""Pre-emption and object-store benchmark: signal to commit, and ours against tf.train.Checkpoint.

    python -m tfdata_checkpoint.tools.bench.preemption --dir DIR [--buffer-mib 1024]

DIR is a local directory or any TensorFlow filesystem URL (gs://, s3://); for the
emulated gs:// of the test suite run it inside its network namespace (see
bench/preemption.md). Two measurements, one JSON line each:

- `signal_to_commit`: a MonitoredTrainingSession job (a fresh process) trains on
  a shuffle buffer of `buffer_mib` MiB in 4 MiB elements with
  `CheckpointInputPipelineHook(preemption_signals=(SIGTERM,))`; once the buffer
  is full it gets SIGTERM. Reported: the hook's own time from the signal to
  the commit of the input checkpoint (`seconds_to_preemption_commit`), and the
  time from `kill()` to the job's exit (the model's save and teardown
  included), medians over `repeats` jobs.
- `save_vs_tf`: on one iterator holding that buffer, a synchronous save of
  ours (without fsync, as TF writes) for each shard count against
  `tf.train.Checkpoint(iterator=...).write` into the same directory, and ours
  with fsync at the best shard count; medians, and TF's time over ours.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid

ELEMENT_FLOATS = 1024 * 1024  # 4 MiB of float32 per element


def _dataset(buffer_mib: int):
    import tensorflow as tf

    elements = max(1, buffer_mib // 4)
    return (
        tf.data.Dataset.range(10**9)
        # Incompressible: TF's iterator checkpoint compresses (snappy) what it writes.
        .map(lambda x: tf.random.stateless_uniform(
            [ELEMENT_FLOATS], seed=tf.stack([x, tf.constant(7, tf.int64)])))
        .shuffle(elements, seed=1)
    )


def _job(directory: str, buffer_mib: int) -> None:
    """The signalled job: prints READY once the buffer is full, then JSON after the stop."""
    import tensorflow as tf

    import tfdata_checkpoint as tc

    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        element = tf.compat.v1.data.make_one_shot_iterator(_dataset(buffer_mib)).get_next()
        train_op = tf.group(global_step.assign_add(1), tf.reduce_sum(element[:1]))
        hook = tc.CheckpointInputPipelineHook(
            checkpoint_dir=directory, save_steps=10**6, preemption_signals=(signal.SIGTERM,))
        with tf.compat.v1.train.MonitoredTrainingSession(
            checkpoint_dir=directory, save_checkpoint_steps=10**6, hooks=[hook],
            save_summaries_steps=None, save_summaries_secs=None, log_step_count_steps=None,
        ) as session:
            steps = 0
            while not session.should_stop():
                session.run(train_op)
                steps += 1
                if steps == 3:  # the buffer filled at the first step; the initial save is done
                    print("READY", flush=True)
                time.sleep(0.01)
        print(json.dumps({"steps": steps,
                          "seconds_to_commit": hook.seconds_to_preemption_commit}), flush=True)


def signal_to_commit(directory: str, buffer_mib: int, repeats: int) -> dict:
    commits, exits = [], []
    for _ in range(repeats):
        run_dir = f"{directory.rstrip('/')}/preempt-{uuid.uuid4().hex[:8]}"
        child = subprocess.Popen(
            [sys.executable, "-m", "tfdata_checkpoint.tools.bench.preemption", "--job",
             "--dir", run_dir, "--buffer-mib", str(buffer_mib)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if child.stdout.readline().strip() != "READY":
            child.kill()
            raise RuntimeError("the benchmark job did not start")
        time.sleep(0.5)
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=600)
        exits.append(time.monotonic() - sent)
        if child.returncode != 0:
            raise RuntimeError(f"the benchmark job ended with {child.returncode}")
        commits.append(json.loads(out.strip().splitlines()[-1])["seconds_to_commit"])
    return {"measure": "signal_to_commit", "dir": directory, "buffer_mib": buffer_mib,
            "repeats": repeats, "signal_to_input_commit_s": statistics.median(commits),
            "signal_to_exit_s": statistics.median(exits), "all_commit_s": commits,
            "all_exit_s": exits}


def save_vs_tf(directory: str, buffer_mib: int, repeats: int, shard_counts: list[int]) -> dict:
    import tensorflow as tf

    import tfdata_checkpoint as tc

    iterator = iter(_dataset(buffer_mib))
    next(iterator)  # fills the buffer
    base = f"{directory.rstrip('/')}/save-{uuid.uuid4().hex[:8]}"
    tf.io.gfile.makedirs(base)
    def timed_save(shards: int, fsync: bool, tag: str) -> float:
        times = []
        for r in range(repeats):
            prefix = f"{base}/ours-{tag}-{shards}-{r}/input.ckpt-1"
            started = time.perf_counter()
            tc.save_iterator(iterator, prefix, num_shards=shards, fsync=fsync)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    # Without fsync, as tf.train.Checkpoint writes; then the best count with fsync
    # (on gs:// a sync is the upload itself, so the two should match there).
    ours = {shards: timed_save(shards, False, "nofsync") for shards in shard_counts}
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    tf_times = []
    for r in range(repeats):
        started = time.perf_counter()
        checkpoint.write(f"{base}/tf-{r}/ckpt")
        tf_times.append(time.perf_counter() - started)
    tf_median = statistics.median(tf_times)
    best = min(ours, key=ours.get)
    return {"measure": "save_vs_tf", "dir": directory, "buffer_mib": buffer_mib,
            "repeats": repeats, "tf_write_s": tf_median,
            "ours_s_by_shards": {str(k): v for k, v in ours.items()},
            "ours_fsync_best_shards_s": timed_save(best, True, "fsync"),
            "best_shards": best, "ratio_tf_over_ours_best": tf_median / ours[best],
            "ours_best_mib_per_s": buffer_mib / ours[best], "tf_mib_per_s": buffer_mib / tf_median}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--buffer-mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shards", default="1,2,4,8,16")
    parser.add_argument("--only", choices=["signal", "save"], default=None)
    parser.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        _job(args.dir, args.buffer_mib)
        return 0
    if args.only in (None, "signal"):
        print(json.dumps(signal_to_commit(args.dir, args.buffer_mib, args.repeats)), flush=True)
    if args.only in (None, "save"):
        shards = [int(s) for s in args.shards.split(",")]
        print(json.dumps(save_vs_tf(args.dir, args.buffer_mib, args.repeats, shards)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
