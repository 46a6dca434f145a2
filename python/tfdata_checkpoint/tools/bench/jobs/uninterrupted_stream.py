"""The elements an uninterrupted pipeline gives after it has given CONSUMED of them.

Usage: python -m tfdata_checkpoint.tools.bench.jobs.uninterrupted_stream
           SCENARIO_JSON CONSUMED NEXT

What a restored pipeline must give after a checkpoint taken when CONSUMED
elements were out. Prints {"next": fingerprints of elements CONSUMED ..
CONSUMED + NEXT - 1} (see `scenario.fingerprint`).
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    scenario_json, consumed, count = argv
    from tfdata_checkpoint.tools.bench.scenario import Scenario, fingerprint, make_dataset

    it = iter(make_dataset(Scenario(**json.loads(scenario_json))))
    for _ in range(int(consumed)):
        next(it)
    print(json.dumps({"next": [fingerprint(next(it)) for _ in range(int(count))]}))


if __name__ == "__main__":
    main(sys.argv[1:])
