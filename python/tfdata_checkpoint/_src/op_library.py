"""Loads the compiled op library, refusing one built for another TensorFlow.

A library built against one TensorFlow release links that release's absl and
protobuf; loaded into another it can crash the process, so the versions are
compared before loading.
"""

from __future__ import annotations

import os
import shlex
import sys
from types import ModuleType

_LIBRARY_FILE = "_tfdata_checkpoint_ops.so"
_ops: ModuleType | None = None


def built_tf_version() -> str:
    """The TensorFlow version the op library was compiled against."""
    try:
        from tfdata_checkpoint import _build_info
    except ImportError as e:
        raise ImportError(
            "tfdata_checkpoint's op library is not built (no _build_info). "
            "Install the package with pip so that it compiles against your TensorFlow."
        ) from e
    return _build_info.TF_VERSION


def _is_source_tree(path: str) -> bool:
    return bool(path) and all(
        os.path.isfile(os.path.join(path, name)) for name in ("pyproject.toml", "CMakeLists.txt")
    )


def rebuild_hint(source_dir: str | None = None) -> str:
    """How to rebuild the op library against the installed TensorFlow, as a command to paste.

    The source tree the library was built from (`pip install .` from a
    checkout, or a wheel built there) is the one to rebuild when it is still
    there; `--no-cache-dir` keeps pip from reusing a wheel built for the old
    TensorFlow, and the interpreter is this one, so that the environment is.
    """
    if source_dir is None:
        try:
            from tfdata_checkpoint import _build_info

            source_dir = getattr(_build_info, "SOURCE_DIR", "")
        except ImportError:
            source_dir = ""
    pip = f"{shlex.quote(sys.executable)} -m pip install --force-reinstall --no-deps --no-cache-dir"
    if _is_source_tree(source_dir):
        return f"Rebuild it against the installed TensorFlow: {pip} {shlex.quote(source_dir)}"
    built_from = f" (it was built from {source_dir}, which is not here)" if source_dir else ""
    return (
        "Rebuild it against the installed TensorFlow from a tfdata-checkpoint source checkout"
        f"{built_from}: {pip} /path/to/tfdata-checkpoint"
    )


def check_tf_version(installed: str, built: str) -> None:
    """Raises ImportError when `installed` differs from `built`."""
    if installed != built:
        raise ImportError(
            f"tfdata_checkpoint's op library was built against TensorFlow {built}, "
            f"but TensorFlow {installed} is installed. {rebuild_hint()}"
        )


def load() -> ModuleType:
    """Returns the generated op wrappers, loading the library on first use."""
    global _ops
    if _ops is None:
        import tensorflow as tf

        check_tf_version(tf.__version__, built_tf_version())
        # The library is installed at the package root, beside _build_info.
        package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.path.join(package_dir, _LIBRARY_FILE)
        if not os.path.exists(path):
            raise ImportError(f"tfdata_checkpoint's op library {path} is missing. {rebuild_hint()}")
        _ops = tf.load_op_library(path)
    return _ops
