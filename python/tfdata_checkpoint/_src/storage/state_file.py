"""The state file (e.g. `checkpoint_input`), with a checksum that catches damage.

It is a `CheckpointState` text proto like the one `tf.train.Saver` writes, so
`tf.train.latest_checkpoint(directory, latest_filename=...)` keeps reading it.
Its first line is a comment that the text-proto parser skips:

    # tfdata-checkpoint crc32=<8 hex digits of zlib.crc32 of the rest of the file>

A flipped byte or a truncation anywhere in the file breaks either the comment
or the checksum, so `read(..., strict=True)` raises `tf.errors.DataLossError`
naming the file. A state file without that first line (written by TensorFlow's
own `CheckpointInputPipelineHook` or `tf.train.Saver`) is accepted as long as
it parses: there is no checksum to check.

The file is replaced atomically (written under a temporary name, then renamed),
so a crash while writing it never leaves it half-written.
"""

from __future__ import annotations

import logging
import re
import zlib

import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.lib.io import file_io
from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

from tfdata_checkpoint._src.layout import join_path

logger = logging.getLogger(__name__)

_HEADER = re.compile(r"# tfdata-checkpoint crc32=([0-9a-f]{8})")


def encode(state: CheckpointState) -> str:
    """The file's contents for `state`: the checksum line, then the text proto."""
    body = text_format.MessageToString(state)
    return f"# tfdata-checkpoint crc32={zlib.crc32(body.encode()):08x}\n{body}"


def _damaged(path: str, why: str) -> tf.errors.DataLossError:
    return tf.errors.DataLossError(None, None, f"Damaged checkpoint state file {path}: {why}")


def decode(data: bytes, path: str) -> CheckpointState:
    """Parses a state file's contents; DataLossError naming `path` if damaged."""
    if not data:
        raise _damaged(path, "it is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(path, "it is not UTF-8 text") from None
    body = text
    # TensorFlow's own writers never start the file with a comment: a first
    # line starting with '#' must be our checksum line, whole.
    if text.startswith("#"):
        first, newline, body = text.partition("\n")
        match = _HEADER.fullmatch(first)
        if not match or not newline:
            raise _damaged(path, f"bad checksum line {first[:80]!r}")
        if int(match.group(1), 16) != zlib.crc32(body.encode()):
            raise _damaged(path, "checksum mismatch")
    state = CheckpointState()
    try:
        text_format.Parse(body, state)
    except text_format.ParseError as error:
        raise _damaged(path, f"not a CheckpointState text proto ({error})") from None
    if not state.model_checkpoint_path:
        raise _damaged(path, "it names no latest checkpoint")
    return state


def read(directory: str, latest_filename: str, *, strict: bool) -> CheckpointState | None:
    """The state file's contents, or None if there is none.

    Args:
      directory: the checkpoint directory.
      latest_filename: the state file's name.
      strict: raise `tf.errors.DataLossError` (naming the file) when it is
        damaged; otherwise log a warning and return None, so that callers
        fall back to listing the directory.
    """
    path = join_path(directory, latest_filename)
    try:
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        return decode(data, path)
    except tf.errors.DataLossError as error:
        if strict:
            raise
        logger.warning("Ignoring the state file: %s", error.message)
        return None
    except tf.errors.OpError as error:
        if strict:
            raise
        logger.warning("Ignoring unreadable state file %s: %s", path, error.message)
        return None


def write(directory: str, state: CheckpointState, latest_filename: str) -> None:
    """Replaces the state file atomically with `state`."""
    file_io.atomic_write_string_to_file(join_path(directory, latest_filename), encode(state))
