#!/usr/bin/env python3
"""A ceiling reference for the load benchmark, beside the aiohttp yardstick: not the product.

The yardstick's naive work (forward a GET, ``bytes.replace`` the URLs) with the least a Python
process can spend on HTTP around it:

- aiohttp's low-level ``web.Server``: no ``Application``, router or middleware;
- a raw keep-alive upstream pool: an ``asyncio.Protocol`` per connection, idle connections
  kept in a list, the response framed by its ``Content-Length`` alone (no chunked bodies, no
  timeouts, no error mapping, no size cap: nginx's static answers are all it has to read).

  GET /marketplace/<tail>?<q>  ->  GET <upstream>/v1/<tail>?<q>   (pooled, kept alive)
  body.replace(b"https://marketplace.twilio.com/v1/", b"<public base>/marketplace/")

What the gateway's lean transport (gateway/transport/) does on top of this is what a real
client needs: chunked and close-delimited bodies, deadlines, TLS, pool limits, the retry rule.

  .venv/bin/python benchmarks/raw_pool_proxy.py --port 18094 [--uvloop]

Needs only aiohttp (and uvloop for --uvloop), so the bench venv runs it as well.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from urllib.parse import urlsplit

from aiohttp import web

UPSTREAM_PREFIX = b"https://marketplace.twilio.com/v1/"
FORWARD_HEADERS = ("Authorization", "Accept", "User-Agent")


class _Connection(asyncio.Protocol):
    """One upstream connection: a request at a time, its answer framed by Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes, bytes]] | None = None
        self.buffer = bytearray()
        self.head: tuple[int, bytes, bool] | None = None  # status, content type, keep-alive
        self.length = 0
        self.usable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: never reuse this connection
            self._drop()
            return
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(bytes(self.buffer[:end]))
            del self.buffer[: end + 4]
        if len(self.buffer) >= self.length:
            body = bytes(self.buffer[: self.length])
            del self.buffer[: self.length]
            assert self.head is not None
            status, ctype, keep = self.head
            self.head = None
            self.usable = keep and not self.buffer
            waiter, self.waiter = self.waiter, None
            waiter.set_result((status, ctype, body))

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status = int(lines[0][9:12])
        ctype, keep, length = b"application/json", True, 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"content-type":
                ctype = value.strip()
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        self.head, self.length = (status, ctype, keep), length

    def _drop(self) -> None:
        self.usable = False
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("upstream closed the connection"))
        self.waiter = None


class Pool:
    """Idle connections to one upstream, reused last-in first-out; no limit."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = parts.netloc.encode()
        self.idle: list[_Connection] = []

    async def get(self, target: bytes, headers: bytes) -> tuple[int, bytes, bytes]:
        loop = asyncio.get_running_loop()
        connection = None
        while self.idle:
            candidate = self.idle.pop()
            if candidate.usable:
                connection = candidate
                break
        if connection is None:
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
        waiter: asyncio.Future[tuple[int, bytes, bytes]] = loop.create_future()
        connection.waiter = waiter
        assert connection.transport is not None
        connection.transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, self.host_header, headers)
        )
        result = await waiter
        if connection.usable:
            self.idle.append(connection)
        else:
            connection._drop()
        return result


def build_server(upstream: str, public_base: str) -> web.Server:
    pool = Pool(upstream)
    new_prefix = (public_base.rstrip("/") + "/marketplace/").encode()

    async def proxy(request: web.BaseRequest) -> web.Response:
        raw = request.raw_path
        if request.method != "GET" or not raw.startswith("/marketplace/"):
            return web.Response(status=404)
        headers = b"".join(
            b"%s: %s\r\n" % (name.encode(), request.headers[name].encode("latin-1"))
            for name in FORWARD_HEADERS
            if name in request.headers
        )
        status, ctype, body = await pool.get(b"/v1/" + raw[13:].encode(), headers)
        body = body.replace(UPSTREAM_PREFIX, new_prefix)
        return web.Response(body=body, status=status, headers={"Content-Type": ctype.decode()})

    return web.Server(proxy, access_log=None)


async def serve(host: str, port: int, upstream: str, public_base: str) -> None:
    server = build_server(upstream, public_base)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, host, port, backlog=4096)
    print(f"raw pool proxy on http://{host}:{port}, upstream={upstream}", file=sys.stderr)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT is ignored in a background job
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with listener:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18094)
    parser.add_argument("--upstream", default="http://127.0.0.1:18081")
    parser.add_argument("--public-base", default=None, help="default http://HOST:PORT")
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    public_base = args.public_base or f"http://{args.host}:{args.port}"
    factory = None
    if args.uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.host, args.port, args.upstream, public_base))


if __name__ == "__main__":
    main()
