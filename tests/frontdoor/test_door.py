"""The front-door label: aiohttp carries the intercepted host into every request of the
connection it was handed, and to no other connection. If an aiohttp upgrade stopped copying the
context into the connection's task, these fail."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from gateway.frontdoor.door import INTERCEPTED_HOST, front_door, intercepted_host

from .conftest import ACCOUNT, PREVIEW, TOKEN, StackFactory


async def test_the_host_set_at_hand_over_reaches_that_connection_only() -> None:
    seen: list[tuple[str, str | None, str]] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        await asyncio.sleep(0)  # and still after a task switch
        seen.append((request.path, intercepted_host(), front_door(request)))
        return web.Response(text="ok")

    loop = asyncio.get_running_loop()
    server = web.Server(handler)
    listener = await loop.create_server(server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    ours, theirs = socket.socketpair()
    token = INTERCEPTED_HOST.set(PREVIEW)
    try:  # as the proxy front door hands over a decrypted connection
        await loop.connect_accepted_socket(server, ours)
    finally:
        INTERCEPTED_HOST.reset(token)
    reader, writer = await asyncio.open_connection(sock=theirs)
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/handed-1", "/handed-2"):
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await writer.drain()
                assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
                async with session.get(f"http://127.0.0.1:{port}/direct") as response:
                    assert response.status == 200
    finally:
        writer.close()
        listener.close()
        await server.shutdown()
    assert seen == [
        ("/handed-1", PREVIEW, "proxy"),
        ("/direct", None, "direct"),
        ("/handed-2", PREVIEW, "proxy"),
        ("/direct", None, "direct"),
    ]


@pytest.mark.upstream
async def test_proxy_and_direct_requests_at_once_keep_their_bases(
    front_stack: StackFactory,
) -> None:
    stack = await front_stack()
    trust = stack.ca.client_context()
    auth = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT, TOKEN)}

    async def through_proxy() -> str:
        async with aiohttp.ClientSession(headers=auth) as session:
            async with session.get(
                f"https://{PREVIEW}/marketplace/AvailableAddOns?PageSize=1",
                proxy=stack.proxy_url,
                ssl=trust,
            ) as response:
                return str((await response.json())["meta"]["url"])

    async def direct() -> str:
        async with aiohttp.ClientSession(headers=auth) as session:
            async with session.get(
                f"{stack.gateway_url}/marketplace/AvailableAddOns?PageSize=1"
            ) as response:
                return str((await response.json())["meta"]["url"])

    results = await asyncio.gather(*(through_proxy() if i % 2 else direct() for i in range(10)))
    assert all(r.startswith(f"https://{PREVIEW}/marketplace/") for r in results[1::2])
    assert all(r.startswith(f"{stack.gateway_url}/marketplace/") for r in results[::2])
    doors = sorted(line["front_door"] for line in stack.access_lines())
    assert doors == ["direct"] * 5 + ["proxy"] * 5
