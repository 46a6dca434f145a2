"""SIGKILL at random moments during saves: the latest checkpoint always survives.

60 trials (20 synchronous manager, 20 background manager, 20 hook with two
iterators and background writes). Each trial is a real process, saving a
checkpoint per step back to back, SIGKILLed a random delay after its first
commit (workers/kill_zygote.py forks the processes). Afterwards, for every trial:

- every committed checkpoint in the directory verifies (every checksum);
- the state file is undamaged;
- the latest checkpoint restores, and the restored iterators yield exactly
  what an uninterrupted pipeline yields after that step;
- the files of the killed save are not a checkpoint, and the next save
  removes them: afterwards every file of the basename belongs to a
  committed checkpoint (its own, or referenced by it: saves are incremental).

The delays are seeded: TFDC_KILL_SEED=<seed> reruns the same trials (the seed
is printed, and in every failure message).
"""

from __future__ import annotations

import json
import os
import random
import re
import time

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.kill_pipeline import make_dataset
from tests.support.subprocesses import run_trials
from tfdata_checkpoint._src import atomic_restore
from tfdata_checkpoint._src.background_writes import CheckpointWrites
from tfdata_checkpoint._src.iterator_state import save_iterator
from tfdata_checkpoint._src.retention import CheckpointRetention
from tfdata_checkpoint._src.storage import state_file

TRIALS_PER_MODE = {"sync": 20, "async": 20, "hook": 20}
MAX_DELAY_S = 0.4
PARALLEL = 3
BASENAME = "input.ckpt"
LATEST = "checkpoint_input"
FOLLOWING = 4  # elements compared after the restored step


def _files_not_of_a_committed_checkpoint(retention: CheckpointRetention) -> list[str]:
    """Files of the basename that no committed checkpoint's index references.

    A checkpoint references its own shards, and (incremental saves) shards of
    earlier checkpoints, deleted or not, that hold tensors it did not write again.
    """
    stray = []
    for part in range(retention.num_parts):
        directory = retention.part_directory(part)
        needed = set()
        for step in retention.committed_steps():
            info = json.loads(tc.ops.describe_iterator_shards(
                retention.part_prefix(step, part)).numpy())
            needed |= {s["name"] for s in info["shards"]}
            needed |= set(info.get("referenced_files", []))
        for name in tf.io.gfile.listdir(directory):
            match = re.fullmatch(re.escape(BASENAME) + r"-(\d+)\.(.*)", name)
            if not match:
                continue
            step, rest = int(match.group(1)), match.group(2)
            if rest.startswith("data-"):
                if name not in needed:
                    stray.append(name)
            elif rest != "index" or not retention.is_committed(step):
                stray.append(name)
    names = tf.io.gfile.listdir(retention.directory)
    stray += [n for n in names if n.startswith(LATEST) and n != LATEST]
    return stray


def _ids(iterator, n):
    out = []
    for _ in range(n):
        element_id, payload = next(iterator)
        # The payload is derived from the id: a mixed-up buffer would show.
        assert float(payload[0]) == float(payload[-1])
        out.append(int(element_id))
    return out


def _expected(index: int, step: int) -> list[int]:
    baseline = iter(make_dataset(index))
    ids = [int(next(baseline)[0]) for _ in range(step + FOLLOWING)]
    return ids[step:]


def _check_trial(trial: dict, seed: int) -> tuple[bool, bool]:
    """Checks one killed trial's directory.

    Returns whether the kill hit a write, and whether the latest checkpoint is
    incremental (reads shards of earlier ones).
    """
    where = f"seed {seed}, trial {trial}"
    parts = 2 if trial["mode"] == "hook" else 1
    retention = CheckpointRetention(trial["dir"], BASENAME, latest_filename=LATEST,
                                    max_to_keep=3, num_parts=parts)
    leftovers = _files_not_of_a_committed_checkpoint(retention)
    steps = retention.committed_steps()
    assert steps, f"no committed checkpoint survived: {where}"
    incremental = bool(json.loads(tc.ops.describe_iterator_shards(
        retention.prefix(steps[-1])).numpy()).get("referenced_files"))
    for step in steps:
        for part in range(parts):
            tc.ops.describe_iterator_shards(retention.part_prefix(step, part), verify=True)
    state_file.read(trial["dir"], LATEST, strict=True)

    iterators = [iter(make_dataset(i)) for i in range(parts)]
    latest = steps[-1]
    assert max(steps) == latest, f"latest is not the newest step {steps}: {where}"
    atomic_restore.restore_eagerly(
        iterators, [retention.part_prefix(latest, p) for p in range(parts)]
    )
    for i, iterator in enumerate(iterators):
        assert _ids(iterator, FOLLOWING) == _expected(i, latest), where

    # The next save (a restarted job's first) removes what the kill left.
    writes = CheckpointWrites(retention, asynchronous=trial["mode"] != "sync")

    def start(prefixes):
        for iterator, prefix in zip(iterators, prefixes):
            save_iterator(iterator, prefix, num_shards=2, asynchronous=trial["mode"] != "sync")

    writes.save(latest + FOLLOWING, start)
    writes.release()
    assert _files_not_of_a_committed_checkpoint(retention) == [], where
    assert retention.latest() == retention.prefix(latest + FOLLOWING), where
    return bool(leftovers), incremental


def test_sigkill_during_saves_never_loses_the_latest_checkpoint(tmp_path):
    seed = int(os.environ.get("TFDC_KILL_SEED", time.time_ns() % 1_000_000))
    print(f"SIGKILL trials: TFDC_KILL_SEED={seed}")
    rng = random.Random(seed)
    trials = []
    for mode, count in TRIALS_PER_MODE.items():
        for _ in range(count):
            trial_id = len(trials)
            trials.append({"id": trial_id, "mode": mode, "dir": str(tmp_path / f"t{trial_id}"),
                           "delay": round(rng.uniform(0.0, MAX_DELAY_S), 4)})
    rng.shuffle(trials)  # modes mixed in the parallel batches
    reports = {r["id"]: r for r in run_trials("kill_zygote", trials, PARALLEL, tmp_path,
                                              timeout=900, what=f"seed {seed}")}
    by_id = {t["id"]: t for t in trials}
    for trial_id, report in reports.items():
        assert report.get("killed"), f"seed {seed}: {by_id[trial_id]}: {report}"
    assert len(reports) == len(trials)

    mid_write = {mode: 0 for mode in TRIALS_PER_MODE}
    incremental = {mode: 0 for mode in TRIALS_PER_MODE}
    for trial in sorted(trials, key=lambda t: t["id"]):
        hit_a_write, latest_incremental = _check_trial(trial, seed)
        mid_write[trial["mode"]] += hit_a_write
        incremental[trial["mode"]] += latest_incremental
    print(f"SIGKILL trials: {len(trials)} run ({TRIALS_PER_MODE}), {len(trials)} killed, "
          f"killed mid-write (leftover files found) {mid_write}, "
          f"latest checkpoint incremental {incremental}, "
          f"latest restored and verified {len(trials)}, lost 0")
    # Saves run back to back, so most kills land inside a write; if none
    # did, the trials would not test what they claim to.
    assert sum(mid_write.values()) > 0, f"seed {seed}: no kill landed mid-write"
    # The writers save incrementally (their default): the trials must have
    # killed such saves and restored such checkpoints, in every mode.
    assert all(incremental.values()), f"seed {seed}: no incremental checkpoint in {incremental}"


def test_restored_payloads_match(tmp_path):
    """The comparison above is not vacuous: a wrong restore would be seen."""
    iterator = iter(make_dataset(0))
    _ids(iterator, 5)
    prefix = str(tmp_path / "ckpt")
    tc.save_iterator(iterator, prefix)
    other = iter(make_dataset(0))
    tc.restore_iterator(other, prefix)
    assert _ids(other, FOLLOWING) == _expected(0, 5)
    assert _ids(iter(make_dataset(0)), FOLLOWING) != _expected(0, 5)
