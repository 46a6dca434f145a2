"""Runs a program of `jobs/` in a fresh process and returns the JSON it prints last."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_child(job: str, *args: str, timeout: float = 3600) -> dict:
    """`python -m tfdata_checkpoint.tools.bench.jobs.<job> ARGS`; its last stdout line, parsed.

    A failing child raises RuntimeError with the end of its stderr: a benchmark
    figure is never made up from a crashed run.
    """
    out = subprocess.run(
        [sys.executable, "-m", f"tfdata_checkpoint.tools.bench.jobs.{job}", *args],
        capture_output=True, text=True, check=False, timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if out.returncode != 0:
        raise RuntimeError(f"{job} {' '.join(args)[:300]} failed ({out.returncode}):\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
