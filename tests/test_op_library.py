"""The op library refuses to load under a TensorFlow it was not built for."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from tfdata_checkpoint._src import op_library as _op_library


def test_built_version_is_the_installed_one():
    assert _op_library.built_tf_version() == tf.__version__


def test_mismatch_is_an_import_error_naming_both_versions():
    with pytest.raises(ImportError) as info:
        _op_library.check_tf_version(installed="2.21.0", built="2.15.1")
    message = str(info.value)
    assert "2.21.0" in message and "2.15.1" in message and "pip install" in message


def test_importing_under_another_tensorflow_raises_import_error_not_a_crash():
    # A fresh interpreter where the build record claims another TF version.
    code = textwrap.dedent(
        """
        import sys, types
        fake = types.ModuleType("tfdata_checkpoint._build_info")
        fake.TF_VERSION = "1.0.0"
        sys.modules["tfdata_checkpoint._build_info"] = fake
        try:
            import tfdata_checkpoint
        except ImportError as e:
            print("IMPORT ERROR:", e)
        else:
            print("LOADED")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "IMPORT ERROR:" in out.stdout
    assert "1.0.0" in out.stdout and tf.__version__ in out.stdout
