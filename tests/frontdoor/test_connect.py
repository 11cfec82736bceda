"""The proxy front door refuses everything but CONNECT to an intercepted or allowed host, with
403 in Twilio's error shape, and connects nowhere for a refused request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

from gateway.config.hosts import parse_host_patterns
from gateway.frontdoor import connect
from tests.processes import free_port, gateway_output, runs_uvloop, start_gateway

from .conftest import Decoy, StackFactory, all_released, raw_exchange


def connects(outcome: str) -> float:
    return REGISTRY.get_sample_value("gateway_proxy_connects_total", {"outcome": outcome}) or 0.0


def split(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


def assert_refused(reply: bytes, status: int = 403, code: int = 88011) -> str:
    got, headers, body = split(reply)
    assert got == status, reply
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    error = orjson.loads(body)
    assert set(error) == {"code", "message", "more_info", "status"}
    assert (error["status"], error["code"]) == (status, code)
    assert error["more_info"].endswith(f"/errors/{code}")
    return str(error["message"])


REFUSED_REQUESTS = {
    "absolute-form http": b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "absolute-form preview": (
        b"GET http://preview.twilio.com/marketplace/AvailableAddOns HTTP/1.1\r\n"
        b"Host: preview.twilio.com\r\n\r\n"
    ),
    "origin-form": b"GET /marketplace/AvailableAddOns HTTP/1.1\r\nHost: x\r\n\r\n",
    "not http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
    "no port": b"CONNECT preview.twilio.com HTTP/1.1\r\nHost: preview.twilio.com\r\n\r\n",
    "port 80": b"CONNECT preview.twilio.com:80 HTTP/1.1\r\nHost: preview.twilio.com:80\r\n\r\n",
    "port 8443": (
        b"CONNECT preview.twilio.com:8443 HTTP/1.1\r\nHost: preview.twilio.com:8443\r\n\r\n"
    ),
    "user info": b"CONNECT u:p@preview.twilio.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    "path": b"CONNECT preview.twilio.com:443/x HTTP/1.1\r\nHost: x\r\n\r\n",
    "plus port": b"CONNECT preview.twilio.com:+443 HTTP/1.1\r\nHost: x\r\n\r\n",
    "two spaces": b"CONNECT  preview.twilio.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    "no version": b"CONNECT preview.twilio.com:443\r\nHost: x\r\n\r\n",
    "other host": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "twilio apex": b"CONNECT twilio.com:443 HTTP/1.1\r\nHost: twilio.com:443\r\n\r\n",
    "lookalike": b"CONNECT eviltwilio.com:443 HTTP/1.1\r\nHost: eviltwilio.com:443\r\n\r\n",
    "twilio port 80": b"CONNECT api.twilio.com:80 HTTP/1.1\r\nHost: api.twilio.com:80\r\n\r\n",
    "body": (
        b"CONNECT preview.twilio.com:443 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    ),
    "early data": (
        b"CONNECT preview.twilio.com:443 HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\x00\x05hello"
    ),
    "no host header": b"CONNECT preview.twilio.com:443 HTTP/1.1\r\n\r\n",
    # Malformed (no Host) as well as too large: 403, as for any malformed head.
    "header too large": b"CONNECT preview.twilio.com:443 HTTP/1.1\r\nX: "
    + b"a" * (connect.MAX_HEAD + 10)
    + b"\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", REFUSED_REQUESTS.values(), ids=REFUSED_REQUESTS.keys())
async def test_refused_with_403_in_twilio_shape(
    front_stack: StackFactory, request_bytes: bytes
) -> None:
    stack = await front_stack()
    before = connects("refused")
    reply = await raw_exchange(stack.proxy_port, request_bytes)
    assert_refused(reply)
    assert connects("refused") == before + 1
    await all_released(stack.door)


async def test_a_refused_target_is_never_connected_to(
    front_stack: StackFactory, decoy: Decoy
) -> None:
    """The decoy listens on loopback; tunnelling is allowed only to another port of it."""
    stack = await front_stack(proxy_tunnel_hosts=parse_host_patterns(f"127.0.0.1:{decoy.port + 1}"))
    for target in (f"127.0.0.1:{decoy.port}", f"localhost:{decoy.port}", f"[::1]:{decoy.port}"):
        reply = await raw_exchange(
            stack.proxy_port, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
        )
        assert "is not allowed" in assert_refused(reply)
    await asyncio.sleep(0.2)
    assert decoy.accepted == 0


async def test_the_default_tunnel_hosts_do_not_cover_loopback(
    front_stack: StackFactory, decoy: Decoy
) -> None:
    stack = await front_stack()
    reply = await raw_exchange(
        stack.proxy_port, f"CONNECT 127.0.0.1:{decoy.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert_refused(reply)
    assert decoy.accepted == 0


async def test_a_silent_client_is_dropped_after_the_head_timeout(
    front_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connect, "HEAD_TIMEOUT", 0.3)
    stack = await front_stack()
    reply = await raw_exchange(stack.proxy_port, b"CONNECT preview.twi", timeout=3)
    assert "in time" in assert_refused(reply)
    await all_released(stack.door)


async def test_over_the_maximum_a_connection_gets_503(front_stack: StackFactory) -> None:
    stack = await front_stack(proxy_max_tunnels=1)
    before = connects("refused")
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.proxy_port)
    try:
        await asyncio.sleep(0.05)
        assert stack.door.open_count == 1
        reply = await raw_exchange(
            stack.proxy_port, b"CONNECT preview.twilio.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert "Too many" in assert_refused(reply, 503, 88012)
    finally:
        writer.close()
        await writer.wait_closed()
    assert connects("refused") == before + 1
    async with asyncio.timeout(2):
        while stack.door.open_count:  # the slot comes back when the connection ends
            await asyncio.sleep(0.01)


async def test_refusals_do_not_echo_the_request(front_stack: StackFactory) -> None:
    stack = await front_stack()
    secret = b"Proxy-Authorization: Basic c2VjcmV0LXRva2Vu"
    reply = await raw_exchange(
        stack.proxy_port, b"GET http://example.com/ HTTP/1.1\r\nHost: e\r\n" + secret + b"\r\n\r\n"
    )
    assert b"c2VjcmV0LXRva2Vu" not in reply and b"example.com" not in reply
    assert all(b"c2VjcmV0LXRva2Vu" not in r.getMessage().encode() for r in stack.caplog.records)


# -- issue 17.7: the 16 KiB head limit, however the head arrives ------------------------------


def connect_head(size: int) -> bytes:
    """A well-formed CONNECT to the intercepted host whose head is exactly ``size`` bytes."""
    start = b"CONNECT preview.twilio.com:443 HTTP/1.1\r\nHost: preview.twilio.com\r\nX-Pad: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


async def send_in_parts(port: int, head: bytes, parts: int, timeout: float = 5.0) -> bytes:
    """Send ``head`` in ``parts`` writes a moment apart; what the proxy answers until it closes
    (or, for an accepted CONNECT, its first line)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        step = -(-len(head) // parts)
        for offset in range(0, len(head), step):
            if reader.at_eof() or writer.is_closing():
                break  # refused before the rest was sent
            writer.write(head[offset : offset + step])
            await writer.drain()
            await asyncio.sleep(0.05)
        async with asyncio.timeout(timeout):
            first = await reader.readuntil(b"\r\n\r\n")
            if first == connect.ESTABLISHED:
                return first
            return first + await reader.read(65536)
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    finally:
        writer.close()


HEAD_CASES = [(17_000, 1), (17_000, 2), (17_000, 5), (60_000, 1), (60_000, 2), (60_000, 8)]


@pytest.mark.parametrize(("size", "parts"), HEAD_CASES, ids=lambda v: str(v))
async def test_a_head_over_16_kib_gets_431_however_it_arrives(
    front_stack: StackFactory, size: int, parts: int
) -> None:
    stack = await front_stack()
    before = connects("refused")
    reply = await send_in_parts(stack.proxy_port, connect_head(size), parts)
    assert "16 KiB" in assert_refused(reply, 431, 88011)
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert connects("refused") == before + 1
    async with asyncio.timeout(connect.LINGER + 2):
        while stack.door.open_count:  # its slot comes back once the connection is closed
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("parts", [1, 3])
async def test_a_head_of_exactly_16_kib_is_accepted(front_stack: StackFactory, parts: int) -> None:
    stack = await front_stack()
    reply = await send_in_parts(stack.proxy_port, connect_head(connect.MAX_HEAD), parts, 1)
    assert reply.startswith(connect.ESTABLISHED)


async def test_the_head_limit_holds_on_either_loop(tmp_path: Path, serve_loop: str) -> None:
    gateway_output("tls", "init", str(tmp_path / "ca"))
    proxy_port = free_port()
    process = start_gateway(
        "http://127.0.0.1:9", free_port(),
        "--proxy-listen", f"127.0.0.1:{proxy_port}",
        "--proxy-ca-cert", str(tmp_path / "ca" / "ca.pem"),
        "--proxy-ca-key", str(tmp_path / "ca" / "ca-key.pem"),
        loop=serve_loop, log=tmp_path / "gateway.log",
    )  # fmt: skip
    try:
        async with asyncio.timeout(15):
            while b"proxy front door on" not in (tmp_path / "gateway.log").read_bytes():
                assert process.poll() is None
                await asyncio.sleep(0.1)
        assert runs_uvloop(process.pid) == (serve_loop == "uvloop")
        for size, parts in HEAD_CASES:
            reply = await send_in_parts(proxy_port, connect_head(size), parts)
            assert reply.startswith(b"HTTP/1.1 431 "), (size, parts, reply[:80])
        reply = await send_in_parts(proxy_port, connect_head(connect.MAX_HEAD), 2, 1)
        assert reply.startswith(connect.ESTABLISHED)
    finally:
        process.terminate()
        process.wait(15)
