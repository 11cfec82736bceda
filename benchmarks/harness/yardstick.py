#!/usr/bin/env python3
"""The yardstick: the least a Python gateway must do for a GET, in one aiohttp process. Not the
gateway; its figures say what an aiohttp process costs on this box before any real work.

  GET /marketplace/<tail>?<query>  ->  GET <upstream>/v1/<tail>?<query>  (one pooled session)
  body: https://marketplace.twilio.com/v1/ -> <public base>/marketplace/  (bytes.replace)

No header filtering, JSON parsing, metrics, error mapping or streaming; no access log.
--uvloop swaps the event loop. servers.sh starts it (yard, yarduv), pinned, with the project's
own .venv Python (its aiohttp and uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import http_parser, web
from yarl import URL

UPSTREAM_PREFIX = b"https://marketplace.twilio.com/v1/"
PASSED_HEADERS = ("Authorization", "Accept", "User-Agent")
SESSION = web.AppKey("session", aiohttp.ClientSession)
PREFIX = len("/marketplace/")


def build_app(upstream: str, public_base: str) -> web.Application:
    app = web.Application()
    replacement = (public_base.rstrip("/") + "/marketplace/").encode()
    origin = upstream.rstrip("/")

    async def session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60, ttl_dns_cache=None)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=timeout
        ) as opened:
            app[SESSION] = opened
            yield

    async def forward(request: web.Request) -> web.Response:
        # the raw path keeps the client's percent-encoding as it came
        url = URL(f"{origin}/v1/{request.raw_path[PREFIX:]}", encoded=True)
        headers = {
            name: request.headers[name] for name in PASSED_HEADERS if name in request.headers
        }
        async with request.app[SESSION].get(url, headers=headers) as response:
            body = await response.read()
            content_type = response.headers.get("Content-Type", "application/json")
            status = response.status
        body = body.replace(UPSTREAM_PREFIX, replacement)
        return web.Response(body=body, status=status, headers={"Content-Type": content_type})

    app.cleanup_ctx.append(session)
    app.router.add_get("/marketplace/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--upstream", default="http://127.0.0.1:18081")
    parser.add_argument(
        "--public-base", default=None, help="base written into rewritten URLs (http://HOST:PORT)"
    )
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    public_base = args.public_base or f"http://{args.host}:{args.port}"
    if args.uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c_parser = http_parser.HttpRequestParser is not http_parser.HttpRequestParserPy
    kind = f"{type(loop).__module__}.{type(loop).__name__}"
    print(
        f"yardstick: aiohttp {aiohttp.__version__}, loop={kind}, C parser={c_parser}, "
        f"port={args.port}, upstream={args.upstream}, public_base={public_base}",
        file=sys.stderr,
        flush=True,
    )
    web.run_app(
        build_app(args.upstream, public_base),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=loop,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
