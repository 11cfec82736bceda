#!/usr/bin/env python3
"""The naive proxy of raw_pool_proxy.py with its upstream client swapped: how much each HTTP
client library costs per request, all else equal (issue 20's comparison of kept libraries).

  .venv/bin/python benchmarks/client_candidates.py CLIENT --port 18095 [--uvloop]

CLIENT is one of:
  raw       raw_pool_proxy.Pool: the ceiling (Content-Length framing only)
  aiohttp   aiohttp.ClientSession (the yardstick's client)
  httpcore  httpcore.AsyncConnectionPool (h11 underneath; anyio on the running loop)
  aiosonic  aiosonic.HTTPClient
  pyreqwest pyreqwest's Client (Rust: reqwest and hyper on their own threads)
  curl_cffi curl_cffi.requests.AsyncSession (libcurl's multi interface on the loop)
  lean      the gateway's lean transport (gateway.transport), through gateway.upstream.forward
  lean-transport  the lean transport alone (send, read, release), as the libraries above are

Each serves ``GET /marketplace/<tail>`` from ``<upstream>/v1/<tail>`` on aiohttp's low-level
``web.Server`` and replaces the URLs with ``bytes.replace``. The libraries other than aiohttp
are not dependencies of the project: install them into the venv that runs this to measure them
(``pip install httpcore aiosonic``). benchmarks/instructions.py counts the instructions per
request of any of these under callgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.raw_pool_proxy import FORWARD_HEADERS, UPSTREAM_PREFIX, Pool  # noqa: E402

Fetch = Callable[[str, dict[str, str]], Awaitable[tuple[int, str, bytes]]]


async def _raw(upstream: str) -> Fetch:
    pool = Pool(upstream)

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        lines = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items())
        status, ctype, body = await pool.get(url[len(upstream) :].encode(), lines)
        return status, ctype.decode(), body

    return fetch


async def _aiohttp(upstream: str) -> Fetch:
    import aiohttp
    from yarl import URL

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=30),
    )

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        async with session.get(URL(url, encoded=True), headers=headers) as response:
            body = await response.read()
            return response.status, response.headers.get("Content-Type", ""), body

    return fetch


async def _httpcore(upstream: str) -> Fetch:
    httpcore: Any = importlib.import_module("httpcore")
    pool = httpcore.AsyncConnectionPool(max_connections=256, keepalive_expiry=60)

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        response = await pool.request("GET", url, headers=list(headers.items()))
        ctype = next((v for k, v in response.headers if k.lower() == b"content-type"), b"")
        return response.status, ctype.decode(), response.content

    return fetch


async def _aiosonic(upstream: str) -> Fetch:
    aiosonic: Any = importlib.import_module("aiosonic")
    client = aiosonic.HTTPClient(aiosonic.TCPConnector(), handle_cookies=False)

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        response = await client.get(url, headers=headers)
        body = await response.content()
        return response.status_code, response.headers.get("Content-Type", ""), body

    return fetch


async def _pyreqwest(upstream: str) -> Fetch:
    builder: Any = importlib.import_module("pyreqwest.client").ClientBuilder
    client = builder().max_connections(256).build()

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        request = client.get(url)
        for name, value in headers.items():
            request = request.header(name, value)
        response = await request.build().send()
        body = await response.bytes()
        return response.status, response.headers.get("content-type", ""), bytes(body)

    return fetch


async def _curl_cffi(upstream: str) -> Fetch:
    requests: Any = importlib.import_module("curl_cffi.requests")
    session = requests.AsyncSession(max_clients=256)

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        response = await session.get(url, headers=headers)
        return response.status_code, response.headers.get("Content-Type", ""), response.content

    return fetch


async def _lean(upstream: str) -> Fetch:
    from multidict import CIMultiDict

    from gateway import upstream as forwarding
    from gateway.config.settings import load_config
    from gateway.models import UpstreamRequest
    from gateway.serving.response_budget import ResponseBudget
    from gateway.transport.factory import make_transport

    config = load_config({"upstream_transport": "lean"}, {})
    transport = make_transport(config)
    limits = forwarding.Limits(connect=5.0, read=30.0, total=60.0, max_response_size=16 << 20)
    budget = ResponseBudget(1 << 40)  # never runs out: no waits to count

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        request = UpstreamRequest("GET", url, CIMultiDict(headers), b"")
        response = await forwarding.forward(transport, request, limits, budget.hold("GET"))
        return response.status, response.headers.get("Content-Type", ""), response.body

    return fetch


async def _lean_transport(upstream: str) -> Fetch:
    from multidict import CIMultiDict

    from gateway.config.settings import load_config
    from gateway.models import UpstreamRequest
    from gateway.transport.factory import make_transport
    from gateway.transport.seam import Timeouts

    transport = make_transport(load_config({"upstream_transport": "lean"}, {}))
    timeouts = Timeouts(5.0, 30.0, 60.0)

    async def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        answer = await transport.send(
            UpstreamRequest("GET", url, CIMultiDict(headers), b""), timeouts
        )
        body = await answer.read()
        await answer.release()
        return answer.status, answer.headers.get("Content-Type", ""), body

    return fetch


CLIENTS = {
    "raw": _raw,
    "aiohttp": _aiohttp,
    "httpcore": _httpcore,
    "aiosonic": _aiosonic,
    "pyreqwest": _pyreqwest,
    "curl_cffi": _curl_cffi,
    "lean": _lean,
    "lean-transport": _lean_transport,
}


async def serve(client: str, host: str, port: int, upstream: str, public_base: str) -> None:
    upstream = upstream.rstrip("/")
    fetch = await CLIENTS[client](upstream)
    new_prefix = (public_base.rstrip("/") + "/marketplace/").encode()

    async def proxy(request: web.BaseRequest) -> web.Response:
        raw = request.raw_path
        if request.method != "GET" or not raw.startswith("/marketplace/"):
            return web.Response(status=404)
        headers = {k: request.headers[k] for k in FORWARD_HEADERS if k in request.headers}
        status, ctype, body = await fetch(upstream + "/v1/" + raw[13:], headers)
        body = body.replace(UPSTREAM_PREFIX, new_prefix)
        return web.Response(body=body, status=status, headers={"Content-Type": ctype})

    server = web.Server(proxy, access_log=None)
    listener = await asyncio.get_running_loop().create_server(server, host, port, backlog=4096)
    print(f"{client} proxy on http://{host}:{port}, upstream={upstream}", file=sys.stderr)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT is ignored in a background job
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with listener:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18095)
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
        runner.run(serve(args.client, args.host, args.port, args.upstream, public_base))


if __name__ == "__main__":
    main()
