"""Builds the C++ unit tests (shard planner, piece layout, index and tensor codecs, state, checkpoint
files, the sweep of our files beside TF checkpoints) and runs them."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cc_build(tmp_path_factory):
    if not (ROOT / "CMakeLists.txt").exists():
        pytest.skip("needs the source tree")
    cmake = shutil.which("cmake")
    assert cmake, "cmake is needed (it comes with the test extras)"
    build = tmp_path_factory.mktemp("cc_build")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    env = dict(os.environ, TFDC_TF_PYTHON=sys.executable)
    subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(build), *generator, "-DTFDC_BUILD_TESTS=ON",
         f"-DPython_EXECUTABLE={sys.executable}"],
        check=True, env=env, capture_output=True,
    )
    targets = ["shard_plan_test", "checkpoint_index_test", "tensor_codec_test", "crc32c_test",
               "piece_layout_test", "state_test", "checkpoint_io_test", "incremental_io_test",
               "beside_sweep_test"]
    result = subprocess.run(
        [cmake, "--build", str(build), "--parallel", "2", "--target", *targets],
        check=False, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return build


@pytest.mark.parametrize(
    "name",
    ["shard_plan_test", "checkpoint_index_test", "tensor_codec_test", "crc32c_test",
     "piece_layout_test", "state_test", "checkpoint_io_test", "incremental_io_test",
     "beside_sweep_test"],
)
def test_cc_unit(cc_build, name):
    result = subprocess.run(
        [str(cc_build / name)], check=False, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
