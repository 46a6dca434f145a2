"""Paths and removals through TensorFlow's filesystems (local, `ram://`, `gs://`, ...)."""

from __future__ import annotations

import tensorflow as tf


def join_path(directory: str, name: str) -> str:
    """`directory/name` for local paths and URIs (`ram://`, `gs://`) alike."""
    if not directory:
        return name
    return directory + name if directory.endswith("/") else f"{directory}/{name}"


def remove_if_present(path: str) -> None:
    """Removes the file `path`; a file already gone is not an error."""
    try:
        tf.io.gfile.remove(path)
    except tf.errors.NotFoundError:
        pass
