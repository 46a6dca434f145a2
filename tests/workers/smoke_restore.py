"""Restores test_smoke.py's pipeline in a fresh process.

Usage: python -m tests.workers.smoke_restore PREFIX

Prints the first components of the next 30 elements as JSON.
"""

from __future__ import annotations

import json
import sys

import tfdata_checkpoint as tc
from tests.support.hardening_pipelines import smoke_pipeline

it = iter(smoke_pipeline())
tc.restore_iterator(it, sys.argv[1])
print(json.dumps([next(it)[0].numpy().tolist() for _ in range(30)]))
