"""upstream.forward on each transport: retries, redirects, size caps, error kinds; and, through
the gateway, pooled connections that speak out of turn are never reused. Real sockets
throughout."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict

from gateway.errors import UpstreamResponseTooLarge, UpstreamUnavailable
from gateway.models import UpstreamRequest
from gateway.serving.response_budget import ResponseBudget, ResponseHold
from gateway.transport.aiohttp_client import AiohttpTransport
from gateway.transport.factory import make_transport
from gateway.transport.lean import LeanTransport
from gateway.transport.seam import Transport
from gateway.upstream import Limits, forward
from tests.conftest import GatewayFactory, make_config
from tests.raw_upstream import RawUpstream, head

pytestmark = pytest.mark.upstream

LIMITS = Limits(connect=1.0, read=2.0, total=5.0, max_response_size=1000)


def room() -> ResponseHold:
    """A hold on a budget that never runs out (the budget is tested in test_response_budget)."""
    return ResponseBudget(1 << 40).hold("GET")


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    """The transport of the test's parameter, made as the gateway makes it."""
    made = make_transport(make_config())
    yield made
    await made.close()


def request(method: str, url: str, body: bytes = b"") -> UpstreamRequest:
    return UpstreamRequest(method, url, CIMultiDict({"Authorization": "Basic eDp5"}), body)


class FlakyResolver(AbstractResolver):
    """Fails the first lookup (the connection is never made, so the failure is a ``dns`` one),
    then resolves to loopback: aiohttp's resolver interface, and the lean transport's."""

    def __init__(self) -> None:
        self.calls = 0

    async def lookup(self, host: str, port: int) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            raise socket.gaierror(socket.EAI_NONAME, "simulated lookup failure")
        return ["127.0.0.1"]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        if self.calls == 1:
            raise OSError(111, "simulated connect failure")
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


def flaky_transport(name: str, resolver: FlakyResolver) -> Transport:
    if name == "aiohttp":
        return AiohttpTransport(
            pool_size=10, pool_size_per_host=0, keepalive_timeout=5, tls=True, resolver=resolver
        )
    context = ssl.create_default_context()
    return LeanTransport(
        pool_size=10,
        pool_size_per_host=0,
        keepalive_timeout=5,
        tls=context,
        resolve=resolver.lookup,
    )


@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("POST", False), ("DELETE", False)])
async def test_connect_failure_retries_only_a_get(
    aiohttp_server, method: str, retried: bool, upstream_transport: str
) -> None:  # type: ignore[no-untyped-def]
    hits: list[str] = []

    async def ok(request: web.Request) -> web.Response:
        hits.append(request.method)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/v1/InstalledAddOns", ok)
    server = await aiohttp_server(app)
    resolver = FlakyResolver()
    url = f"http://upstream.test:{server.port}/v1/InstalledAddOns"
    transport = flaky_transport(upstream_transport, resolver)
    try:
        if retried:
            response = await forward(transport, request(method, url), LIMITS, room())
            assert response.status == 200
            assert hits == [method] and resolver.calls == 2
        else:
            with pytest.raises(UpstreamUnavailable) as caught:
                await forward(transport, request(method, url, b"A=1"), LIMITS, room())
            assert caught.value.kind == "dns" and caught.value.status == 502
            assert "could not be resolved" in caught.value.message
            assert hits == [] and resolver.calls == 1
    finally:
        await transport.close()


async def test_redirects_are_returned_not_followed(aiohttp_server, transport: Transport) -> None:  # type: ignore[no-untyped-def]
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPFound("http://elsewhere.invalid/steal")

    app = web.Application()
    app.router.add_get("/v1/AvailableAddOns", redirect)
    server = await aiohttp_server(app)
    response = await forward(
        transport, request("GET", str(server.make_url("/v1/AvailableAddOns"))), LIMITS, room()
    )
    assert response.status == 302
    assert response.headers["Location"] == "http://elsewhere.invalid/steal"
    assert hits == ["/v1/AvailableAddOns"]


@pytest.mark.parametrize("declared", [True, False])
async def test_response_over_the_cap(aiohttp_server, declared: bool, transport: Transport) -> None:  # type: ignore[no-untyped-def]
    async def big(request: web.Request) -> web.StreamResponse:
        if declared:
            return web.Response(body=b"x" * 5000)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(5):
            await response.write(b"x" * 1000)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/big", big)
    server = await aiohttp_server(app)
    with pytest.raises(UpstreamResponseTooLarge) as caught:
        await forward(transport, request("GET", str(server.make_url("/big"))), LIMITS, room())
    assert caught.value.kind == "too_large"
    assert caught.value.status == 502


async def test_body_and_raw_url_are_sent_byte_for_byte(
    aiohttp_server, transport: Transport
) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, bytes]] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append((request.raw_path, await request.read()))
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/v1/InstalledAddOns", echo)
    server = await aiohttp_server(app)
    body = b"Configuration=%7B%22a%22%3A+1%7D&UniqueName=caf%C3%A9&X=%FF"
    url = str(server.make_url("/v1/InstalledAddOns")) + "?PageToken=PT%3D%3D&a=b"
    response = await forward(transport, request("POST", url, body), LIMITS, room())
    assert response.status == 201
    assert seen == [("/v1/InstalledAddOns?PageToken=PT%3D%3D&a=b", body)]


@pytest.mark.parametrize("sent", [None, "twilio-python/9.11.0 (Linux x86_64) Python/3.11.9"])
async def test_the_user_agent_is_the_clients_and_none_is_added(
    aiohttp_server, sent: str | None, transport: Transport
) -> None:  # type: ignore[no-untyped-def]
    seen: list[str | None] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request.headers.get("User-Agent"))
        return web.Response()

    app = web.Application()
    app.router.add_get("/v1/AvailableAddOns", echo)
    server = await aiohttp_server(app)
    outgoing = request("GET", str(server.make_url("/v1/AvailableAddOns")))
    if sent is not None:
        outgoing.headers["User-Agent"] = sent
    await forward(transport, outgoing, LIMITS, room())
    assert seen == [sent]  # never aiohttp's own "Python/3.x aiohttp/..."


# -- a response nobody asked for ------------------------------------------------------------


def _response(body: bytes) -> bytes:
    return head("200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}") + body


_STALE = _response(b'{"sid": "a resource of another account"}')


@pytest.mark.parametrize(
    ("late", "connections"),
    [("none", 1), ("whole", 2), ("partial", 2), ("same read", 2)],
)
async def test_a_response_nobody_asked_for_is_never_served_to_the_next_request(
    gateway_client: GatewayFactory, late: str, connections: int
) -> None:
    """An upstream that sends a second, unsolicited response on a kept-alive connection: the
    next request (maybe another consumer's) must not receive it. The connection is discarded
    and the next request gets a new one; without stale bytes the connection is reused."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = _response(b'{"connection": %d}' % upstream.connections)
        if upstream.connections == 1 and late == "same read":
            writer.write(answer + _STALE)
        else:
            writer.write(answer)
        await writer.drain()
        if upstream.connections == 1 and late in ("whole", "partial"):
            await asyncio.sleep(0.2)  # the gateway has its answer; the connection is idle
            writer.write(_STALE if late == "whole" else _STALE[:20])
        while True:  # keep-alive: answer each further request on this connection
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()

    upstream = RawUpstream(script)
    await upstream.start()
    try:
        client = await gateway_client(upstream.url)
        first = await client.get("/marketplace/AvailableAddOns")
        assert await first.read() == b'{"connection": 1}'
        await asyncio.sleep(0.5)
        second = await client.get("/marketplace/AvailableAddOns")
        body = await second.read()
    finally:
        await upstream.close()
    assert b"another account" not in body
    assert (second.status, body) == (200, b'{"connection": %d}' % connections)
    assert upstream.connections == connections
