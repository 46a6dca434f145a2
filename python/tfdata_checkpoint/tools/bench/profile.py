"""Where the time of one save or restore phase goes: `perf record` of that phase alone.

    python -m tfdata_checkpoint.tools.bench.profile PHASE [--buffer-mib 1024]
        [--element-kib 4] [--prefix PREFIX] [--dir DIR] [--top 25]

Starts `jobs/profiled_phase.py` (which fills the buffer or builds the iterator
first), attaches `perf record` to it once it is ready, lets it run PHASE, stops
perf as soon as the phase returns and prints the phase's time and perf's flat
profile (share of samples by shared object and symbol; for `capture`, only the
thread that ran it: the background write goes on in others). Linux with `perf`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

from tfdata_checkpoint.tools.bench.scenario import Scenario

PHASES = ("capture", "save", "incremental_save", "tf_save", "restore", "tf_restore")


def flat_profile(data: str, top: int, tid: int | None = None, sort: str = "dso,symbol"
                 ) -> list[str]:
    """perf's top `top` lines of `data` by `sort`, optionally of thread `tid` only."""
    command = ["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", sort]
    if tid is not None:
        command += ["--tid", str(tid)]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = []
    for line in out.stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        # perf pads with columns of "-" (no branch data): drop them and the padding.
        line = re.sub(r"(\s+-)+\s*$", "", line.rstrip())
        lines.append(re.sub(r"\s{2,}", "  ", line.strip()))
    return lines[:top]


def profile(scenario: Scenario, phase: str, directory: str, prefix: str | None = None,
            top: int = 25, frequency: int = 999) -> dict:
    """Profiles `phase` of `scenario` (see the module doc); its seconds and flat profile."""
    args = [sys.executable, "-m", "tfdata_checkpoint.tools.bench.jobs.profiled_phase",
            json.dumps(asdict(scenario)), phase, directory] + ([prefix] if prefix else [])
    job = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    data = os.path.join(directory, f"{phase}.perf.data")
    try:
        line = job.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"profiled_phase {phase} did not start: {line!r}")
        perf = subprocess.Popen(["perf", "record", "-F", str(frequency), "-p", str(job.pid),
                                 "-o", data], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # perf attaches to every thread before the phase starts
        job.stdin.write("go\n")
        job.stdin.flush()
        result = json.loads(job.stdout.readline())
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=120)
        job.wait(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
    tid = result["thread_id"] if phase == "capture" else None
    return {"phase": phase, "scenario": scenario.name, "seconds": result["seconds"],
            "by_library": flat_profile(data, 8, tid, sort="dso"),
            "profile": flat_profile(data, top, tid)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=PHASES)
    parser.add_argument("--buffer-mib", type=int, default=1024)
    parser.add_argument("--element-kib", type=int, default=4)
    parser.add_argument("--prefix", default=None, help="checkpoint to restore (restore phases)")
    parser.add_argument("--dir", default=None, help="where saves go (default: a temp dir)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if args.phase in ("restore", "tf_restore") and not args.prefix:
        parser.error(f"{args.phase} needs --prefix")
    scenario = Scenario(f"shuffle {args.buffer_mib} MiB / {args.element_kib} KiB elements",
                        args.buffer_mib, args.element_kib)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="tfdc-profile-") as tmp:
        out = profile(scenario, args.phase, tmp, args.prefix, args.top)
    print(f"{out['phase']} of {out['scenario']}: {out['seconds']:.3f} s")
    print("\n".join(out["by_library"]))
    print()
    print("\n".join(out["profile"]))


if __name__ == "__main__":
    main()
