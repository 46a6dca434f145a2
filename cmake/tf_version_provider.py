"""scikit-build-core metadata provider: the wheel's version names the TensorFlow it is built for.

The op library links one TensorFlow release's absl and protobuf, so a wheel
built against TensorFlow 2.15.1 is `tfdata_checkpoint-0.1.0+tf2.15.1-...whl`:
pip then never takes it for the package built against another TensorFlow
(the same version string would read "already installed"), and `pip list`
says which TensorFlow an installation fits.

The base version is `__version__` in python/tfdata_checkpoint/__init__.py
(the package's own version stays "0.1.0"). TensorFlow is found the way
CMakeLists.txt finds it: pip's build isolation hides it, so cmake/tf_config.py
runs under the same interpreter (or TFDC_TF_PYTHON) with the isolation
variables removed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_PACKAGE_INIT = _HERE.parent / "python" / "tfdata_checkpoint" / "__init__.py"


def base_version() -> str:
    """`__version__` of the package, read from its source."""
    match = re.search(r'^__version__ = "([^"]+)"$', _PACKAGE_INIT.read_text(), re.MULTILINE)
    if not match:
        raise RuntimeError(f"no __version__ = \"...\" line in {_PACKAGE_INIT}")
    return match.group(1)


def tensorflow_version() -> str:
    """The version of the TensorFlow the op library will be built against."""
    python = os.environ.get("TFDC_TF_PYTHON") or sys.executable
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONNOUSERSITE")}
    result = subprocess.run(
        [python, str(_HERE / "tf_config.py")], env=env, capture_output=True, text=True,
        check=False,
    )
    match = re.search(r"^TF_VERSION=(\S+)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not match:
        raise RuntimeError(
            f"tfdata-checkpoint builds against the installed TensorFlow, but {python} could not "
            f"import it: {result.stderr.strip()} Install TensorFlow first (for example: "
            "pip install tensorflow-cpu==2.15.1), then install tfdata-checkpoint."
        )
    return match.group(1)


def local_version(tf_version: str) -> str:
    """The local version label for a TensorFlow version: `tf2.15.1` (PEP 440 characters only)."""
    return "tf" + re.sub(r"[^0-9A-Za-z.]+", ".", tf_version).strip(".")


def dynamic_metadata(field: str, settings: dict[str, Any] | None = None) -> str:
    """scikit-build-core's hook: `<__version__>+tf<TensorFlow version>`."""
    if field != "version":
        raise ValueError(f"tf_version_provider only provides the version, not {field!r}")
    if settings:
        raise ValueError(f"tf_version_provider takes no settings, got {sorted(settings)}")
    return f"{base_version()}+{local_version(tensorflow_version())}"
