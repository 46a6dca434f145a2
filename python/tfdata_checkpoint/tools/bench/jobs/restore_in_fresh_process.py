"""Restores one checkpoint in a new process, as a restarted job does.

Usage: python -m tfdata_checkpoint.tools.bench.jobs.restore_in_fresh_process
           SCENARIO_JSON {ours,tf} PREFIX

Prints {"growth": peak resident-set growth of the restore in bytes,
        "next_id": id of the first element after the restore}.
"""

from __future__ import annotations

import json
import sys

import tensorflow as tf

import tfdata_checkpoint as tc
from tfdata_checkpoint.tools.bench.memory import peak_memory_growth
from tfdata_checkpoint.tools.bench.scenario import Scenario, make_dataset


def main(argv: list[str]) -> None:
    scenario_json, which, prefix = argv
    scenario = Scenario(**json.loads(scenario_json))
    it = iter(make_dataset(scenario))
    if which == "ours":
        growth = peak_memory_growth(lambda: tc.restore_iterator(it, prefix))
    elif which == "tf":
        growth = peak_memory_growth(
            lambda: tf.train.Checkpoint(iterator=it).read(prefix).expect_partial())
    else:
        raise SystemExit(f"unknown checkpoint kind {which!r}: 'ours' or 'tf'")
    print(json.dumps({"growth": growth, "next_id": int(next(it)[0])}))


if __name__ == "__main__":
    main(sys.argv[1:])
