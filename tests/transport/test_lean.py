"""gateway.transport.lean (and, where the behaviour is the seam's, the aiohttp transport beside
it): keep-alive, the race of an upstream that closes a kept-alive connection as a request is
written, 1,000 requests through 10 connections, and what dialling can fail with. Real loopback
servers throughout."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict

from gateway.errors import GatewayError
from gateway.models import UpstreamRequest
from gateway.serving.response_budget import ResponseBudget, ResponseHold
from gateway.transport.factory import make_transport
from gateway.transport.lean import LeanTransport
from gateway.transport.seam import NoAnswer, Timeouts, Transport
from gateway.upstream import Limits, forward
from tests.conftest import make_config
from tests.processes import free_port
from tests.raw_upstream import RawUpstream, head

TIMEOUTS = Timeouts(connect=2.0, read=5.0, total=10.0)
LIMITS = Limits(connect=2.0, read=5.0, total=10.0, max_response_size=1 << 20)
OK = head("200 OK", "Content-Type: application/json", "Content-Length: 2") + b"{}"


def room() -> ResponseHold:
    """A hold on a budget that never runs out (the budget is tested in test_response_budget)."""
    return ResponseBudget(1 << 40).hold("GET")


def request(method: str, url: str, body: bytes = b"") -> UpstreamRequest:
    return UpstreamRequest(method, url, CIMultiDict({"Authorization": "Basic eDp5"}), body)


def lean(**limits: int) -> LeanTransport:
    return LeanTransport(
        pool_size=limits.get("pool_size", 100),
        pool_size_per_host=limits.get("pool_size_per_host", 0),
        keepalive_timeout=15.0,
        tls=ssl.create_default_context(),
    )


@pytest.fixture
async def upstreams() -> AsyncIterator[list[RawUpstream]]:
    started: list[RawUpstream] = []
    yield started
    for upstream in started:
        await upstream.close()


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(OK)
    while True:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)


async def test_requests_in_turn_share_one_kept_alive_connection(
    upstreams: list[RawUpstream],
) -> None:
    upstream = RawUpstream(keep_answering)
    upstreams.append(upstream)
    await upstream.start()
    transport = lean()
    try:
        for _ in range(5):
            response = await forward(
                transport, request("GET", upstream.url + "/v1/A"), LIMITS, room()
            )
            assert (response.status, response.body) == (200, b"{}")
    finally:
        await transport.close()
    assert upstream.connections == 1


@pytest.mark.upstream
@pytest.mark.parametrize(("method", "connections", "status"), [("GET", 2, 200), ("POST", 1, 502)])
async def test_an_upstream_closing_a_kept_alive_connection_as_a_request_is_written(
    upstreams: list[RawUpstream], method: str, connections: int, status: int
) -> None:
    """The first connection answers once, then closes as the next request arrives, without a
    word: that request got no answer at all. A GET is sent once more, on a new connection; a
    POST may have been carried out, so it is never sent again."""

    unanswered: list[bytes] = []

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        if upstream.connections == 1:
            # the next request, on the kept-alive link: read, then the link closes unanswered
            unanswered.append(await reader.readuntil(b"\r\n\r\n"))
            writer.transport.abort()
            return
        await keep_answering(reader, writer)

    upstream = RawUpstream(answer_once)
    upstreams.append(upstream)
    await upstream.start()
    transport: Transport = make_transport(make_config())
    try:
        first = await forward(
            transport, request(method, upstream.url + "/v1/A", b"A=1"), LIMITS, room()
        )
        assert first.status == 200
        try:
            second = await forward(
                transport, request(method, upstream.url + "/v1/A", b"A=1"), LIMITS, room()
            )
            outcome = second.status
        except GatewayError as error:
            outcome = error.status
            assert (error.kind, error.code) == ("reset", 88001)
    finally:
        await transport.close()
    assert outcome == status
    assert upstream.connections == connections
    # (RawUpstream records the first request head of each connection)
    sent = [h.split(b" ", 1)[0] for h in [*upstream.heads, *unanswered]]
    assert sent == [method.encode()] * (1 + connections)  # the second POST arrived just once


@pytest.mark.upstream
async def test_a_thousand_requests_at_once_through_ten_connections(
    upstreams: list[RawUpstream],
) -> None:
    open_now = 0
    peak = 0

    async def count_and_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            await asyncio.sleep(0.001)
            await keep_answering(reader, writer)
        finally:
            open_now -= 1

    upstream = RawUpstream(count_and_answer)
    upstreams.append(upstream)
    await upstream.start()
    transport = make_transport(make_config(pool_size=10, connect_timeout=30.0))
    limits = Limits(connect=30.0, read=30.0, total=60.0, max_response_size=1000)
    try:
        async with asyncio.timeout(60):
            answers = await asyncio.gather(
                *(
                    forward(transport, request("GET", f"{upstream.url}/v1/A"), limits, room())
                    for _ in range(1000)
                )
            )
    finally:
        await transport.close()
    assert [a.status for a in answers] == [200] * 1000
    assert upstream.connections <= 10 and peak <= 10
    assert len(upstream.heads) == upstream.connections  # heads are counted per connection


async def test_a_refused_connect_is_no_answer_of_kind_refused() -> None:
    transport = lean()
    port = free_port()  # nothing listens there
    try:
        with pytest.raises(NoAnswer) as caught:
            await transport.send(request("GET", f"http://127.0.0.1:{port}/v1/A"), TIMEOUTS)
    finally:
        await transport.close()
    assert caught.value.error.kind == "refused"


async def test_a_name_that_does_not_resolve_is_no_answer_of_kind_dns() -> None:
    transport = lean()
    try:
        with pytest.raises(NoAnswer) as caught:
            await transport.send(request("GET", "http://upstream.invalid/v1/A"), TIMEOUTS)
    finally:
        await transport.close()
    assert caught.value.error.kind == "dns"
    assert caught.value.log_line is not None
    assert caught.value.log_line.startswith("upstream host upstream.invalid does not resolve: ")


async def test_a_tls_handshake_that_never_ends_is_bounded_by_the_connect_deadline() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    silent = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    transport = lean()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(GatewayError) as caught:
            await transport.send(
                request("GET", f"https://127.0.0.1:{port}/v1/A"), Timeouts(0.3, 5.0, 10.0)
            )
    finally:
        await transport.close()
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()
    assert (caught.value.kind, caught.value.status) == ("timeout", 504)
    assert loop.time() - started < 2
