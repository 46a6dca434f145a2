"""Restores the kill trials' pipeline from a checkpoint in a fresh process.

Usage: python -m tests.workers.kill_pipeline_restore PREFIX COUNT

Prints, as JSON, (id, first and last payload value) of the next COUNT elements.
"""

from __future__ import annotations

import json
import sys

import tfdata_checkpoint as tc
from tests.support.kill_pipeline import make_dataset

iterator = iter(make_dataset(0))
tc.restore_iterator(iterator, sys.argv[1])
out = []
for _ in range(int(sys.argv[2])):
    ident, payload = next(iterator)
    out.append([int(ident), float(payload[0]), float(payload[-1])])
print(json.dumps(out))
