"""Restores a pipeline of tests/support/incremental_pipelines.py in a fresh process.

Usage: python -m tests.workers.incremental_restore PIPELINE PREFIX N ROUTE

ROUTE is "iterator" (RestoreIterator) or "shards" (RestoreIteratorShards, then
DeserializeIterator). Prints the next N elements as one JSON list (see `serialized`).
"""

from __future__ import annotations

import json
import sys

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.incremental_pipelines import PIPELINES, serialized

name, prefix, n, route = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
iterator = iter(PIPELINES[name]())
resource = iterator._iterator_resource
if route == "iterator":
    tc.ops.restore_iterator(resource, prefix)
else:
    tf.raw_ops.DeserializeIterator(resource_handle=resource,
                                   serialized=tc.ops.restore_iterator_shards(prefix))
print(json.dumps(serialized(iterator, n)))
