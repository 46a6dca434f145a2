"""Runs pytest on workers/object_store_cases.py inside the test network namespace; not a test module.

Usage: python -m tests.workers.object_store_pytest PYTEST_ARGS...

Ends with os._exit: tensorflow-io 0.36 aborts at interpreter exit after
success ("pure virtual method called", fixed in later releases).
"""

from __future__ import annotations

import os
import sys

import pytest

if __name__ == "__main__":
    code = pytest.main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))
