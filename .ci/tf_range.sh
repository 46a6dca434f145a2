#!/usr/bin/env bash
# The TensorFlow releases between the two CI runs with the full suite (2.15 and 2.21): for each,
# a fresh environment, the requirements, a wheel built against that TensorFlow (its version must
# name it, e.g. 0.1.0+tf2.16.2), installed with the test extra, then the smoke test only
# (tests/test_smoke.py). Prints the time each release took.
#
#   .ci/tf_range.sh              # 2.16 ... 2.20
#   .ci/tf_range.sh 2.18 2.19    # some of them
#
# Builds only the op library (the C++ unit tests are off by default). With ccache on PATH
# (Debian: apt-get install ccache) the compiler runs through it, which pays off when the
# script runs again on the same machine (CCACHE_DIR persisted).
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  versions=(2.16 2.17 2.18 2.19 2.20)
fi
cmake_args=()
if command -v ccache >/dev/null; then
  cmake_args+=(-Ccmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
# Each phase prints its wall and CPU time.
TIMEFORMAT="    %0R s wall, %0U+%0S s CPU"

for version in "${versions[@]}"; do
  started=$(date +%s)
  echo "=== TF ${version}: smoke test"
  venv=".venv-tf${version}"
  rm -rf "${venv}" "dist-tf${version}"
  python3 -m venv "${venv}"
  (
    . "${venv}/bin/activate"
    echo "  installing requirements/tf${version}.txt"
    time pip install -q -r "requirements/tf${version}.txt"
    echo "  building the wheel"
    time pip wheel -q --no-deps -w "dist-tf${version}" "${cmake_args[@]}" .
    wheel=$(ls "dist-tf${version}"/tfdata_checkpoint-*.whl)
    tf_version=$(python -c "import tensorflow as tf; print(tf.__version__)" 2>/dev/null)
    case "${wheel}" in
      *"+tf${tf_version}-"*) ;;
      *) echo "${wheel} does not name TensorFlow ${tf_version}" >&2; exit 1 ;;
    esac
    echo "  installing ${wheel}[test]"
    time pip install -q "${wheel}[test]"
    echo "  smoke test"
    time python -m pytest -q -p no:cacheprovider tests/test_smoke.py
  )
  rm -rf "${venv}" "dist-tf${version}"
  echo "=== TF ${version}: passed in $(( $(date +%s) - started )) s"
done
