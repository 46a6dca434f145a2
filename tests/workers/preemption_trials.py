"""Runs pre-emption trials for test_preemption.py; not a test module.

Usage: python -m tests.workers.preemption_trials TRIALS_JSON PARALLEL

Imports TensorFlow once, then for each trial forks a training job
(workers/preemption_child.py) that runs until signalled, waits until it prints READY,
sleeps the trial's delay and sends it SIGTERM (and a second SIGTERM after
`second_delay`, or a SIGKILL after `kill_delay`, if set). The job must then
end by itself (unless SIGKILLed). Then forks a second
job on the same directory, which resumes and trains `resume_steps` more steps.
The zygote itself never runs a TensorFlow op, so each job starts its runtime
afresh (as kill_zygote.py). Prints one JSON line per trial: how each job
ended and what it reported.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback

import tensorflow as tf  # noqa: F401 - imported once, before forking

from tests.support.subprocesses import run_trials_in_batches
from tests.workers import preemption_child

READY_TIMEOUT_S = 180.0
EXIT_TIMEOUT_S = 120.0


def _spawn(spec: dict, stderr_path: str) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_fd)
            os.dup2(write_fd, 1)
            err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(err, 2)
            preemption_child.main(spec)
        except SystemExit as done:  # PreemptionCheckpointHandler's exit_fn
            code = done.code if isinstance(done.code, int) else 1
        except BaseException:  # noqa: BLE001 - reported through the exit code
            traceback.print_exc()
            code = 3
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def _wait(pid: int, deadline: float) -> tuple[int | None, bool]:
    """(exit status, whether it had to be SIGKILLed at the deadline)."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return status, True


def _describe(status: int) -> dict:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exit": os.WEXITSTATUS(status)}


def _last_json(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def _preempt_batch(batch: list[dict]) -> None:
    running = {}
    for trial in batch:
        spec = dict(trial["spec"], steps=10**9, log=os.path.join(trial["dir"], "ids-first.txt"))
        pid, fd = _spawn(spec, os.path.join(trial["dir"], "stderr-first.txt"))
        running[fd] = {"trial": trial, "pid": pid, "out": b""}
    waiting = dict(running)
    schedule = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    while waiting:
        ready, _, _ = select.select(list(waiting), [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        for fd in ready:
            job = waiting[fd]
            chunk = os.read(fd, 4096)
            job["out"] += chunk
            if b"READY" in job["out"] or not chunk:
                del waiting[fd]
                if chunk:
                    trial = job["trial"]
                    now = time.monotonic()
                    pid = job["pid"]
                    schedule.append((now + trial["delay"], pid, signal.SIGTERM))
                    # A second SIGTERM, or the SIGKILL of a grace period too short.
                    for key, number in (("second_delay", signal.SIGTERM),
                                        ("kill_delay", signal.SIGKILL)):
                        if trial.get(key) is not None:
                            schedule.append((now + trial["delay"] + trial[key], pid, number))
    for when, pid, number in sorted(schedule):
        time.sleep(max(0.0, when - time.monotonic()))
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass  # ended after the first signal already
    signalled = {pid for _, pid, _ in schedule}
    for fd, job in running.items():
        trial = job["trial"]
        if job["pid"] not in signalled:
            os.kill(job["pid"], signal.SIGKILL)
        status, forced = _wait(job["pid"], time.monotonic() + EXIT_TIMEOUT_S)
        out = job["out"].decode() + _read_all(fd)
        trial["first"] = {**_describe(status), "forced_kill": forced,
                          "ready": job["pid"] in signalled, "result": _last_json(out)}


def _resume_batch(batch: list[dict]) -> None:
    running = []
    for trial in batch:
        result = trial["first"]["result"] or {}
        # Past the signalled job's last step; a killed job reported none.
        last = int(result.get("step", trial["spec"]["ready"] + 100))
        spec = dict(trial["spec"], steps=last + trial["resume_steps"], ready=10**9,
                    log=os.path.join(trial["dir"], "ids-resume.txt"))
        pid, fd = _spawn(spec, os.path.join(trial["dir"], "stderr-resume.txt"))
        running.append((trial, pid, fd))
    for trial, pid, fd in running:
        status, forced = _wait(pid, time.monotonic() + EXIT_TIMEOUT_S)
        trial["resume"] = {**_describe(status), "forced_kill": forced,
                           "result": _last_json(_read_all(fd))}


def _run_batch(batch: list[dict]) -> None:
    _preempt_batch(batch)
    _resume_batch(batch)
    for trial in batch:
        print(json.dumps(trial), flush=True)


if __name__ == "__main__":
    run_trials_in_batches(_run_batch)
