"""IteratorCheckpointManager with the iterator of a tf.distribute dataset.

MirroredStrategy over 2 logical CPU devices, in child processes
(`distributed_child.py`: the devices must be configured before TensorFlow
initialises them): a PER_REPLICA distributed iterator is saved as one
checkpoint of all replicas; a run killed (SIGKILL) or failed mid-way is
resumed by a fresh process from the newest committed checkpoint, and every
replica's batches from there on equal those of an uninterrupted run. The
iterators built on TF's MultiDeviceIterator are refused with a ValueError
naming the InputOptions that work, before anything is written. The same
distributed iterator inside a `tf.train.Checkpoint` (`TrackableIterator`,
saved by TF's CheckpointManager) resumes each replica exactly after SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.subprocesses import child_env, sigkill_when, worker_command

STEPS = 60
SAVE_STEPS = 7
DEADLINE_S = 180  # for each child; distributed_child.py's watchdog ends it anyway


def child(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [*worker_command("distributed_child"), *args], env=child_env(), capture_output=True,
        text=True, timeout=DEADLINE_S,
        check=False,
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"child {args} failed:\n{completed.stderr[-3000:]}")
    return completed


def records(path: Path) -> dict[int, list]:
    """Step -> each replica's batch, from a RECORD file (later lines win)."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.endswith("}"):  # a line cut by SIGKILL is not complete JSON
                entry = json.loads(line)
                out[entry["step"]] = entry["replicas"]
    return out


def committed_step(directory: Path) -> int | None:
    """The newest step whose every part has committed (its .index renamed into place).

    Not the state file: a background write can commit after it was last
    written (the run ended first), and the manager restores from the listing.
    """
    if not directory.exists():
        return None
    steps = [int(name[len("input.ckpt-"):-len(".index")]) for name in os.listdir(directory)
             if name.startswith("input.ckpt-") and name.endswith(".index")]
    steps = [s for s in steps
             if (directory / "input.ckpt.iterator1" / f"input.ckpt-{s}.index").exists()]
    return max(steps, default=None)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[int, list]:
    base = tmp_path_factory.mktemp("uninterrupted")
    child("run", str(base / "ckpt"), str(base / "record"), str(STEPS), str(SAVE_STEPS), "-1", "0")
    expected = records(base / "record")
    assert sorted(expected) == list(range(STEPS))
    return expected


def kill_mid_run(directory: Path, record: Path) -> int:
    """Starts a run, SIGKILLs it once a checkpoint has committed and more steps ran."""
    process = subprocess.Popen(
        [*worker_command("distributed_child"), "run", str(directory), str(record), str(STEPS),
         str(SAVE_STEPS), "-1", "0.05"], env=child_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )

    def committed_mid_run() -> bool:
        step = committed_step(directory)
        return step is not None and step >= 2 * SAVE_STEPS and len(records(record)) > step + 2

    sigkill_when(process, committed_mid_run, deadline_s=DEADLINE_S, what="committed checkpoint")
    seen = records(record)
    assert len(seen) < STEPS, "the run was killed mid-way"
    return len(seen)


@pytest.mark.parametrize("interruption", ["sigkill", "exception"])
def test_killed_or_failed_run_resumes_every_replica_exactly(tmp_path, uninterrupted,
                                                           interruption):
    directory, first, second = tmp_path / "ckpt", tmp_path / "first", tmp_path / "second"
    if interruption == "sigkill":
        kill_mid_run(directory, first)
    else:
        failed = child("run", str(directory), str(first), str(STEPS), str(SAVE_STEPS), "31", "0",
                       check=False)
        assert failed.returncode != 0 and "failing at step 31" in failed.stderr
    restored = committed_step(directory)
    assert restored is not None and 0 < restored < STEPS
    # Both replicas' parts of the restored checkpoint exist.
    assert (directory / f"input.ckpt-{restored}.index").exists()
    assert (directory / "input.ckpt.iterator1" / f"input.ckpt-{restored}.index").exists()
    before = records(first)
    for step, replicas in before.items():  # the interrupted run trained on the same stream
        assert replicas == uninterrupted[step], step

    child("run", str(directory), str(second), str(STEPS), str(SAVE_STEPS), "-1", "0")
    after = records(second)
    # The fresh process starts exactly at the restored step, each replica where it was.
    assert sorted(after) == list(range(restored, STEPS))
    for step in range(restored, STEPS):
        assert after[step] == uninterrupted[step], f"step {step}"
        assert len(after[step]) == 2


def test_multi_device_iterators_are_refused_before_anything_is_written(tmp_path):
    result = json.loads(child("refusals", str(tmp_path)).stdout.strip().splitlines()[-1])
    assert set(result) == {
        "experimental_distribute_dataset",
        "experimental_distribute_dataset_no_fetch",
        "distribute_datasets_from_function_default",
        "one_device_strategy",
    }
    for name, outcome in result.items():
        assert outcome["error"] == "ValueError", name
        message = outcome["message"]
        assert "MultiDeviceIterator" in message, name
        assert "experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA" in (
            message), name
        assert "experimental_fetch_to_device=False" in message, name
        assert "MultiWorkerMirroredStrategy" in message and "own shard" in message, name
        assert outcome["files"] == [], name


def test_checkpoint_of_more_replicas_is_refused(tmp_path):
    result = json.loads(child("fewer_replicas", str(tmp_path)).stdout.strip().splitlines()[-1])
    assert result["error"] == "ValueError"
    assert "more iterators (replicas) than the 1" in result["message"]
    assert os.path.join("input.ckpt.iterator1", "input.ckpt-1.index") in result["message"]


def test_checkpoint_of_fewer_replicas_is_refused_and_kept(tmp_path):
    """One replica's checkpoint is never listed by a manager of two (a part is missing):
    restoring says so instead of starting over, and a save does not delete it."""
    result = json.loads(child("more_replicas", str(tmp_path)).stdout.strip().splitlines()[-1])
    assert result["error"] == "ValueError", result
    assert "hold fewer iterators than the 2 (replicas) being restored" in result["message"]
    assert os.path.join(str(tmp_path), "input.ckpt-1") in result["message"]
    assert "input.ckpt-1.index" in result["files"], result["files"]
    assert any(n.startswith("input.ckpt-1.data-") for n in result["files"]), result["files"]


def tf_checkpoint_steps(directory: Path) -> list[int]:
    """Steps of the TF checkpoints `ckpt-<n>` whose index TF has written."""
    if not directory.exists():
        return []
    # Only `ckpt-<n>.index`: mid-save, TF 2.21 also has `ckpt-<n>-<saver name>...` files.
    matches = (re.fullmatch(r"ckpt-(\d+)\.index", name) for name in os.listdir(directory))
    return sorted(int(m.group(1)) for m in matches if m)


def test_trackable_iterator_of_replicas_resumes_every_replica_exactly(tmp_path, uninterrupted):
    directory, first, second = tmp_path / "ckpt", tmp_path / "first", tmp_path / "second"
    process = subprocess.Popen(
        [*worker_command("distributed_child"), "trackable_run", str(directory), str(first),
         str(STEPS), str(SAVE_STEPS), "0.05"], env=child_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )

    def committed_mid_run() -> bool:
        steps = tf_checkpoint_steps(directory)
        return bool(steps) and steps[-1] >= 2 * SAVE_STEPS and len(records(first)) > steps[-1] + 2

    sigkill_when(process, committed_mid_run, deadline_s=DEADLINE_S, what="TF checkpoint")
    assert len(records(first)) < STEPS, "the run was killed mid-way"
    for step, replicas in records(first).items():
        assert replicas == uninterrupted[step], step
    latest = (directory / "checkpoint").read_text()
    restored = max(tf_checkpoint_steps(directory))
    assert f'"ckpt-{restored}"' in latest.splitlines()[0]
    # One file set per replica, both named by the TF checkpoint.
    beside = [n for n in os.listdir(directory) if n.startswith(f"ckpt-{restored}.tfdc-")
              and n.endswith(".index")]
    assert sorted(n.rsplit("-", 1)[1] for n in beside) == ["0.index", "1.index"], beside

    child("trackable_run", str(directory), str(second), str(STEPS), str(SAVE_STEPS), "0")
    after = records(second)
    assert sorted(after) == list(range(restored, STEPS))
    for step in range(restored, STEPS):
        assert after[step] == uninterrupted[step], f"step {step}"
        assert len(after[step]) == 2
    # max_to_keep=2: only the kept TF checkpoints have our files, two parts each.
    kept = tf_checkpoint_steps(directory)
    assert len(kept) == 2, kept
    ours = sorted(n for n in os.listdir(directory) if ".tfdc-" in n and n.endswith(".index"))
    assert sorted({n.split(".tfdc-")[0] for n in ours}) == sorted(f"ckpt-{s}" for s in kept)
    assert len(ours) == 4, ours


def test_trackable_iterator_refuses_multi_device_iterators_and_other_widths(tmp_path):
    result = json.loads(child("trackable_refusals", str(tmp_path)).stdout.strip()
                        .splitlines()[-1])
    multi = result["multi_device"]
    assert multi["error"] == "ValueError", multi
    assert "MultiDeviceIterator" in multi["message"]
    assert "experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA" in (
        multi["message"])
    fewer = result["fewer"]
    assert fewer["error"] == "ValueError", fewer
    assert "holds the input state of 2 iterators (replicas)" in fewer["message"], fewer
    assert "this TrackableIterator has 1" in fewer["message"], fewer
    assert [fewer["first"], fewer["next_after"]] == fewer["expected"]
    more = result["more"]
    assert more["error"] == "ValueError", more
    assert "holds the input state of 1 iterators (replicas)" in more["message"], more
    assert "this TrackableIterator has 2" in more["message"], more
