"""Blind tunnels: the allowed host receives the client's bytes unmodified and the client gets
the host's bytes back, nothing of it is logged, and idle and total timeouts end a tunnel."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from prometheus_client import REGISTRY

from gateway.config.hosts import parse_host_patterns, parse_networks
from gateway.frontdoor.connect import ESTABLISHED

from .conftest import Decoy, StackFactory, all_released, raw_exchange

# The decoys listen on loopback, which a tunnel reaches only when allowed explicitly.
LOOPBACK = parse_networks("127.0.0.0/8")


def connects(outcome: str) -> float:
    return REGISTRY.get_sample_value("gateway_proxy_connects_total", {"outcome": outcome}) or 0.0


async def open_tunnel(port: int, target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.readuntil(b"\r\n\r\n") == ESTABLISHED
    return reader, writer


async def test_bytes_go_through_unmodified_both_ways_and_are_not_logged(
    front_stack: StackFactory, decoy: Decoy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    allowed = f"127.0.0.1:{decoy.port}"
    stack = await front_stack(
        proxy_tunnel_hosts=parse_host_patterns(f"*.twilio.com:443,{allowed}"),
        proxy_tunnel_allow_networks=LOOPBACK,
    )
    before = connects("tunnelled")
    # Looks like a Preview request, is followed by binary: neither is parsed nor rewritten.
    payload = (
        b"GET /marketplace/AvailableAddOns HTTP/1.1\r\nHost: preview.twilio.com\r\n"
        b"Authorization: Basic c2VjcmV0\r\n\r\n" + os.urandom(200_000)
    )
    reader, writer = await open_tunnel(stack.proxy_port, allowed)
    writer.write(payload)
    await writer.drain()
    echoed = bytearray()
    async with asyncio.timeout(10):
        while len(echoed) < len(payload):
            chunk = await reader.read(65536)
            assert chunk
            echoed += chunk
    writer.close()
    await writer.wait_closed()
    assert bytes(decoy.received) == payload
    assert decoy.accepted == 1
    # the decoy answers each chunk reversed; the client got exactly those bytes back
    assert len(echoed) == len(payload) and bytes(echoed) != payload
    assert connects("tunnelled") == before + 1
    assert stack.access_lines() == []
    logged = "".join(record.getMessage() for record in caplog.records)
    assert "c2VjcmV0" not in logged and "/marketplace/AvailableAddOns" not in logged
    async with asyncio.timeout(5):
        while stack.door.open_count:
            await asyncio.sleep(0.01)


async def test_bytes_sent_right_after_the_connect_reach_the_host(
    front_stack: StackFactory, decoy: Decoy
) -> None:
    allowed = f"127.0.0.1:{decoy.port}"
    stack = await front_stack(
        proxy_tunnel_hosts=parse_host_patterns(allowed), proxy_tunnel_allow_networks=LOOPBACK
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.proxy_port)
    writer.write(f"CONNECT {allowed} HTTP/1.1\r\nHost: {allowed}\r\n\r\nearly bytes".encode())
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.readuntil(b"\r\n\r\n") == ESTABLISHED
        assert await reader.readexactly(11) == b"setyb ylrae"
    writer.close()
    await writer.wait_closed()
    assert bytes(decoy.received) == b"early bytes"


async def test_an_idle_tunnel_is_closed(front_stack: StackFactory, decoy: Decoy) -> None:
    allowed = f"127.0.0.1:{decoy.port}"
    stack = await front_stack(
        proxy_tunnel_hosts=parse_host_patterns(allowed),
        proxy_tunnel_allow_networks=LOOPBACK,
        proxy_tunnel_idle_timeout=0.3,
    )
    reader, writer = await open_tunnel(stack.proxy_port, allowed)
    writer.write(b"ping")
    async with asyncio.timeout(5):
        assert await reader.readexactly(4) == b"gnip"
        assert await reader.read() == b""  # closed by the gateway once idle
    writer.close()
    await all_released(stack.door)


async def test_a_busy_tunnel_is_closed_after_the_total_timeout(
    front_stack: StackFactory, decoy: Decoy
) -> None:
    allowed = f"127.0.0.1:{decoy.port}"
    stack = await front_stack(
        proxy_tunnel_hosts=parse_host_patterns(allowed),
        proxy_tunnel_allow_networks=LOOPBACK,
        proxy_tunnel_idle_timeout=5,
        proxy_tunnel_total_timeout=0.6,
    )
    reader, writer = await open_tunnel(stack.proxy_port, allowed)
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(5):
        while True:  # never idle: a byte every 50 ms
            writer.write(b"x")
            try:
                await writer.drain()
            except ConnectionError:
                break
            if not await reader.read(1):
                break
            await asyncio.sleep(0.05)
    assert 0.5 < asyncio.get_running_loop().time() - started < 3
    writer.close()


async def test_an_unreachable_host_gets_502_and_no_200(front_stack: StackFactory) -> None:
    closed = Decoy()
    await closed.start()
    port = closed.port
    await closed.stop()  # nothing listens there any more
    allowed = f"127.0.0.1:{port}"
    stack = await front_stack(
        proxy_tunnel_hosts=parse_host_patterns(allowed), proxy_tunnel_allow_networks=LOOPBACK
    )
    reply = await raw_exchange(
        stack.proxy_port, f"CONNECT {allowed} HTTP/1.1\r\nHost: {allowed}\r\n\r\n".encode()
    )
    assert reply.startswith(b"HTTP/1.1 502 ")
    assert b'"code":88001' in reply
    await all_released(stack.door)


async def test_shutdown_drops_open_tunnels(front_stack: StackFactory, decoy: Decoy) -> None:
    allowed = f"127.0.0.1:{decoy.port}"
    stack = await front_stack(
        proxy_tunnel_hosts=parse_host_patterns(allowed), proxy_tunnel_allow_networks=LOOPBACK
    )
    reader, writer = await open_tunnel(stack.proxy_port, allowed)
    stack.door.close()
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", stack.proxy_port)
