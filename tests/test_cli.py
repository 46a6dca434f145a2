"""The `tfdata-checkpoint` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.pipelines import PIPELINES
from tests.support.streams import take


def cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "tfdata_checkpoint.tools.cli", *args],
        check=False, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )


def command(*args, timeout=600, **env):
    """The installed `tfdata-checkpoint` command, in the environment a user has."""
    script = os.path.join(sysconfig.get_path("scripts"), "tfdata-checkpoint")
    assert os.path.exists(script), f"no {script}: is the package installed?"
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([script, *args], check=False, capture_output=True, text=True,
                          timeout=timeout, env=dict(environment, **env))


def save_three(directory):
    it = iter(PIPELINES["shuffle"]())
    prefixes = []
    for step in (10, 20, 30):
        take(it, 10)
        prefixes.append(tc.save_iterator(it, str(directory / f"input.ckpt-{step}"), num_shards=2))
    return prefixes


@pytest.fixture
def checkpoints(tmp_path):
    return tmp_path, save_three(tmp_path)


def tf_checkpoint(directory):
    """A healthy TensorFlow checkpoint (a tensor bundle, as a model's), not ours."""
    return tf.train.Checkpoint(v=tf.Variable([1.0, 2.0])).write(str(directory / "model.ckpt-7"))


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
    args = ("demo", "--steps", "60", "--interrupt-at", "37", "--save-every", "10",
            "--buffer-mib", "4", "--dir", str(tmp_path))
    out = cli(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK: the resumed stream" in out.stdout
    # The directory now holds a finished run: a second run must not take it for its own.
    again = cli(*args)
    assert "MISMATCH" not in again.stdout, again.stdout
    assert again.returncode == 1 and "not empty" in again.stderr, again.stdout + again.stderr


def test_directory_names_with_glob_characters(tmp_path):
    directory = tmp_path / "run[1]"
    directory.mkdir()
    save_three(directory)
    listed = cli("inspect", str(directory))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert [line.split()[1] for line in listed.stdout.strip().splitlines()[1:]] == [
        "10", "20", "30"]
    verified = cli("verify", str(directory))
    assert verified.returncode == 0 and "3 good, 0 damaged" in verified.stdout, verified.stdout


def test_inspect_lists_the_good_checkpoints_and_names_the_damaged_one(checkpoints):
    directory, prefixes = checkpoints
    with open(prefixes[1] + ".index", "r+b") as f:
        f.truncate(20)
    out = cli("inspect", str(directory))
    assert out.returncode == 2, out.stdout + out.stderr
    assert [line.split()[1] for line in out.stdout.strip().splitlines()[1:]] == ["10", "30"]
    damaged = [line for line in out.stderr.splitlines() if "DAMAGED" in line]
    assert len(damaged) == 1 and prefixes[1] in damaged[0], out.stderr
    listed = cli("inspect", str(directory), "--json")
    assert listed.returncode == 2
    assert [row["step"] for row in json.loads(listed.stdout)] == [10, 30]


def test_a_tensorflow_checkpoint_is_not_damage(tmp_path):
    prefix = tf_checkpoint(tmp_path)
    for which in ("verify", "inspect"):
        out = cli(which, prefix)
        assert out.returncode == 3, out.stdout + out.stderr
        assert "DAMAGED" not in out.stdout + out.stderr
        assert "not a tfdata-checkpoint checkpoint" in out.stdout + out.stderr
    # A directory of TensorFlow's checkpoints only holds none of ours either.
    assert cli("verify", str(tmp_path)).returncode == 3
    # Beside ours, they are skipped.
    save_three(tmp_path)
    out = cli("verify", str(tmp_path))
    assert out.returncode == 0 and "3 good, 0 damaged" in out.stdout, out.stdout + out.stderr
    assert "Exit status" in cli("verify", "--help").stdout


def test_inspect_json_names_element_spec_dtypes(checkpoints):
    _, prefixes = checkpoints
    out = cli("inspect", prefixes[0], "--json")
    assert out.returncode == 0, out.stderr
    spec = json.loads(out.stdout)[0]["element_spec"]
    assert spec and {s["dtype"] for s in spec} <= {d.name for d in (tf.int64, tf.float32)}
    assert "int64" in {s["dtype"] for s in spec}
    table = cli("inspect", prefixes[0])
    assert "int64" in table.stdout


def test_help_imports_no_tensorflow():
    out = command("--help", PYTHONPROFILEIMPORTTIME="1")
    assert out.returncode == 0 and "usage: tfdata-checkpoint" in out.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()
                if line.startswith("import time:")]
    assert "argparse" in imported  # The profile is there...
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "tfdata_checkpoint")]


def test_an_error_is_one_clean_line(checkpoints, tmp_path):
    missing = tmp_path / "nonexistent"
    out = command("inspect", str(missing))
    assert out.returncode == 1
    expected = (f"tfdata-checkpoint inspect: error: no checkpoint at {missing} "
                f"(no {missing}.index) and no such directory")
    assert out.stderr.splitlines() == [expected], out.stderr
    _, prefixes = checkpoints
    with open(prefixes[1] + ".index", "r+b") as f:
        f.truncate(20)
    for which in ("inspect", "verify"):
        out = command(which, prefixes[1])
        assert out.returncode == 2
        lines = (out.stdout + out.stderr).splitlines()
        damaged = [line for line in lines if "DAMAGED" in line]
        assert len(damaged) == 1 and prefixes[1] in damaged[0], lines
        assert not [line for line in lines if "{{function_node" in line or "[Op:" in line
                    or "OP_REQUIRES" in line], lines
        assert len(out.stderr.splitlines()) <= 1, out.stderr
