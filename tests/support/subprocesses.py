"""Starting Python child processes that import the test helpers (`tests.support.*`).

A child gets the repository root (the directory holding the `tests` package)
on its PYTHONPATH, so that `python -m tests.workers.<name>` and
`from tests.support... import ...` work in it whatever its working directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])


def run_trials(worker: str, trials: list[dict], parallel: int, directory: Path, *,
               timeout: float, what: str) -> list[dict]:
    """Runs `tests.workers.<worker>` on `trials` (see `run_trials_in_batches`).

    Returns the JSON objects it printed, one a line; AssertionError (starting
    with `what`, e.g. the seed) if it failed.
    """
    spec = Path(directory) / "trials.json"
    spec.write_text(json.dumps(trials))
    env = child_env(OPENBLAS_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(
        worker_command(worker, spec, parallel),
        check=False, capture_output=True, text=True, timeout=timeout, env=env,
    )
    assert out.returncode == 0, f"{what}: {out.stderr[-3000:]}"
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def run_trials_in_batches(run_batch: Callable[[list[dict]], None]) -> None:
    """The main of a trials worker, `python -m tests.workers.<name> TRIALS_FILE PARALLEL`.

    Hands the trials (a JSON list in TRIALS_FILE) to `run_batch`, PARALLEL at a
    time, in order.
    """
    with open(sys.argv[1]) as f:
        trials = json.load(f)
    parallel = int(sys.argv[2])
    for start in range(0, len(trials), parallel):
        run_batch(trials[start : start + parallel])


def child_env(**overrides: str) -> dict[str, str]:
    """os.environ, the repository root first on PYTHONPATH, then `overrides`."""
    paths = [REPO_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **overrides}


def worker_command(name: str, *args: object) -> list[str]:
    """The command running tests/workers/<name>.py as a module; run it with child_env()."""
    return [sys.executable, "-m", f"tests.workers.{name}", *map(str, args)]


def exit_after(seconds: float) -> None:
    """In a child: ends the process after `seconds`, so that none outlives a test that died."""
    timer = threading.Timer(seconds, lambda: os._exit(3))
    timer.daemon = True  # must not keep a finished child alive
    timer.start()


def sigkill_when(process: subprocess.Popen, ready: Callable[[], bool], *, deadline_s: float,
                 what: str) -> None:
    """SIGKILLs `process` once `ready()` holds; AssertionError if it ends first or time runs out.

    `what` names the awaited state in the error. The process must have stderr=PIPE.
    """
    deadline = time.monotonic() + deadline_s
    try:
        while not ready():
            if process.poll() is not None:
                raise AssertionError(
                    f"child ended before {what}:\n{process.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} in time")
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
