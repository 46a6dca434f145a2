"""A wheel says which TensorFlow it was built for, and the rebuild command works as printed.

The op library fits one TensorFlow release only, so the distribution's
version carries it as a local version (`0.1.0+tf2.15.1`, from
cmake/tf_version_provider.py): pip never takes a wheel built for another
TensorFlow for "already installed". `tfdata_checkpoint.__version__` stays the
plain package version. (`.ci/tf_range.sh` builds a wheel with `pip wheel` on
every TensorFlow release it covers and installs that.)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import pathlib
import shlex
import subprocess
import sys

import tensorflow as tf

import tfdata_checkpoint as tc
from tfdata_checkpoint import _build_info
from tfdata_checkpoint._src import op_library

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _provider():
    spec = importlib.util.spec_from_file_location(
        "tf_version_provider", ROOT / "cmake" / "tf_version_provider.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected_version() -> str:
    return f"{tc.__version__}+{_provider().local_version(tf.__version__)}"


def test_installed_distribution_carries_its_tensorflow_version():
    assert tc.__version__ == "0.1.0" == _build_info.LIBRARY_VERSION
    assert importlib.metadata.version("tfdata-checkpoint") == _expected_version()
    assert _expected_version() == f"0.1.0+tf{tf.__version__}"


def test_local_version_label_is_valid_pep_440():
    provider = _provider()
    assert provider.local_version("2.15.1") == "tf2.15.1"
    assert provider.local_version("2.16.0-rc0") == "tf2.16.0.rc0"
    assert provider.base_version() == tc.__version__


def test_pip_sees_the_local_version_through_build_isolation(tmp_path):
    # Metadata only (prepare_metadata_for_build_wheel), no compile: the
    # provider must find TensorFlow although build isolation hides it.
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet",
         "--report", str(report), str(ROOT)],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (item,) = json.loads(report.read_text())["install"]
    assert item["metadata"]["name"] == "tfdata-checkpoint"
    assert item["metadata"]["version"] == _expected_version()


def test_rebuild_hint_is_a_command_for_this_environment_and_source_tree(tmp_path):
    hint = op_library.rebuild_hint(str(ROOT))
    command = hint.split(": ", 1)[1]
    assert shlex.split(command) == [
        sys.executable, "-m", "pip", "install", "--force-reinstall", "--no-deps",
        "--no-cache-dir", str(ROOT)]
    # The installed library records where it was built from.
    assert os.path.isfile(os.path.join(_build_info.SOURCE_DIR, "CMakeLists.txt"))
    gone = str(tmp_path / "gone")
    assert f"built from {gone}, which is not here" in op_library.rebuild_hint(gone)
