"""The `tfdata-checkpoint` command's entry point, kept outside the `tfdata_checkpoint` package.

Importing any module of `tfdata_checkpoint`, `tfdata_checkpoint.tools.cli` included, first runs
the package's `__init__`, which imports TensorFlow (it must: it refuses, at import, an op library
built for another TensorFlow). The command has to set `TF_CPP_MIN_LOG_LEVEL` before TensorFlow
is imported (TensorFlow reads it once, at its first log line, and logs at import), and should
answer `--help` without importing TensorFlow at all. So this entry point loads
`tfdata_checkpoint/tools/cli.py` from its file, without running the package's `__init__`; that
module imports nothing of the package at its top, and its commands import what they need when
they run, after the log level is set.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

_NAME = "tfdata_checkpoint_cli._cli"


def _load_cli() -> ModuleType:
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    package = importlib.util.find_spec("tfdata_checkpoint")  # Finds it; does not import it.
    if package is None or not package.submodule_search_locations:
        raise ImportError("the tfdata_checkpoint package is not installed")
    path = os.path.join(next(iter(package.submodule_search_locations)), "tools", "cli.py")
    spec = importlib.util.spec_from_file_location(_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tfdata-checkpoint` command (see `tfdata_checkpoint.tools.cli`)."""
    return _load_cli().main(argv)
