"""tfdata-checkpoint: fast, sharded, background checkpoints of tf.data iterators."""

from tfdata_checkpoint import ops
from tfdata_checkpoint._src.iterator_state import (
    restore_iterator,
    save_iterator,
    wait_for_pending_saves,
)
from tfdata_checkpoint._src.saveable import make_saveable_from_iterator
from tfdata_checkpoint._src.trackable_iterator import TrackableIterator
from tfdata_checkpoint.hook import CheckpointInputPipelineHook
from tfdata_checkpoint.manager import IteratorCheckpointManager

__version__ = "0.1.0"


def __getattr__(name: str):
    # `tfdata_checkpoint.keras` loads Keras: only when asked for.
    if name == "keras":
        import importlib

        return importlib.import_module("tfdata_checkpoint.keras")
    raise AttributeError(f"module 'tfdata_checkpoint' has no attribute {name!r}")


__all__ = [
    "CheckpointInputPipelineHook",
    "IteratorCheckpointManager",
    "TrackableIterator",
    "make_saveable_from_iterator",
    "ops",
    "restore_iterator",
    "save_iterator",
    "wait_for_pending_saves",
]
