"""Which format a checkpoint's `.index` file is in, told by its content.

Both this library and TensorFlow's tensor bundles (what `tf.compat.v1.train.Saver`
and TF's own `CheckpointInputPipelineHook` write) name a checkpoint's index
`<prefix>.index`, so a directory that moved from TF's hook to this one can hold
both under the same names. The name does not tell them apart; the bytes do:

- ours starts with the magic `TFDCIDX\\n` (docs/FORMAT.md);
- a tensor bundle's index is a LevelDB-style table, which ends with the 8-byte
  table magic number 0xdb4775248b80fb57 (little-endian).
"""

from __future__ import annotations

import enum

import tensorflow as tf

OUR_MAGIC = b"TFDCIDX\n"
_TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")


class IndexFormat(enum.Enum):
    """The format of a checkpoint index file."""

    OURS = "tfdata-checkpoint"
    TF_BUNDLE = "tensorflow tensor bundle"
    UNKNOWN = "unknown"
    MISSING = "missing"


def index_format(index_path: str) -> IndexFormat:
    """The format of the index file `index_path` (through TF's filesystems).

    Reads at most 16 bytes. Never raises for a missing, short or unreadable
    file: those are MISSING / UNKNOWN.
    """
    try:
        with tf.io.gfile.GFile(index_path, "rb") as f:
            head = f.read(len(OUR_MAGIC))
            if head == OUR_MAGIC:
                return IndexFormat.OURS
            size = f.size()
            if size < len(_TABLE_MAGIC):
                return IndexFormat.UNKNOWN
            f.seek(size - len(_TABLE_MAGIC))
            tail = f.read(len(_TABLE_MAGIC))
    except tf.errors.NotFoundError:
        return IndexFormat.MISSING
    except tf.errors.OpError:
        return IndexFormat.UNKNOWN
    return IndexFormat.TF_BUNDLE if tail == _TABLE_MAGIC else IndexFormat.UNKNOWN
