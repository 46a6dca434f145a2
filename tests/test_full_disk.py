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
import sys
import textwrap

import pytest

SCENARIO = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    import tensorflow as tf
    import tfdata_checkpoint as tc
    from tfdata_checkpoint import state_file

    root, mechanism = sys.argv[1], sys.argv[2]

    def dataset():
        # Elements 0-7 are 4 KiB, later ones 2 MiB: the shuffle buffer's state
        # grows from ~20 KiB at step 1 to ~10 MiB at step 10.
        size = lambda x: tf.where(x < 8, 1024, 512 * 1024)
        return (tf.data.Dataset.range(1000)
                .map(lambda x: tf.fill([size(x)], tf.cast(x, tf.float32)))
                .shuffle(4, seed=3))

    def first_values(iterator, n):
        return [float(next(iterator)[0]) for _ in range(n)]

    if mechanism == "rlimit":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    report = {}
    for mode in ("sync", "async"):
        directory = os.path.join(root, mode)
        iterator = iter(dataset())
        manager = tc.IteratorCheckpointManager(
            iterator, directory, async_save=mode == "async", num_shards=2, max_to_keep=3)
        next(iterator)
        manager.save(1)
        manager.wait()
        first_values(iterator, 9)
        error = None
        try:
            manager.save(10)
            manager.wait()
        except tf.errors.OpError as e:
            error = [type(e).__name__, e.message]
        names = sorted(os.listdir(directory))
        latest = manager.latest_checkpoint
        state = state_file.read(directory, "checkpoint_input", strict=True)
        tc.ops.describe_iterator_shards(latest, verify=True)
        restored = iter(dataset())
        tc.IteratorCheckpointManager(restored, directory).restore_or_initialize()
        baseline = iter(dataset())
        first_values(baseline, 1)
        same = first_values(restored, 3) == first_values(baseline, 3)
        # A save that fits still works afterwards (the small state of a fresh iterator).
        small = iter(dataset())
        next(small)
        later = tc.IteratorCheckpointManager(small, directory, async_save=False, num_shards=2)
        later.save(11)
        report[mode] = {
            "error": error, "names": names, "latest": latest,
            "state_latest": state.model_checkpoint_path, "restored_exactly": same,
            "after": later.latest_checkpoint,
        }
    print("REPORT " + json.dumps(report))
    """
)


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
    script = os.path.join(root, "scenario.py")
    with open(script, "w") as f:
        f.write(SCENARIO)
    data = os.path.join(root, "data")
    os.makedirs(data)
    command = [sys.executable, script, data, mechanism]
    if mechanism == "tmpfs":
        # The tmpfs exists only inside the namespace, for the child's lifetime.
        command = ["unshare", "-rm", "sh", "-c",
                   'mount -t tmpfs -o size=3m tmpfs "$0" && exec "$@"', data, *command]
    out = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
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
