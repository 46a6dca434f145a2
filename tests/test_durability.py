"""With fsync=True every file of a checkpoint reaches the disk before it is committed.

Checked on the system calls themselves (strace): TensorFlow's POSIX WritableFile::Sync()
does not fsync, so a test through its API alone could not tell.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")

_SAVE = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    import tfdata_checkpoint as tc
    it = iter(tf.data.Dataset.range(1000).shuffle(100, seed=1))
    next(it)
    tc.save_iterator(it, sys.argv[1], num_shards=3, fsync=sys.argv[2] == "1")
    """
)


def _syscalls(prefix: str, fsync: bool) -> list[str]:
    out = subprocess.run(
        ["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2",
         sys.executable, "-c", _SAVE, prefix, "1" if fsync else "0"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    directory = prefix.rsplit("/", 1)[0]
    return [line for line in out.stderr.splitlines() if directory in line]


def test_every_file_is_synced_before_the_commit(tmp_path):
    prefix = str(tmp_path / "ckpt")
    calls = _syscalls(prefix, fsync=True)
    commit = next(i for i, c in enumerate(calls) if "rename" in c and ".index.tmp-" in c)
    synced_before = {m.group(1) for c in calls[:commit]
                     for m in [re.search(r"sync\(\d+<([^>]*)>", c)] if m}
    shards = [p for p in synced_before if ".data-" in p]
    assert len(shards) == 3, calls
    assert any(".index.tmp-" in p for p in synced_before), calls
    synced_after = [c for c in calls[commit + 1:] if re.search(rf"sync\(\d+<{tmp_path}>", c)]
    assert synced_after, f"the directory is not synced after the rename: {calls}"


def test_no_sync_without_fsync(tmp_path):
    prefix = str(tmp_path / "ckpt")
    calls = _syscalls(prefix, fsync=False)
    assert not [c for c in calls if "sync(" in c], calls
    assert any("rename" in c for c in calls)
