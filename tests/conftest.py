"""Fixtures shared by the tests (helper modules are in tests/support/)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import tensorflow as tf


@pytest.fixture
def ram_dir(request):
    """A fresh directory on TensorFlow's in-memory filesystem."""
    path = f"ram://{request.node.name}-{os.getpid()}-{id(request)}"
    tf.io.gfile.makedirs(path)
    yield path
    tf.io.gfile.rmtree(path)
