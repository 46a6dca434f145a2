"""Stops a save at every step of its commit on gs://, for object_store_cases.py; not a test module.

Usage: python -m tests.workers.object_store_commit_trials BASE_URL RELAY_CONTROL_URL

Runs inside the test network namespace. Imports TensorFlow once, then forks:

- trial 0 (dry run): a job commits the checkpoint of step 5, then saves step
  8 (background write, 2 shards) while the relay counts the mutating requests
  (uploads, rewrites, deletes) of that save: its commit has T steps;
- trial k = 1..T: the same job, with the relay holding the k-th mutating
  request of the save of step 8 (never forwarded); once it is held, the job
  is SIGKILLed: the bucket is left as the commit was before its k-th step;
- trial T + 1: the save completes; the job is SIGKILLed afterwards.

After each kill a fresh job checks the bucket: which steps are committed
(only 5 and 8 may be), that each verifies and restores exactly the stream of
its step (compared with the uninterrupted pipeline), that a new manager
restores the newest, and that the next save leaves no file that belongs to
no committed checkpoint. One JSON line per trial.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import sys
import time
import traceback
import urllib.request

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support import kill_pipeline

FIRST, SECOND, NEXT = 5, 8, 20
FOLLOWING = 4
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _relay(control: str, path: str) -> dict:
    method = "POST" if path.startswith("arm") else "GET"
    with OPENER.open(urllib.request.Request(f"{control}/{path}", method=method), timeout=10) as r:
        return json.loads(r.read())


def _ids(iterator, n: int) -> list[int]:
    return [int(next(iterator)[0]) for _ in range(n)]


def _expected(step: int) -> list[int]:
    return _ids(iter(kill_pipeline.make_dataset(0)), step + FOLLOWING)[step:]


def _job(directory: str, to_parent: int, from_parent: int) -> None:
    iterator = iter(kill_pipeline.make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, directory, num_shards=2)
    for _ in range(FIRST):
        next(iterator)
    manager.save(FIRST)
    manager.wait()
    os.write(to_parent, b"S")
    os.read(from_parent, 1)  # the relay is armed
    for _ in range(SECOND - FIRST):
        next(iterator)
    manager.save(SECOND)
    manager.wait()
    os.write(to_parent, b"D")
    time.sleep(3600)  # killed here, after the complete save


def _stray_files(directory: str, committed: list[int]) -> list[str]:
    """Files of the basename that are no part of a committed checkpoint."""
    stray = []
    for name in tf.io.gfile.listdir(directory):
        name = name.rstrip("/")
        match = re.fullmatch(r"input\.ckpt-(\d+)\.(.*)", name)
        if name.startswith("checkpoint_input") and name != "checkpoint_input":
            stray.append(name)
        if not match:
            continue
        step, rest = int(match.group(1)), match.group(2)
        if step not in committed:
            stray.append(name)
        elif rest.startswith("data-"):
            shards = json.loads(tc.ops.describe_iterator_shards(
                f"{directory}/input.ckpt-{step}").numpy())["shards"]
            if name not in {s["name"] for s in shards}:
                stray.append(name)
        elif rest != "index":
            stray.append(name)
    return stray


def _check(directory: str) -> dict:
    manager = tc.IteratorCheckpointManager(iter(kill_pipeline.make_dataset(0)), directory,
                                           num_shards=2)
    committed = sorted(manager._retention.committed_steps())
    leftovers = _stray_files(directory, committed)
    restored = {}
    for step in committed:
        prefix = f"{directory}/input.ckpt-{step}"
        tc.ops.describe_iterator_shards(prefix, verify=True)
        iterator = iter(kill_pipeline.make_dataset(0))
        tc.restore_iterator(iterator, prefix)
        restored[step] = _ids(iterator, FOLLOWING) == _expected(step)
    iterator = iter(kill_pipeline.make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, directory, num_shards=2)
    latest = manager.restore_or_initialize()
    latest_step = None if latest is None else int(latest.rsplit("-", 1)[1])
    latest_exact = latest_step is not None and _ids(iterator, FOLLOWING) == _expected(latest_step)
    manager.save(NEXT)
    manager.wait()
    after = sorted(manager._retention.committed_steps())
    return {"committed": committed, "restored_exactly": restored, "latest": latest_step,
            "latest_exact": latest_exact, "leftovers_before": leftovers,
            "leftovers_after_next_save": _stray_files(directory, after)}


def _fork(target, *args) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            target(*args)
        except BaseException:  # noqa: BLE001 - reported through the exit code
            traceback.print_exc()
            code = 3
        sys.stdout.flush()
        os._exit(code)
    return pid


def _run_checker(directory: str) -> dict:
    read_fd, write_fd = os.pipe()

    def checker():
        os.close(read_fd)
        os.write(write_fd, json.dumps(_check(directory)).encode())

    pid = _fork(checker)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not chunks:
        return {"error": f"checker failed ({status})"}
    return json.loads(b"".join(chunks))


def _trial(base: str, control: str, hold: int) -> dict:
    directory = f"{base}/hold{hold}"
    up_read, up_write = os.pipe()
    down_read, down_write = os.pipe()
    pid = _fork(_job, directory, up_write, down_read)
    os.close(up_write)
    os.close(down_read)
    report = {"hold": hold}
    if os.read(up_read, 1) != b"S":
        os.waitpid(pid, 0)
        return {**report, "error": "the job failed before the save of step 8"}
    _relay(control, f"arm?hold={hold}")
    os.write(down_write, b"G")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = _relay(control, "status")
        if hold and status["held"]:
            break
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return {**report, "error": "the job ended by itself"}
        # "D": the save completed (no hold, or fewer requests than the hold).
        if (not hold or status["count"] < hold) and select.select([up_read], [], [], 0.02)[0]:
            os.read(up_read, 1)
            break
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    status = _relay(control, "status")
    _relay(control, "arm?hold=0")  # releases the held request, for the checker
    report["requests"] = status["log"]
    report["held"] = status["held"]
    report.update(_run_checker(directory))
    return report


def main() -> None:
    base, control = sys.argv[1], sys.argv[2]
    dry = _trial(base, control, 0)
    print(json.dumps(dry), flush=True)
    total = len(dry.get("requests", []))
    for hold in range(1, total + 2):
        print(json.dumps(_trial(base, control, hold)), flush=True)


if __name__ == "__main__":
    main()
