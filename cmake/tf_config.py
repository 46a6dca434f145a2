"""Prints what CMake needs to build against the installed TensorFlow.

Run with the target environment's interpreter; CMakeLists.txt strips pip's
build-isolation variables so that the user's own TensorFlow is found.
"""

import os
import sys

try:
    import tensorflow as tf
except ImportError as e:  # pragma: no cover - reported by CMake
    sys.stderr.write(f"cannot import tensorflow: {e}\n")
    sys.exit(1)

flags = tf.sysconfig.get_compile_flags()
include_dir = next(f[2:] for f in flags if f.startswith("-I"))
defines = [f[2:] for f in flags if f.startswith("-D")]
lib_dir = os.path.dirname(tf.__file__)
print(f"TF_VERSION={tf.__version__}")
print(f"TF_INCLUDE_DIR={include_dir}")
print(f"TF_LIB_DIR={lib_dir}")
print(f"TF_DEFINES={';'.join(defines)}")
