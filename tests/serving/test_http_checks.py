"""gateway.serving.http_checks: HTTP-level refusals on every route, over raw sockets.

The checks are unit-tested on mocked requests, then shown end to end: a gateway started the way
``gateway serve`` starts it (:class:`gateway.serving.server.GatewayRunner`, aiohttp's C parser)
and a real ``gateway serve`` process with ``AIOHTTP_NO_EXTENSIONS=1`` (the pure-Python parser, which
accepts any method token and parses what the C parser refuses) answer the same edges the same
way, and nothing refused reaches the upstream.
"""

from __future__ import annotations

import asyncio
import re
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http import HttpVersion10
from aiohttp.test_utils import make_mocked_request

from gateway.app import create_app
from gateway.serving.http_checks import UNSUPPORTED_VERSION, closes_after, refusal
from gateway.serving.server import GatewayRunner
from tests.conftest import make_config
from tests.fake_upstream import FakeUpstream, sid
from tests.processes import free_port, start_gateway, wait_ready

LIST = "/marketplace/AvailableAddOns"
INSTALL = "/marketplace/InstalledAddOns"


# -- the checks themselves ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("codings", "status"),
    [
        ("chunked", None),
        ("Chunked", None),
        ("identity, chunked", 501),
        ("gzip, chunked", 501),
        ("chunked, chunked", 501),
        ("identity", 501),
    ],
)
def test_only_a_single_chunked_coding_passes(codings: str, status: int | None) -> None:
    error = refusal(make_mocked_request("POST", INSTALL, headers={"Transfer-Encoding": codings}))
    assert (error.status if error else None) == status
    if error is not None:
        assert error.code == 88007 and error.closes_connection


def test_two_transfer_encoding_headers_are_read_as_one_list() -> None:
    headers = [("Transfer-Encoding", "identity"), ("Transfer-Encoding", "chunked")]
    request = make_mocked_request("POST", INSTALL, headers=headers)
    error = refusal(request)
    assert error is not None and error.status == 501


def test_expectations_other_than_100_continue_get_417_in_http_1_1_only() -> None:
    assert refusal(make_mocked_request("POST", INSTALL, headers={"Expect": "100-Continue"})) is None
    error = refusal(make_mocked_request("POST", INSTALL, headers={"Expect": "teapot"}))
    assert error is not None and (error.status, error.code) == (417, 88007)
    old = make_mocked_request("POST", INSTALL, headers={"Expect": "teapot"}, version=HttpVersion10)
    assert refusal(old) is None  # HTTP/1.0 has no expectations to honour


def test_a_request_marked_with_an_unsupported_version_gets_505() -> None:
    request = make_mocked_request("GET", LIST)
    assert refusal(request) is None
    request[UNSUPPORTED_VERSION] = "HTTP/2.0"
    error = refusal(request)
    assert error is not None
    assert (error.status, error.closes_connection) == (505, True)
    assert "HTTP/2.0" in error.message


@pytest.mark.parametrize(
    ("headers", "close"),
    [
        ({}, False),
        ({"Connection": "keep-alive"}, False),
        ({"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c"}, True),
        ({"Upgrade": "websocket"}, True),
        ({"Connection": "upgrade"}, True),
    ],
)
def test_upgrade_requests_close_after_their_answer(headers: dict[str, str], close: bool) -> None:
    assert closes_after(make_mocked_request("GET", LIST, headers=headers)) is close


# -- end to end ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Gateway:
    host: str
    port: int
    upstream: FakeUpstream
    pure_python_parser: bool


@pytest.fixture
async def in_process(fake_upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    app = create_app(make_config(fake_upstream.url, max_body_size=1000))
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield Gateway(host, port, fake_upstream, pure_python_parser=False)
    await runner.cleanup()


@pytest.fixture
async def pure_python(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Gateway]:
    port = free_port()
    env = {"AIOHTTP_NO_EXTENSIONS": "1"}
    process = start_gateway(
        fake_upstream.url, port, "--max-body-size", "1000", env=env, log=tmp_path / "gw.log"
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process)
        yield Gateway("127.0.0.1", port, fake_upstream, pure_python_parser=True)
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(params=["c-parser", "pure-python-parser"])
def gateway(request: pytest.FixtureRequest) -> Gateway:
    name = "in_process" if request.param == "c-parser" else "pure_python"
    found = request.getfixturevalue(name)
    assert isinstance(found, Gateway)
    return found


async def exchange(gateway: Gateway, data: bytes, *, then: bytes = b"", wait: float = 0) -> bytes:
    """Send ``data`` (and ``then`` after ``wait`` seconds), read until the gateway closes."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        writer.write(data)
        if then:
            await asyncio.sleep(wait)
            writer.write(then)
        async with asyncio.timeout(10):  # a hang fails here
            return await reader.read()
    finally:
        writer.close()


def statuses(raw: bytes) -> list[str]:
    return re.findall(r"^HTTP/\d\.\d \d{3}", raw.decode("latin-1"), re.M)


def head_of(raw: bytes) -> str:
    return raw.partition(b"\r\n\r\n")[0].decode("latin-1").lower()


@pytest.mark.upstream
async def test_a_pipelined_request_behind_an_upgrade_is_never_dropped_silently(
    gateway: Gateway,
) -> None:
    upgrade = (
        f"GET {LIST}?first HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
    ).encode()
    second = f"GET {LIST}?second HTTP/1.1\r\nHost: gw\r\n\r\n".encode()
    raw = await exchange(gateway, upgrade + second)  # would hang before the fix (C parser)
    answered = statuses(raw)
    assert answered[0] == "HTTP/1.1 200"
    assert "connection: close" in head_of(raw)
    # Either the second request was answered too, or the connection closed after the first
    # so the client knows it was not: never a request forwarded and its answer lost.
    forwarded = [r.raw_path for r in gateway.upstream.received]
    assert forwarded[0].endswith("?first")
    assert len(answered) == len(forwarded)


@pytest.mark.parametrize("line", ["GET {path}", "GET {path} HTTP/2.0", "GET {path} HTTP/0.9"])
async def test_http_0_9_and_2_0_request_lines_get_505_in_http_1_1(
    gateway: Gateway, line: str
) -> None:
    request_line = line.format(path=LIST)
    headers = "" if request_line.count(" ") == 1 else "Host: gw\r\n"
    raw = await exchange(gateway, f"{request_line}\r\n{headers}\r\n".encode())
    assert statuses(raw) in (["HTTP/1.1 505"], ["HTTP/1.0 400"], ["HTTP/1.1 400"])
    assert b'"code":88007' in raw
    assert "connection: close" in head_of(raw) or raw.startswith(b"HTTP/1.0")
    assert gateway.upstream.received == []


@pytest.mark.parametrize("codings", ["identity, chunked", "gzip, chunked"])
async def test_transfer_codings_other_than_chunked_get_501(gateway: Gateway, codings: str) -> None:
    request = (
        f"POST {INSTALL} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: {codings}\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n"
    ).encode()
    raw = await exchange(gateway, request)
    assert statuses(raw) in (["HTTP/1.1 501"], ["HTTP/1.1 400"], ["HTTP/1.0 400"])
    assert "connection: close" in head_of(raw) or raw.startswith(b"HTTP/1.0")
    assert gateway.upstream.received == []


def expect_request(target: str, length: int) -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nHost: gw\r\nContent-Length: {length}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("target", "length", "status"),
    [("/marketplace/Nope", 5, "404"), (INSTALL, 5000, "413"), (f"{LIST}/{sid('XB', 1)}", 5, "405")],
)
async def test_no_100_continue_before_a_refusal(
    gateway: Gateway, target: str, length: int, status: str
) -> None:
    raw = await exchange(gateway, expect_request(target, length))  # the body is never sent
    assert statuses(raw) == [f"HTTP/1.1 {status}"]
    assert b"100 Continue" not in raw
    assert "connection: close" in head_of(raw)  # the withheld body never follows
    assert gateway.upstream.received == []


@pytest.mark.upstream
async def test_100_continue_once_the_checks_passed_then_the_body_is_forwarded(
    gateway: Gateway,
) -> None:
    body = b"UniqueName=x"
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        writer.write(expect_request(INSTALL, len(body)))
        async with asyncio.timeout(10):
            interim = await reader.readuntil(b"\r\n\r\n")
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(body)
            final = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    assert final.startswith(b"HTTP/1.1 201")
    assert [r.body for r in gateway.upstream.received] == [body]


async def test_an_unknown_expectation_gets_417(gateway: Gateway) -> None:
    request = f"POST {INSTALL} HTTP/1.1\r\nHost: gw\r\nExpect: teapot\r\nContent-Length: 0\r\n"
    raw = await exchange(gateway, (request + "Connection: close\r\n\r\n").encode())
    assert statuses(raw) == ["HTTP/1.1 417"]
    assert gateway.upstream.received == []


@pytest.mark.upstream
@pytest.mark.parametrize(
    "request_bytes",
    [
        f"GET {LIST} HTTP/1.1\r\nHost: gw\r\n\r\n",  # proxied: the upstream's Server is not kept
        "GET /marketplace/Nope HTTP/1.1\r\nHost: gw\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: gw\r\n\r\n",
        "GET /errors/88007 HTTP/1.1\r\nHost: gw\r\n\r\n",
        f"GET {LIST} HTTP/2.0\r\nHost: gw\r\n\r\n",
        f"GET {LIST} HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n",  # unparseable
    ],
)
async def test_the_server_header_names_no_versions(gateway: Gateway, request_bytes: str) -> None:
    closing = request_bytes.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
    raw = await exchange(gateway, closing.encode())
    servers = [line for line in head_of(raw).split("\r\n") if line.startswith("server:")]
    assert servers == ["server: marketplace-gateway"]


async def test_unknown_methods_are_labelled_other_with_either_parser(gateway: Gateway) -> None:
    methods = [f"X{letter}{index}" for index, letter in enumerate(string.ascii_uppercase)]
    for method in methods:
        raw = await exchange(
            gateway, f"{method} {LIST} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".encode()
        )
        # The C parser refuses unknown methods (400); the pure-Python one lets them through to
        # the router, which answers 405.
        assert statuses(raw)[0].endswith("405" if gateway.pure_python_parser else "400")
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{gateway.host}:{gateway.port}/metrics") as response,
    ):
        text = await response.text()
    labelled = set(re.findall(r'^gateway_requests_total\{[^}]*method="([^"]*)"', text, re.M))
    assert not labelled & set(methods)
    assert labelled <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"} | {
        "CONNECT",
        "other",
    }
    if gateway.pure_python_parser:
        assert "other" in labelled
    assert gateway.upstream.received == []
