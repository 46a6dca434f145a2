"""Programs the tests run as child processes (`python -m tests.workers.<name>`).

Start them with `tests.support.subprocesses.worker_command` and `child_env`.

object_store_cases.py is the exception: a pytest module (not matched by the
suite's test_*.py), run by object_store_pytest.py inside the object stores'
network namespace.
"""
