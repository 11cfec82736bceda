"""Bad input: every case answered with Twilio's error JSON and nothing forwarded upstream.

Requests go over a raw socket (no client-side normalising) to a gateway started the way
``gateway serve`` starts it (:class:`gateway.app.GatewayRunner`), because requests aiohttp
cannot parse never reach the app's middleware. ``BAD_INPUT`` below is the table that
docs/security-and-reliability.md reproduces; a second table proves that odd-but-valid bodies and
queries reach the upstream byte for byte instead of being "fixed".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.serving.server import GatewayRunner
from tests.conftest import AUTH_HEADER, make_config, raw_http
from tests.fake_upstream import FakeUpstream, sid

XE = sid("XE", 1)
MAX_BODY = 1000


@dataclass(frozen=True)
class Gateway:
    host: str
    port: int
    upstream: FakeUpstream


@pytest.fixture
async def gateway(fake_upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    app = create_app(make_config(fake_upstream.url, max_body_size=MAX_BODY))
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield Gateway(host, port, fake_upstream)
    await runner.cleanup()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        data = orjson.loads(self.body)
        assert isinstance(data, dict)
        return data


def parse(raw: bytes) -> Reply:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body)


async def send(gateway: Gateway, request: bytes) -> Reply:
    async with asyncio.timeout(10):
        return parse(await raw_http(gateway.host, gateway.port, request))


def request(
    target: str = "/marketplace/AvailableAddOns",
    method: str = "GET",
    headers: tuple[bytes, ...] = (),
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: gateway.test", *headers]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    raw: bytes
    status: int
    code: int
    allow: str | None = None


P = "/marketplace/InstalledAddOns"
BAD_INPUT = [
    # unknown paths
    Case("unknown path", "unknown preview resource", request("/marketplace/Nope"), 404, 20404),
    Case("unknown path", "unknown top-level path", request("/admin/config"), 404, 20404),
    Case("unknown path", "trailing slash", request(f"{P}/"), 404, 20404),
    Case("unknown path", "asterisk-form (OPTIONS *)", request("*", "OPTIONS"), 404, 20404),
    # wrong methods
    Case(
        "wrong method",
        "DELETE on a list",
        request("/marketplace/AvailableAddOns", "DELETE"),
        405,
        20004,
        "GET, HEAD",
    ),
    Case(
        "wrong method",
        "PUT on an instance",
        request(f"{P}/{XE}", "PUT"),
        405,
        20004,
        "DELETE, GET, HEAD, POST",
    ),
    Case(
        "wrong method",
        "PATCH",
        request(f"{P}/{XE}", "PATCH"),
        405,
        20004,
        "DELETE, GET, HEAD, POST",
    ),
    Case("wrong method", "TRACE", request(P, "TRACE"), 405, 20004, "GET, HEAD, POST"),
    Case("wrong method", "OPTIONS", request(P, "OPTIONS"), 405, 20004, "GET, HEAD, POST"),
    # path traversal and ambiguous paths
    Case("traversal", "dot-dot segment", request(f"{P}/../AvailableAddOns"), 404, 20404),
    Case("traversal", "encoded dot-dot", request(f"{P}/%2e%2e/AvailableAddOns"), 404, 20404),
    Case("traversal", "upper-case encoded dot-dot", request(f"{P}/%2E%2E"), 404, 20404),
    Case("traversal", "mixed dot-dot", request(f"{P}/.%2e/AvailableAddOns"), 404, 20404),
    Case("traversal", "dot segment", request(f"{P}/./{XE}"), 404, 20404),
    Case("traversal", "trailing dot segment", request(f"{P}/."), 404, 20404),
    Case("traversal", "encoded slash", request(f"{P}/XE1%2F..%2F..%2Fadmin"), 404, 20404),
    Case("traversal", "lower-case encoded slash", request(f"{P}/a%2fb"), 404, 20404),
    Case("traversal", "encoded backslash", request(f"{P}/a%5Cb"), 404, 20404),
    Case("traversal", "raw backslash", request(f"{P}/..\\..\\admin"), 404, 20404),
    Case("traversal", "encoded NUL", request(f"{P}/{XE}%00"), 404, 20404),
    Case("traversal", "double slash inside", request("/marketplace//InstalledAddOns"), 404, 20404),
    Case("traversal", "leading double slash", request("//marketplace/InstalledAddOns"), 404, 20404),
    # request targets naming another host
    Case(
        "absolute-form",
        "http absolute-form",
        request("http://evil.example/marketplace/AvailableAddOns"),
        400,
        88007,
    ),
    Case(
        "absolute-form",
        "https absolute-form",
        request("https://evil.example:8443/marketplace/AvailableAddOns"),
        400,
        88007,
    ),
    Case(
        "absolute-form",
        "CONNECT authority-form",
        request("evil.example:443", "CONNECT"),
        404,
        20404,
    ),
    # header injection and malformed framing (refused by the HTTP parser)
    Case(
        "injection",
        "CR inside a header value",
        request(headers=(b"X-A: a\rInjected: 1",)),
        400,
        88007,
    ),
    Case(
        "injection",
        "bare LF inside a header value",
        request(headers=(b"X-A: a\nInjected: 1",)),
        400,
        88007,
    ),
    Case("injection", "NUL in a header value", request(headers=(b"X-A: a\x00b",)), 400, 88007),
    Case("injection", "space in a header name", request(headers=(b"X A: 1",)), 400, 88007),
    Case(
        "injection", "obsolete line folding", request(headers=(b"X-A: 1", b" folded")), 400, 88007
    ),
    Case(
        "injection",
        "encoded CRLF in the path",
        request(f"{P}/XE%0D%0AX-Injected:%201%0D%0A%0D%0AGET%20%2Fadmin"),
        404,
        20404,
    ),
    Case("injection", "two Host headers", request(headers=(b"Host: evil.example",)), 400, 88007),
    Case(
        "smuggling",
        "Content-Length with Transfer-Encoding",
        request(P, "POST", (b"Content-Length: 5", b"Transfer-Encoding: chunked"), b"0\r\n\r\n"),
        400,
        88007,
    ),
    Case(
        "smuggling",
        "two Content-Lengths",
        request(P, "POST", (b"Content-Length: 1", b"Content-Length: 2"), b"ab"),
        400,
        88007,
    ),
    Case(
        "smuggling",
        "non-numeric Content-Length",
        request(P, "POST", (b"Content-Length: 1x",), b"a"),
        400,
        88007,
    ),
    # sizes
    Case(
        "oversized",
        "one header over 8190 bytes",
        request(headers=(b"Authorization: Basic " + b"A" * 9000,)),
        431,
        88007,
    ),
    Case(
        "oversized",
        "more than 128 headers",
        request(headers=tuple(b"X-H%d: 1" % i for i in range(200))),
        431,
        88007,
    ),
    Case("oversized", "request target over 8190 bytes", request(f"{P}?x={'a' * 9000}"), 431, 88007),
    Case(
        "oversized",
        "declared body over max_body_size",
        request(P, "POST", (f"Content-Length: {MAX_BODY + 1}".encode(),), b"x" * (MAX_BODY + 1)),
        413,
        88004,
    ),
    Case(
        "oversized",
        "chunked body over max_body_size",
        request(
            P,
            "POST",
            (b"Transfer-Encoding: chunked",),
            b"".join(b"200\r\n" + b"x" * 512 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n",
        ),
        413,
        88004,
    ),
]


@pytest.mark.parametrize("case", BAD_INPUT, ids=lambda c: f"{c.group}: {c.name}")
async def test_bad_input_is_refused_in_twilio_shape_and_never_forwarded(
    case: Case, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        reply = await send(gateway, case.raw)
    assert reply.status == case.status, reply
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["code"], body["status"]) == (case.code, case.status)
    if case.allow is not None:
        assert reply.headers["allow"] == case.allow
    assert gateway.upstream.received == []
    # Nothing of the offending bytes is echoed back or logged (they may hold credentials).
    for record in caplog.records:
        assert "Injected" not in record.getMessage() and "AAAAAAAA" not in record.getMessage()
        assert record.exc_info is None or record.levelno < logging.ERROR
    assert b"Injected" not in reply.body and b"AAAAAAAA" not in reply.body


@pytest.mark.upstream
async def test_head_is_the_get_answer_without_a_body_and_a_405_where_get_is_not(
    gateway: Gateway,
) -> None:
    get = await send(gateway, request("/marketplace/AvailableAddOns"))
    head = await send(gateway, request("/marketplace/AvailableAddOns", "HEAD"))
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.body))
    assert [r.method for r in gateway.upstream.received] == ["GET", "GET"]
    refused = await send(gateway, request("/v1/ReferralConversion", "HEAD"))
    assert (refused.status, refused.headers["allow"], refused.body) == (405, "POST", b"")
    assert len(gateway.upstream.received) == 2


@pytest.mark.upstream
async def test_the_connection_survives_a_refused_request_only_when_it_parsed(
    gateway: Gateway,
) -> None:
    """A 404 keeps the connection usable; an unparseable request closes it (nothing after it
    on the wire can be trusted)."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        writer.write(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" + request())
        async with asyncio.timeout(10):
            replies = await reader.read()
        assert replies.count(b"HTTP/1.1 404") == 1 and replies.count(b"HTTP/1.1 200") == 1
        assert len(gateway.upstream.received) == 1

        reader, writer2 = await asyncio.open_connection(gateway.host, gateway.port)
        writer2.write(b"GET / HTTP/1.1\r\nX-A: a\rB: c\r\n\r\n" + request())
        async with asyncio.timeout(10):
            replies = await reader.read()
        writer2.close()
        assert replies.count(b"HTTP/1.") == 1 and b" 400 " in replies
        assert len(gateway.upstream.received) == 1
    finally:
        writer.close()


@pytest.mark.upstream
@pytest.mark.parametrize("trusted", [False, True])
async def test_host_and_forwarded_headers_never_choose_the_upstream(
    trusted: bool, fake_upstream: FakeUpstream
) -> None:
    app = create_app(make_config(fake_upstream.url, trust_forwarded_headers=trusted))
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        spoofed = request(
            f"{P}/{XE}",
            headers=(
                b"X-Forwarded-Host: evil.example",
                b"X-Forwarded-Proto: https",
                b"Forwarded: host=evil2.example;proto=https",
                b"X-Forwarded-For: 10.0.0.1",
                b"X-Original-URL: http://evil3.example/",
                b"X-Rewrite-URL: /admin",
            ),
        ).replace(b"Host: gateway.test", b"Host: evil4.example")
        async with asyncio.timeout(10):
            reply = parse(await raw_http(host, port, spoofed))
    finally:
        await runner.cleanup()
    assert reply.status == 200
    [received] = fake_upstream.received
    assert received.raw_path == f"/v1/InstalledAddOns/{XE}"
    assert received.headers["Host"] == fake_upstream.url.split("://")[1]
    for name in ("X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Forwarded-For"):
        assert name not in received.headers
    url = str(reply.json()["url"])
    # The spoofable headers only ever shape the links written back to this same client.
    # Trusted, the default family is X-Forwarded-*; the client's Forwarded is ignored.
    assert url.startswith("https://evil.example/" if trusted else "http://evil4.example/")


# Odd but well-formed requests: forwarded to the upstream exactly as sent, never "fixed".
PASS_THROUGH = [
    ("malformed form escapes", b"UniqueName=%ZZ&&=&AcceptTermsOfService=%"),
    ("repeated keys and bare names", b"UniqueName=a&UniqueName=b&Enabled&=x"),
    ("invalid UTF-8", b"UniqueName=\xff\xfe\xc3(&Configuration=%FF%FE"),
    ("JSON sent as a form", b'{"UniqueName": "x"}'),
    ("plus and percent-encoded plus", b"UniqueName=a+b%2Bc&Configuration=%7B%22a%22%3A+1%7D"),
    ("NUL and control bytes", b"UniqueName=a\x00b\x01c\r\nX-Injected: 1"),
]


@pytest.mark.upstream
@pytest.mark.parametrize(("name", "body"), PASS_THROUGH, ids=[n for n, _ in PASS_THROUGH])
async def test_odd_bodies_reach_the_upstream_untouched(
    name: str, body: bytes, gateway: Gateway
) -> None:
    raw = request(
        f"{P}/{XE}?PageSize=%FF%FE&Bad=%&Page=0",
        "POST",
        (
            b"Content-Type: application/x-www-form-urlencoded; charset=latin-1",
            f"Content-Length: {len(body)}".encode(),
            f"Authorization: {AUTH_HEADER}".encode(),
        ),
        body,
    )
    reply = await send(gateway, raw)
    assert reply.status == 200
    [received] = gateway.upstream.received
    assert received.body == body
    assert received.raw_path == f"/v1/InstalledAddOns/{XE}?PageSize=%FF%FE&Bad=%&Page=0"
    assert received.headers["Content-Type"] == (
        "application/x-www-form-urlencoded; charset=latin-1"
    )
    assert received.headers["Authorization"] == AUTH_HEADER
