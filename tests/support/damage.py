"""Damaging checkpoint files for real, the way a bad disk or a stray write would."""

from __future__ import annotations

import tensorflow as tf


def flip_byte(path: str, offset: int, mask: int = 0x40) -> None:
    """XORs the byte at `offset` of `path` (any TensorFlow filesystem) with `mask`."""
    data = bytearray(tf.io.gfile.GFile(path, "rb").read())
    data[offset] ^= mask
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(bytes(data))
