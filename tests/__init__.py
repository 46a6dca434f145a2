"""The pytest suite, a package so that its helpers import as `tests.support.*`.

test_*.py and conftest.py (fixtures only) are here; helper modules are in
`support/`, the programs the tests run as child processes in `workers/`.
"""
