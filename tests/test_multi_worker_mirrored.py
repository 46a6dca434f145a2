"""MultiWorkerMirroredStrategy on a loopback cluster: the per-worker input pattern, killed and resumed.

Two worker processes (`mwms_worker.py`, `TF_CONFIG` on 127.0.0.1) train in
lockstep (an all-reduce per step), each on a plain iterator over its own shard,
checkpointed under its task's own names. Worker 1 is SIGKILLed mid-run, then
the job is restarted (worker 0, stuck in the collective, is killed too, as a
job restart does); every worker resumes from the newest step all workers
committed and its batches from there on equal its uninterrupted stream.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from tests.support.mwms_pipeline import make_dataset
from tests.support.ports import free_loopback_ports
from tests.support.subprocesses import child_env, worker_command

STEPS, SAVE_STEPS = 80, 6
DEADLINE_S = 180


def start_job(directory: Path, records: list[Path], sleep_s: float) -> list[subprocess.Popen]:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_loopback_ports(2)]}
    processes = []
    for task_id in range(2):
        env = child_env(TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": task_id}}))
        processes.append(subprocess.Popen(
            worker_command("mwms_worker", directory, records[task_id], STEPS, SAVE_STEPS,
                           sleep_s),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    return processes


def read(record: Path) -> dict[int, list[int]]:
    out = {}
    if record.exists():
        for line in record.read_text().splitlines():
            if line.endswith("}"):
                entry = json.loads(line)
                out[entry["step"]] = entry["ids"]
    return out


def committed(directory: Path, task_id: int) -> list[int]:
    name = f"input_worker_{task_id}.ckpt-"
    if not directory.exists():
        return []
    return sorted(int(n[len(name):-len(".index")]) for n in os.listdir(directory)
                  if n.startswith(name) and n.endswith(".index"))


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_killed_worker_then_restarted_job_resumes_every_worker_exactly(tmp_path):
    directory = tmp_path / "model_dir"
    first = [tmp_path / "first0", tmp_path / "first1"]
    second = [tmp_path / "second0", tmp_path / "second1"]
    job = start_job(directory, first, sleep_s=0.05)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not (all(len(committed(directory, t)) >= 2 for t in range(2))
                   and len(read(first[1])) > max(committed(directory, 1)) + 2):
            for process in job:
                if process.poll() is not None:
                    raise AssertionError(f"worker ended early:\n{process.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "no checkpoints in time"
            time.sleep(0.05)
        job[1].send_signal(signal.SIGKILL)
        job[1].wait()
        assert job[1].returncode == -signal.SIGKILL
    finally:
        stop(job)  # worker 0 waits in the all-reduce: the job restarts as a whole
    assert len(read(first[1])) < STEPS

    job = start_job(directory, second, sleep_s=0.0)
    try:
        for process in job:
            process.wait(timeout=DEADLINE_S)
            assert process.returncode == 0, process.stderr.read()[-3000:]
    finally:
        stop(job)

    starts = []
    for task_id in range(2):
        stream = [batch.tolist() for batch in make_dataset(task_id).take(STEPS).as_numpy_iterator()]
        before, after = read(first[task_id]), read(second[task_id])
        for step, ids in before.items():
            assert ids == stream[step], (task_id, step)
        start = min(after)
        starts.append(start)
        assert 0 < start <= len(before)
        assert sorted(after) == list(range(start, STEPS))
        for step in range(start, STEPS):
            assert after[step] == stream[step], (task_id, step)
        np.testing.assert_array_equal(
            [i % 2 for batch in after.values() for i in batch], task_id)  # its own shard
    assert starts[0] == starts[1]  # the job restarted at one step
