"""tfdata-checkpoint: fast, sharded, background checkpoints of tf.data iterators."""

from tfdata_checkpoint import ops
from tfdata_checkpoint.iterator_state import (
    restore_iterator,
    save_iterator,
    wait_for_pending_saves,
)

__version__ = "0.1.0"

__all__ = [
    "ops",
    "restore_iterator",
    "save_iterator",
    "wait_for_pending_saves",
]
