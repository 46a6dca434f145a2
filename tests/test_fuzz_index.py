"""Fuzzing the index parser and the ops that read it: thousands of hostile index files.

The cases run in a child process (workers/fuzz_index_worker.py), so that a crash of
the native code is reported as a failure with the input that caused it,
instead of taking pytest down. Every case must end in a `tf.errors` error or
a result: the child fails on any other exception, and a crash or hang fails
here. TFDC_FUZZ_SEED=<seed> reruns the same cases; TFDC_FUZZ_EXAMPLES sets the
number per strategy (four strategies).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from tests.support.subprocesses import child_env, worker_command

EXAMPLES_PER_STRATEGY = int(os.environ.get("TFDC_FUZZ_EXAMPLES", "1000"))


def test_hostile_index_files_never_crash_or_hang(tmp_path):
    seed = int(os.environ.get("TFDC_FUZZ_SEED", time.time_ns() % 1_000_000))
    print(f"index fuzzing: TFDC_FUZZ_SEED={seed}")
    command = worker_command("fuzz_index_worker", tmp_path, EXAMPLES_PER_STRATEGY, seed)
    try:
        out = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600,
                             env=child_env(TF_CPP_MIN_LOG_LEVEL="2"))
    except subprocess.TimeoutExpired:
        case = (tmp_path / "last_case.bin").read_bytes()
        raise AssertionError(f"seed {seed}: hung on the index {case!r}") from None
    if out.returncode < 0:
        case = (tmp_path / "last_case.bin").read_bytes()
        raise AssertionError(
            f"seed {seed}: the process died of {signal.Signals(-out.returncode).name} on the "
            f"index {case!r}\n{out.stderr[-3000:]}")
    assert out.returncode == 0, f"seed {seed}:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"index fuzzing: {counts}")
    assert counts["cases"] == 4 * EXAMPLES_PER_STRATEGY
    assert sum(v for k, v in counts.items() if k.startswith("check:")) == counts["cases"]
    # The structural checks, not only the checksum, were exercised: hostile
    # indexes whose checksum holds were rejected, and some parsed.
    assert counts.get("restore: DataLossError", 0) > EXAMPLES_PER_STRATEGY
    assert counts.get("describe(verify=False): ok", 0) > 0
