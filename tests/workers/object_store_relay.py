"""TLS-terminating HTTPS proxy between TensorFlow's gs:// client and fake-gcs-server.

Usage: python -m tests.workers.object_store_relay LISTEN_PORT UPSTREAM_PORT CERT KEY

Not a test module; started by workers/object_store_servers.py inside the test network
namespace (see ../shared notes: object-stores.md). TensorFlow's GCS client has
its endpoints compiled in (www.googleapis.com, storage.googleapis.com) and
honours `https_proxy`: it sends `CONNECT host:443` here, this relay answers it,
terminates TLS with a certificate of the test CA, and forwards each HTTP/1.1
request in plain text to the emulator, normalising what the emulator rejects:
`Transfer-Encoding: identity` on empty bodies (501) and chunked bodies (sent
de-chunked with a Content-Length); `Expect: 100-continue` is answered here;
the `Location` of an upload session is given back as https (the emulator,
served in plain HTTP, says http, which the client would not proxy).

Fault injection, for the commit-interruption test: a plain (non-CONNECT)
request `POST /__relay/arm?hold=K` resets the count of mutating requests
(POST, PUT, PATCH, DELETE) and holds the K-th one from then on: it is never
forwarded and never answered, so that the client can be killed exactly
before that step of its commit reaches the store (K=0 holds none).
`GET /__relay/status` answers JSON: the count, whether a request is held, and
the mutating requests seen since the arm (method and path).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import urllib.parse

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
_DEBUG = bool(os.environ.get("TFDC_RELAY_DEBUG"))


class _State:
    def __init__(self) -> None:
        self.hold = 0
        self.count = 0
        self.held = False
        self.log: list[list[str]] = []
        self.release = asyncio.Event()

    def arm(self, hold: int) -> None:
        self.release.set()  # drops a request held by the previous arm
        self.release = asyncio.Event()
        self.hold, self.count, self.held, self.log = hold, 0, False, []


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
    try:
        line = await reader.readline()
    except (ConnectionError, asyncio.IncompleteReadError):
        return None
    if not line:
        return None
    headers = []
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return line.decode("latin-1").rstrip("\r\n"), headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def _dechunk(reader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _pipe(reader, writer, length: int) -> None:
    while length:
        chunk = await reader.read(min(length, 1 << 20))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", length)
        writer.write(chunk)
        length -= len(chunk)
        await writer.drain()


async def _forward(first_line: str, headers, reader, writer, *, drop: set[str],
                   extra: tuple = (), until_eof: bool = False, no_body: bool = False) -> None:
    """Sends the message to `writer`, its body read from `reader`: de-chunked, with a length."""
    encoding = (_header(headers, "transfer-encoding") or "").lower()
    length = _header(headers, "content-length")
    body = None
    if no_body:
        body = b""
    elif "chunked" in encoding:
        body = await _dechunk(reader)
    elif length is None:
        body = await reader.read() if until_eof else b""
    size = len(body) if body is not None else int(length)
    kept = [(k, v) for k, v in headers
            if k.lower() not in drop | {"transfer-encoding", "content-length"}]
    if not (no_body and length is not None):
        kept.append(("Content-Length", str(size)))
    else:
        kept.append(("Content-Length", length))  # a HEAD answer keeps the object's length
    kept.extend(extra)
    head = first_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept) + "\r\n"
    writer.write(head.encode("latin-1"))
    if body is not None:
        writer.write(body)
        await writer.drain()
    else:
        await _pipe(reader, writer, size)


class Relay:
    def __init__(self, upstream_port: int, context: ssl.SSLContext) -> None:
        self._upstream_port = upstream_port
        self._context = context
        self._state = _State()

    async def handle(self, reader, writer) -> None:
        try:
            head = await _read_head(reader)
            if head is None:
                return
            line, _ = head
            method, target, _ = line.split(" ", 2)
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await writer.start_tls(self._context)
                await self._serve(reader, writer)
            else:
                await self._control(method, target, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _control(self, method: str, target: str, writer) -> None:
        url = urllib.parse.urlsplit(target)
        if method == "POST" and url.path == "/__relay/arm":
            query = urllib.parse.parse_qs(url.query)
            self._state.arm(int(query.get("hold", ["0"])[0]))
        state = self._state
        body = json.dumps({"count": state.count, "held": state.held, "log": state.log}).encode()
        head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()

    async def _serve(self, reader, writer) -> None:
        upstream = None
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                line, headers = head
                method = line.split(" ", 1)[0]
                if _DEBUG:
                    print(line, headers, file=sys.stderr, flush=True)
                if (_header(headers, "expect") or "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                if method in MUTATING:
                    state = self._state
                    state.count += 1
                    state.log.append([method, line.split(" ")[1]])
                    if state.count == state.hold:
                        state.held = True
                        await state.release.wait()
                        return  # dropped: never forwarded, never answered
                if upstream is None:
                    upstream = await asyncio.open_connection("127.0.0.1", self._upstream_port)
                up_reader, up_writer = upstream
                await _forward(line, headers, reader, up_writer, drop={"expect", "connection"},
                               extra=(("Connection", "keep-alive"),))
                status_line, response_headers = await _read_head(up_reader)
                status = int(status_line.split(" ")[1])
                close = (_header(response_headers, "connection") or "").lower() == "close"
                if _DEBUG:
                    print("  ->", status_line, response_headers, file=sys.stderr, flush=True)
                # The emulator serves plain HTTP and names its upload sessions
                # so; the client must come back through this proxy, over TLS.
                response_headers = [
                    (k, v.replace("http://", "https://", 1)
                     if k.lower() == "location" and v.startswith("http://") else v)
                    for k, v in response_headers]
                no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
                await _forward(status_line, response_headers, up_reader, writer,
                               drop={"connection"}, until_eof=True, no_body=no_body)
                if close:
                    up_writer.close()
                    upstream = None
        finally:
            if upstream is not None:
                upstream[1].close()


async def main() -> None:
    port, upstream_port, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    relay = Relay(upstream_port, context)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", port)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
