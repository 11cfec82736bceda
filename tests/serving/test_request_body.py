"""gateway.serving.request_body: bodies read within their deadlines and the process's memory budget.

The budget is unit-tested; the deadlines and refusals are shown over raw sockets against a
gateway started the way ``gateway serve`` starts it, with a recording upstream behind it:
nothing refused is forwarded, and every byte of budget a request held is given back.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from gateway.app import LIVE, create_app
from gateway.errors import GatewayBusy
from gateway.serving.request_body import BodyBudget
from gateway.serving.server import GatewayRunner
from tests.conftest import make_config
from tests.fake_upstream import FakeUpstream

INSTALL = "/marketplace/InstalledAddOns"


def test_the_budget_is_claimed_refused_and_given_back() -> None:
    budget = BodyBudget(100)
    first, second = budget.hold(), budget.hold()
    first.reserve(60)
    with pytest.raises(GatewayBusy) as refused:
        second.reserve(41)
    error = refused.value
    assert (error.status, error.code, dict(error.headers)) == (503, 88006, {"Retry-After": "1"})
    second.reserve(40)
    assert budget.used == 100
    first.release()
    first.release()  # twice is harmless
    assert budget.used == 40
    second.release()
    assert budget.used == 0


@dataclass
class Gateway:
    host: str
    port: int
    upstream: FakeUpstream
    app: web.Application

    @property
    def budget_used(self) -> int:
        return self.app[LIVE].pipeline.bodies.used


@pytest.fixture
async def start(fake_upstream: FakeUpstream) -> AsyncIterator[Callable[..., Any]]:
    runners: list[web.AppRunner] = []

    async def starter(**overrides: Any) -> Gateway:
        app = create_app(make_config(fake_upstream.url, **overrides))
        runner = GatewayRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return Gateway(host, port, fake_upstream, app)

    yield starter
    for runner in runners:
        await runner.cleanup()


def head(length: int | None = None, chunked: bool = False) -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    return f"POST {INSTALL} HTTP/1.1\r\nHost: gw\r\n{framing}\r\n\r\n".encode()


async def read_reply(reader: asyncio.StreamReader, seconds: float = 10) -> bytes:
    async with asyncio.timeout(seconds):
        return await reader.read()


async def test_a_body_that_stops_arriving_gets_408_after_client_body_timeout(
    start: Callable[..., Any],
) -> None:
    gateway = await start(client_body_timeout=0.5, client_body_total_timeout=30.0)
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    began = time.monotonic()
    writer.write(head(100) + b"UniqueName")  # 10 of 100 bytes, then silence
    reply = await read_reply(reader)  # ends: the gateway closed the connection
    took = time.monotonic() - began
    writer.close()
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in reply and b'"code":88008' in reply
    assert b"No part of the request body arrived for 0.5 seconds" in reply
    assert 0.5 <= took < 3
    assert gateway.upstream.received == []
    assert gateway.budget_used == 0


async def test_a_body_that_trickles_past_the_whole_body_deadline_gets_408(
    start: Callable[..., Any],
) -> None:
    gateway = await start(client_body_timeout=0.5, client_body_total_timeout=1.0)
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    began = time.monotonic()
    writer.write(head(100))

    async def trickle() -> None:  # one byte every 0.1 s: never a pause, never done in time
        while not writer.is_closing():
            writer.write(b"x")
            await asyncio.sleep(0.1)

    sender = asyncio.create_task(trickle())
    reply = await read_reply(reader)
    took = time.monotonic() - began
    writer.close()
    await sender
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 1 seconds" in reply
    assert 1.0 <= took < 4
    assert gateway.upstream.received == []


@pytest.mark.upstream
async def test_a_declared_body_over_the_budget_is_refused_before_it_is_read(
    start: Callable[..., Any],
) -> None:
    gateway = await start(max_body_size=1000, max_buffered_body_size=1000)
    slow_reader, slow_writer = await asyncio.open_connection(gateway.host, gateway.port)
    slow_writer.write(head(1000) + b"x" * 500)  # holds the whole budget while it waits
    await asyncio.sleep(0.3)
    assert gateway.budget_used == 1000

    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(head(10) + b"UniqueName")
    refused = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert refused.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: 1" in refused

    slow_writer.write(b"x" * 500)  # the held body completes and is forwarded
    done = await read_reply_until(slow_reader, b"\r\n\r\n")
    slow_writer.close()
    assert done.startswith(b"HTTP/1.1 201 ")
    assert [len(r.body) for r in gateway.upstream.received] == [1000]
    assert gateway.budget_used == 0


async def read_reply_until(reader: asyncio.StreamReader, separator: bytes) -> bytes:
    async with asyncio.timeout(10):
        return await reader.readuntil(separator)


async def test_a_chunked_body_claims_the_budget_as_it_arrives(start: Callable[..., Any]) -> None:
    gateway = await start(max_body_size=1000, max_buffered_body_size=1000)
    _, holder = await asyncio.open_connection(gateway.host, gateway.port)
    holder.write(head(700) + b"x")
    await asyncio.sleep(0.3)

    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(head(chunked=True) + b"c8\r\n" + b"y" * 200 + b"\r\n")  # 200 fits beside 700
    await asyncio.sleep(0.3)
    assert gateway.budget_used == 900
    writer.write(b"c8\r\n" + b"y" * 200 + b"\r\n")  # 200 more do not
    refused = await read_reply_until(reader, b"\r\n\r\n")
    writer.close()
    holder.close()
    assert refused.startswith(b"HTTP/1.1 503 ")
    assert gateway.upstream.received == []
    await asyncio.sleep(0.3)
    assert gateway.budget_used == 0


async def test_broken_chunk_framing_mid_body_is_answered_400_at_once(
    start: Callable[..., Any],
) -> None:
    gateway = await start(client_body_timeout=30.0)
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(head(chunked=True) + b"5\r\nhello\r\n")
    await asyncio.sleep(0.3)  # the handler is reading the body now
    began = time.monotonic()
    writer.write(b"zz\r\nnot a chunk\r\n0\r\n\r\n")
    reply = await read_reply(reader)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"not validly framed" in reply
    assert reply.count(b"HTTP/1.") == 1  # one answer, then the connection is closed
    assert time.monotonic() - began < 3  # not the 30 s body deadline
    assert gateway.upstream.received == []


@pytest.mark.upstream
async def test_a_compressed_body_is_forwarded_as_it_came(start: Callable[..., Any]) -> None:
    gateway = await start()
    body = gzip.compress(b"UniqueName=caf%C3%A9&Configuration=%7B%7D")
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(
        f"POST {INSTALL} HTTP/1.1\r\nHost: gw\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    reply = await read_reply(reader)
    writer.close()
    assert reply.startswith(b"HTTP/1.1 201 ")
    [received] = gateway.upstream.received
    assert received.headers["Content-Encoding"] == "gzip"
    # The upstream (aiohttp, decoding as a server does) read it: the bytes it got were gzip.
    assert received.body == gzip.decompress(body)
