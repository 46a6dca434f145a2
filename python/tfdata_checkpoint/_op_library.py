"""Loads the compiled op library, refusing one built for another TensorFlow.

A library built against one TensorFlow release links that release's absl and
protobuf; loaded into another it can crash the process, so the versions are
compared before loading.
"""

from __future__ import annotations

import os
from types import ModuleType

_REBUILD_HINT = (
    "Rebuild it against the installed TensorFlow: "
    "pip install --force-reinstall --no-deps --no-cache-dir tfdata-checkpoint "
    "(or `pip install --force-reinstall --no-deps .` in a source checkout)."
)

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


def check_tf_version(installed: str, built: str) -> None:
    """Raises ImportError when `installed` differs from `built`."""
    if installed != built:
        raise ImportError(
            f"tfdata_checkpoint's op library was built against TensorFlow {built}, "
            f"but TensorFlow {installed} is installed. {_REBUILD_HINT}"
        )


def load() -> ModuleType:
    """Returns the generated op wrappers, loading the library on first use."""
    global _ops
    if _ops is None:
        import tensorflow as tf

        check_tf_version(tf.__version__, built_tf_version())
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), _LIBRARY_FILE)
        if not os.path.exists(path):
            raise ImportError(f"tfdata_checkpoint's op library {path} is missing. {_REBUILD_HINT}")
        _ops = tf.load_op_library(path)
    return _ops
