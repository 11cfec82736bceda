"""gateway.transport.pool: the lean transport's limits, its queue and its idle connections,
against a real loopback upstream that holds each answer until the test lets it go."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from multidict import CIMultiDict

from gateway.errors import GatewayError
from gateway.models import UpstreamRequest
from gateway.transport.connection import Connection
from gateway.transport.lean import LeanTransport
from gateway.transport.seam import Timeouts
from tests.raw_upstream import RawUpstream, head

OK = head("200 OK", "Content-Length: 2") + b"{}"


@dataclass
class Held:
    """An upstream that answers each request once ``release`` is given a turn."""

    turns: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    upstream: RawUpstream | None = None

    async def script(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await self.turns.get()
            writer.write(OK)
            await reader.readuntil(b"\r\n\r\n")

    def release(self, count: int = 1) -> None:
        for _ in range(count):
            self.turns.put_nowait(None)

    @property
    def url(self) -> str:
        assert self.upstream is not None
        return self.upstream.url + "/v1/A"


@pytest.fixture
async def held() -> AsyncIterator[Held]:
    made = Held()
    made.upstream = RawUpstream(made.script)
    await made.upstream.start()
    yield made
    await made.upstream.close()


def transport(pool_size: int = 100, per_host: int = 0, keepalive: float = 15.0) -> LeanTransport:
    return LeanTransport(
        pool_size=pool_size,
        pool_size_per_host=per_host,
        keepalive_timeout=keepalive,
        tls=ssl.create_default_context(),
    )


async def get(lean: LeanTransport, url: str, connect: float = 5.0) -> Connection:
    request = UpstreamRequest("GET", url, CIMultiDict(), b"")
    answer = await lean.send(request, Timeouts(connect, 5.0, 10.0))
    await answer.read()
    return answer


async def test_requests_over_the_limit_wait_in_order_and_get_the_freed_connection(
    held: Held,
) -> None:
    lean = transport(pool_size=1)
    try:
        first = asyncio.ensure_future(get(lean, held.url))
        await asyncio.sleep(0.05)
        later = [asyncio.ensure_future(get(lean, held.url)) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in later)
        held.release()
        answer = await first
        await answer.release()
        done: list[Connection] = []
        for task in later:
            held.release()
            answer = await task
            done.append(answer)
            await answer.release()
    finally:
        await lean.close()
    assert held.upstream is not None and held.upstream.connections == 1
    assert all(answer is done[0] for answer in done)  # handed over, never a second connection


async def test_a_waiter_that_gives_up_passes_its_turn_on(held: Held) -> None:
    lean = transport(pool_size=1)
    try:
        first = asyncio.ensure_future(get(lean, held.url))
        await asyncio.sleep(0.05)
        with pytest.raises(GatewayError) as caught:
            await get(lean, held.url, connect=0.1)  # its connect deadline passes in the queue
        assert caught.value.kind == "timeout"
        patient = asyncio.ensure_future(get(lean, held.url))
        await asyncio.sleep(0.05)
        held.release(2)
        await (await first).release()
        async with asyncio.timeout(5):
            await (await patient).release()
    finally:
        await lean.close()


async def test_the_per_host_limit_holds_while_the_total_has_room(held: Held) -> None:
    lean = transport(pool_size=100, per_host=2)
    try:
        tasks = [asyncio.ensure_future(get(lean, held.url)) for _ in range(5)]
        await asyncio.sleep(0.1)
        assert held.upstream is not None and held.upstream.connections == 2
        held.release(5)
        async with asyncio.timeout(5):
            for task in tasks:
                await (await task).release()
    finally:
        await lean.close()
    assert held.upstream.connections == 2


async def test_the_warmest_idle_connection_is_reused_and_the_idle_expire(held: Held) -> None:
    lean = transport(keepalive=0.3)
    try:
        one, two = (asyncio.ensure_future(get(lean, held.url)) for _ in range(2))
        held.release(2)
        first, second = await one, await two
        await first.release()
        await second.release()
        held.release()
        again = await get(lean, held.url)
        assert again is second  # last in, first out
        await again.release()
        await asyncio.sleep(0.8)  # past keepalive_timeout: both closed, none left idle
        assert first.closed and second.closed
        held.release()
        fresh = await get(lean, held.url)
        assert fresh is not first and fresh is not second
        await fresh.release()
    finally:
        await lean.close()
    assert held.upstream is not None and held.upstream.connections == 3


async def test_closing_the_transport_closes_the_idle_connections(held: Held) -> None:
    lean = transport()
    held.release()
    answer = await get(lean, held.url)
    await answer.release()
    assert not answer.closed
    await lean.close()
    assert answer.closed and lean.closed
    with pytest.raises(GatewayError):  # nothing new is dialled once it is closed
        await get(lean, held.url)
    assert held.upstream is not None and held.upstream.connections == 1
