"""The `tfdata-checkpoint` command line, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import tfdata_checkpoint as tc
from conftest import take
from pipelines import PIPELINES


def cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "tfdata_checkpoint.cli", *args],
        check=False, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )


@pytest.fixture
def checkpoints(tmp_path):
    it = iter(PIPELINES["shuffle"]())
    prefixes = []
    for step in (10, 20, 30):
        take(it, 10)
        prefixes.append(tc.save_iterator(it, str(tmp_path / f"input.ckpt-{step}"), num_shards=2))
    return tmp_path, prefixes


@pytest.mark.parametrize("command", [[], ["demo"], ["inspect"], ["verify"], ["bench"]])
def test_help(command):
    out = cli(*command, "--help")
    assert out.returncode == 0
    assert "usage: tfdata-checkpoint" in out.stdout


def test_inspect_lists_every_checkpoint_with_its_step(checkpoints):
    directory, prefixes = checkpoints
    out = cli("inspect", str(directory))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["prefix", "step"]
    assert [line.split()[1] for line in lines[1:]] == ["10", "20", "30"]
    one = cli("inspect", prefixes[1], "--json")
    assert one.returncode == 0 and '"step": 20' in one.stdout and '"shards": 2' in one.stdout


def test_verify_good_and_damaged(checkpoints):
    directory, prefixes = checkpoints
    good = cli("verify", str(directory))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "3 good, 0 damaged" in good.stdout
    shard = sorted(p for p in os.listdir(directory) if p.startswith("input.ckpt-20.data-"))[1]
    with open(directory / shard, "r+b") as f:
        f.seek(3)
        byte = f.read(1)
        f.seek(3)
        f.write(bytes([byte[0] ^ 0xFF]))
    bad = cli("verify", str(directory))
    assert bad.returncode != 0
    assert f"DAMAGED {prefixes[1]}" in bad.stdout and shard in bad.stdout
    assert "2 good, 1 damaged" in bad.stdout


def test_errors_are_one_line_and_nonzero(tmp_path):
    for command in ("inspect", "verify"):
        out = cli(command, str(tmp_path / "nope"))
        assert out.returncode != 0
        # TensorFlow 2.21 logs a few lines of its own at import, whatever the log level.
        ours = [line for line in out.stderr.splitlines() if line.startswith("tfdata-checkpoint")]
        assert len(ours) == 1 and "Traceback" not in out.stderr, out.stderr
        assert f"tfdata-checkpoint {command}: error:" in ours[0] and "nope" in ours[0]
    out = cli("demo", "--interrupt-at", "0")
    assert out.returncode != 0 and "--interrupt-at" in out.stderr


def test_demo_resumes_exactly(tmp_path):
    out = cli("demo", "--steps", "60", "--interrupt-at", "37", "--save-every", "10",
              "--buffer-mib", "4", "--dir", str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK: the resumed stream" in out.stdout
