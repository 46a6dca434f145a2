"""Comparing iterator streams element by element."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def to_numpy(element):
    """Nested structure of numpy values, ragged and sparse tensors included."""
    if isinstance(element, tf.RaggedTensor):
        return ("ragged", element.to_list())
    if isinstance(element, tf.SparseTensor):
        return ("sparse", element.indices.numpy().tolist(), element.values.numpy().tolist(),
                element.dense_shape.numpy().tolist())
    if isinstance(element, dict):
        return {k: to_numpy(v) for k, v in sorted(element.items())}
    if isinstance(element, (tuple, list)):
        return tuple(to_numpy(e) for e in element)
    return np.asarray(element)


def assert_elements_equal(expected, actual):
    assert len(expected) == len(actual), f"{len(expected)} elements expected, got {len(actual)}"
    for i, (e, a) in enumerate(zip(expected, actual)):
        _assert_nested_equal(to_numpy(e), to_numpy(a), f"element {i}")


def _assert_nested_equal(e, a, where):
    if isinstance(e, dict):
        assert e.keys() == a.keys(), where
        for k in e:
            _assert_nested_equal(e[k], a[k], f"{where}[{k}]")
    elif isinstance(e, tuple):
        assert isinstance(a, tuple) and len(e) == len(a), where
        for i, (x, y) in enumerate(zip(e, a)):
            _assert_nested_equal(x, y, f"{where}[{i}]")
    elif isinstance(e, np.ndarray):
        np.testing.assert_array_equal(e, a, err_msg=where)
        assert e.dtype == a.dtype, where
    else:
        assert e == a, where


def take(iterator, n):
    """Up to n next elements (fewer if the iterator ends)."""
    out = []
    for _ in range(n):
        try:
            out.append(next(iterator))
        except StopIteration:
            break
    return out
