"""gs:// (TF 2.15 and later) and s3:// (TF 2.15, tensorflow-io) on emulators, on loopback.

The test starts the emulators (fake-gcs-server behind a TLS relay, moto) in a
user and network namespace of its own (support/object_stores.py) and runs
workers/object_store_cases.py inside it with pytest: save and restore, the hook, the
manager (background writes, retention, a SIGKILLed writer's leftovers),
corruption and `verify`, two writers on one prefix, and (gs://) the commit
stopped before each of its requests. Skipped, with the reason, where the
namespace or the servers cannot be had.
"""

from __future__ import annotations

import importlib.util
import time

import pytest
import tensorflow as tf

from tests.support.object_stores import ObjectStores, unavailable
from tests.support.subprocesses import worker_command

# A path, for the pytest run inside the namespace; found without importing the module
# (outside the namespace it skips itself at import).
CASES = importlib.util.find_spec("tests.workers.object_store_cases").origin

TF_VERSION = tuple(int(p) for p in tf.__version__.split(".")[:2])


def _run_cases(stores: ObjectStores, store: str) -> None:
    started = time.monotonic()
    extra = {"TFDC_STORE": store, "TFDC_STORE_BUCKET": stores.bucket(store)}
    if store == "gcs":
        extra["TFDC_RELAY_CONTROL"] = stores.info["gcs"]["relay_control"]
    out = stores.run(worker_command("object_store_pytest", "-q", "-s", "-p", "no:cacheprovider",
                                    CASES),
                     store, extra_env=extra, timeout=1500)
    print(out.stdout[-6000:])
    print(f"{store} cases inside the namespace: {time.monotonic() - started:.1f} s")
    assert out.returncode == 0, f"{out.stdout[-8000:]}\n{out.stderr[-3000:]}"


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    reason = unavailable(("gcs",))
    if reason:
        pytest.skip(f"gs:// emulator unavailable: {reason}")
    stores = ObjectStores(str(tmp_path_factory.mktemp("gcs")), ("gcs",))
    yield stores
    stores.close()


def test_gcs(gcs):
    _run_cases(gcs, "gcs")


def test_s3_with_tensorflow_io(tmp_path_factory):
    if TF_VERSION != (2, 15):
        pytest.skip("s3:// needs tensorflow-io, whose last release (0.37) loads under TF 2.16 "
                    "only; 0.36 pairs with TF 2.15")
    if importlib.util.find_spec("tensorflow_io") is None:
        pytest.skip("tensorflow-io is not installed: pip install -r "
                    "requirements/test-s3-tf2.15.txt")
    reason = unavailable(("s3",))
    if reason:
        pytest.skip(f"s3:// emulator unavailable: {reason}")
    stores = ObjectStores(str(tmp_path_factory.mktemp("s3")), ("s3",))
    try:
        _run_cases(stores, "s3")
    finally:
        stores.close()
