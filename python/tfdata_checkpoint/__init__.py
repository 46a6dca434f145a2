"""tfdata-checkpoint: fast, sharded, background checkpoints of tf.data iterators."""

from tfdata_checkpoint import ops
from tfdata_checkpoint.hook import CheckpointInputPipelineHook
from tfdata_checkpoint.iterator_state import (
    restore_iterator,
    save_iterator,
    wait_for_pending_saves,
)
from tfdata_checkpoint.manager import IteratorCheckpointManager

__version__ = "0.1.0"

__all__ = [
    "CheckpointInputPipelineHook",
    "IteratorCheckpointManager",
    "ops",
    "restore_iterator",
    "save_iterator",
    "wait_for_pending_saves",
]
