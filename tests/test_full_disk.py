"""A save that runs out of space fails clearly and leaves the previous checkpoint as latest.

Two real fault mechanisms, each running the same scenario in a child process:
- "tmpfs": a 3 MiB tmpfs mounted in a private user + mount namespace
  (`unshare -rm`), so writes fail with ENOSPC, as on a full disk. Skipped,
  with the reason, where unprivileged namespaces are not allowed.
- "rlimit": RLIMIT_FSIZE caps every file at 1 MiB, so writes fail with EFBIG.
  Works everywhere (it is the mechanism CI can always run).

The scenario, with synchronous and with background saves: a small checkpoint
of step 1 commits; the checkpoint of step 10 (~10 MiB) cannot be written. The
save fails with a `tf.errors.OpError` naming a file and the cause; afterwards
the latest checkpoint is still step 1, nothing of step 10 is on disk, the
state file is whole, step 1 verifies and restores exactly, and a later save
that fits commits normally.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.support.subprocesses import child_env, worker_command


def _unshare_tmpfs_works() -> str | None:
    """None if a tmpfs can be mounted in a user + mount namespace, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt 2>&1"],
        check=False, capture_output=True, text=True, timeout=60,
    )
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a user namespace: {(probe.stderr + probe.stdout).strip()}"
    return None


def _run(mechanism: str, root: str) -> dict:
    data = os.path.join(root, "data")
    os.makedirs(data)
    command = worker_command("full_disk_scenario", data, mechanism)
    if mechanism == "tmpfs":
        # The tmpfs exists only inside the namespace, for the child's lifetime.
        command = ["unshare", "-rm", "sh", "-c",
                   'mount -t tmpfs -o size=3m tmpfs "$0" && exec "$@"', data, *command]
    out = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600,
                         env=child_env(TF_CPP_MIN_LOG_LEVEL="2"))
    lines = [line for line in out.stdout.splitlines() if line.startswith("REPORT ")]
    assert out.returncode == 0 and lines, out.stdout[-2000:] + out.stderr[-4000:]
    return json.loads(lines[-1][len("REPORT "):])


@pytest.mark.parametrize("mechanism", ["tmpfs", "rlimit"])
def test_out_of_space_save_fails_clearly_and_keeps_the_previous_checkpoint(tmp_path, mechanism):
    if mechanism == "tmpfs":
        reason = _unshare_tmpfs_works()
        if reason:
            pytest.skip(reason)
    cause = {"tmpfs": "No space left on device", "rlimit": "File too large"}[mechanism]
    report = _run(mechanism, str(tmp_path))
    for mode, r in report.items():
        where = f"{mechanism}, {mode}: {r}"
        assert r["error"] is not None, f"the save did not fail: {where}"
        _, message = r["error"]
        assert cause in message and "input.ckpt-10." in message, where
        assert r["latest"].endswith("/input.ckpt-1"), where
        assert r["state_latest"].endswith("input.ckpt-1"), where
        # Nothing of the failed save is left: step 1's index and 2 shards,
        # the state file and the writer lock only.
        assert not [n for n in r["names"] if n.startswith("input.ckpt-10")], where
        assert len([n for n in r["names"] if n.startswith("input.ckpt-1.")]) == 3, where
        assert r["restored_exactly"], where
        assert r["after"].endswith("/input.ckpt-11"), where
