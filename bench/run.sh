#!/usr/bin/env bash
# Runs the full benchmark and writes bench/results/results.{json,md,png}.
# Needs the package installed with the bench extra: pip install ".[bench]".
set -euo pipefail
cd "$(dirname "$0")/.."
exec tfdata-checkpoint bench --repeats "${REPEATS:-3}" --out bench/results "$@"
