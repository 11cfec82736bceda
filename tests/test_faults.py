"""Upstream faults, each from a real loopback server that misbehaves (tests/raw_upstream.py).

Every fault ends in Twilio's error JSON with the right status (502 or 504) and code, within a
bounded time, and is counted once in ``gateway_upstream_failures_total`` under its kind; an
upstream answer that is merely unwelcome (5xx with an HTML page, a redirect, JSON that needs
no rewriting) passes through unchanged. Retries are proven too; the one fault a
socket cannot stage deterministically (a refused connect that then succeeds) is staged where
each transport starts a call (``ClientSession.request`` for aiohttp, ``LeanTransport.send``
for the lean one) in front of a real upstream: a GET is tried once more when nothing came
back, a POST or DELETE never. Every test runs on both transports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from gateway.models import UpstreamRequest
from gateway.transport import seam
from gateway.transport.lean import LeanTransport
from gateway.transport.seam import NoAnswer, Timeouts
from tests.conftest import AUTH_HEADER, GatewayFactory
from tests.fake_upstream import FakeUpstream, sid
from tests.raw_upstream import RawUpstream, Script, head, reset

PATH = "/marketplace/AvailableAddOns"
FAILURE_KINDS = (
    "dns",
    "refused",
    "reset",
    "timeout",
    "truncated",
    "bad_response",
    "invalid_json",
    "too_large",
    "tls",
)

UpstreamFactory = Callable[[Script], Awaitable[RawUpstream]]

pytestmark = pytest.mark.upstream


@pytest.fixture
async def raw_upstream() -> AsyncIterator[UpstreamFactory]:
    started: list[RawUpstream] = []

    async def factory(script: Script) -> RawUpstream:
        upstream = RawUpstream(script)
        await upstream.start()
        started.append(upstream)
        return upstream

    yield factory
    for upstream in started:
        await upstream.close()


def failures(kind: str) -> float:
    return REGISTRY.get_sample_value("gateway_upstream_failures_total", {"kind": kind}) or 0.0


def all_failures() -> dict[str, float]:
    return {kind: failures(kind) for kind in FAILURE_KINDS}


# --- scripts: what the upstream does once it has read the request --------------------------


async def reset_before_answering(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    reset(w)


async def close_before_answering(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.close()


async def reset_mid_body(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(head("200 OK", "Content-Type: application/json", "Content-Length: 1000") + b'{"a":')
    await w.drain()
    await asyncio.sleep(0.05)
    reset(w)


async def never_answer(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)


async def stall_mid_body(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(head("200 OK", "Content-Type: application/json", "Content-Length: 100") + b'{"a":')
    await w.drain()
    await asyncio.sleep(5)


async def trickle_body(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    """One byte every 50 ms: never idle long enough for the read timeout, only the total."""
    w.write(head("200 OK", "Content-Type: application/json", "Content-Length: 200"))
    for _ in range(200):
        w.write(b" ")
        await w.drain()
        await asyncio.sleep(0.05)


async def truncate_body(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(head("200 OK", "Content-Type: application/json", "Content-Length: 100") + b'{"a":1')
    await w.drain()
    w.close()


async def truncate_chunked(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(head("200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked"))
    w.write(b"a\r\n0123456789\r\n20\r\n01234")
    await w.drain()
    w.close()


async def bad_status_line(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 2x0 Fine\r\nContent-Length: 0\r\n\r\n")
    await w.drain()


async def not_http(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await w.drain()


def answer(status: str, body: bytes, *headers: str) -> Script:
    async def script(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(head(status, *headers, f"Content-Length: {len(body)}") + body)
        await w.drain()

    return script


async def chunked_over_cap(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(head("200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked"))
    for _ in range(4):
        w.write(b"258\r\n" + b" " * 600 + b"\r\n")  # 4 x 600 bytes, no Content-Length
        await w.drain()
    w.write(b"0\r\n\r\n")
    await w.drain()


BROKEN_JSON_WITH_LINKS = b'{"url": "https://marketplace.twilio.com/v1/AvailableAddOns", "meta": {'


@dataclass(frozen=True)
class Fault:
    name: str
    script: Script
    status: int
    code: int
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    connections: int = 1  # a GET that got no answer at all is sent once more


FAULTS = [
    Fault("reset before answering", reset_before_answering, 502, 88001, "reset", connections=2),
    Fault("closed before answering", close_before_answering, 502, 88001, "reset", connections=2),
    Fault("reset mid-body", reset_mid_body, 502, 88003, "truncated"),
    Fault("slow headers", never_answer, 504, 88002, "timeout", {"read_timeout": 0.3}),
    Fault("stalled body", stall_mid_body, 504, 88002, "timeout", {"read_timeout": 0.3}),
    Fault(
        "trickled body past the total deadline",
        trickle_body,
        504,
        88002,
        "timeout",
        {"read_timeout": 1.0, "total_timeout": 0.8, "connect_timeout": 0.5},
    ),
    Fault("truncated body (Content-Length)", truncate_body, 502, 88003, "truncated"),
    Fault("truncated chunked body", truncate_chunked, 502, 88003, "truncated"),
    Fault("malformed status line", bad_status_line, 502, 88003, "bad_response"),
    Fault("not HTTP at all", not_http, 502, 88003, "bad_response"),
    Fault(
        "invalid JSON that would need rewriting",
        answer("200 OK", BROKEN_JSON_WITH_LINKS, "Content-Type: application/json"),
        502,
        88003,
        "invalid_json",
    ),
    Fault(
        "declared body over the cap",
        answer("200 OK", b" " * 2000, "Content-Type: application/json"),
        502,
        88005,
        "too_large",
        {"max_response_size": 1000},
    ),
    Fault(
        "chunked body over the cap",
        chunked_over_cap,
        502,
        88005,
        "too_large",
        {"max_response_size": 1000},
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_fault_ends_in_a_twilio_error_counted_by_kind(
    fault: Fault, raw_upstream: UpstreamFactory, gateway_client: GatewayFactory
) -> None:
    upstream = await raw_upstream(fault.script)
    client = await gateway_client(upstream.url, **fault.config)
    before = all_failures()
    started = time.monotonic()
    async with asyncio.timeout(10):
        response = await client.get(PATH, headers={"Authorization": AUTH_HEADER})
        body = await response.json()
    elapsed = time.monotonic() - started
    assert response.status == fault.status
    assert body["code"] == fault.code and body["status"] == fault.status
    assert set(body) == {"code", "message", "more_info", "status"}
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Deprecation" in response.headers  # an error on a legacy route still says so
    after = all_failures()
    expected = dict(before)
    expected[fault.kind] += 1
    assert after == expected  # exactly one failure, of exactly this kind
    assert elapsed < 4, elapsed  # bounded by the configured deadlines, never a hang
    assert upstream.connections == fault.connections  # retried only when nothing came back


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (
            "503 Service Unavailable",
            b"<html><body><h1>503 Service Unavailable</h1></body></html>",
            ("Content-Type: text/html; charset=utf-8", "Retry-After: 7"),
        ),
        (
            "500 Internal Server Error",
            b"<!DOCTYPE html><title>oops</title>",
            ("Content-Type: text/html",),
        ),
        (
            "200 OK",
            b'{"not": "closed", ',  # invalid JSON, but nothing in it to rewrite
            ("Content-Type: application/json",),
        ),
        (
            "409 Conflict",
            b'{"code": 20409, "message": "Conflict", "status": 409}',
            ("Content-Type: application/json",),
        ),
    ],
    ids=["503 html", "500 html", "invalid json without links", "409 json"],
)
async def test_unwelcome_answers_pass_through_unchanged(
    status: str,
    body: bytes,
    headers: tuple[str, ...],
    raw_upstream: UpstreamFactory,
    gateway_client: GatewayFactory,
) -> None:
    upstream = await raw_upstream(answer(status, body, *headers))
    client = await gateway_client(upstream.url)
    before = all_failures()
    async with asyncio.timeout(10):
        response = await client.get(PATH)
        received = await response.read()
    assert response.status == int(status.split()[0])
    assert received == body  # byte for byte, not "fixed" and not wrapped
    for line in headers:
        name, _, value = line.partition(": ")
        assert response.headers[name] == value
    assert all_failures() == before  # the upstream answered; that is not a failure


async def test_an_upstream_host_that_does_not_resolve_is_reported_as_dns(
    gateway_client: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A real lookup of a name RFC 6761 reserves to never resolve (``.invalid``)."""
    client = await gateway_client("http://marketplace-upstream.invalid:8443", total_timeout=20.0)
    before = all_failures()
    with caplog.at_level(logging.WARNING, logger="gateway"):
        async with asyncio.timeout(30):
            response = await client.get(
                PATH + "?PageToken=PTsecret", headers={"Authorization": AUTH_HEADER}
            )
            body = await response.json()
    assert (response.status, body["code"]) == (502, 88001)
    assert body["message"] == "The upstream host name could not be resolved (DNS lookup failed)"
    expected = dict(before)
    expected["dns"] += 1
    assert all_failures() == expected  # its own kind, once, and not "refused"
    # The cause, logged once for the request (a GET is looked up twice), with no secrets.
    lines = [r.getMessage() for r in caplog.records if "resolve" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("upstream host marketplace-upstream.invalid does not resolve: ")
    assert AUTH_HEADER.split()[1] not in caplog.text and "PTsecret" not in caplog.text
    assert "Traceback" not in caplog.text


# --- retries ----------------------------------------------------------------------------------


@dataclass
class FlakyConnect:
    """Refuses the first ``refusals`` connects to ``upstream`` (at ClientSession.request, as
    aioresponses would; its canned responses do not build under aiohttp 3.14; at
    LeanTransport.send with the lean transport's own failure), then lets the call through to
    the real loopback upstream. Counts every attempt."""

    upstream: str
    refusals: int
    attempts: list[str] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._install_lean(monkeypatch)
        original = aiohttp.ClientSession.request
        flaky = self

        def request(session: aiohttp.ClientSession, method: str, url: Any, **kw: Any) -> Any:
            if not str(url).startswith(flaky.upstream):
                return original(session, method, url, **kw)
            flaky.attempts.append(method)
            if len(flaky.attempts) <= flaky.refusals:
                return _raise(refused())
            return original(session, method, url, **kw)

        monkeypatch.setattr(aiohttp.ClientSession, "request", request)

    def _install_lean(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = LeanTransport.send
        flaky = self

        async def send(
            transport: LeanTransport, request: UpstreamRequest, timeouts: Timeouts
        ) -> Any:
            if request.url.startswith(flaky.upstream):
                flaky.attempts.append(request.method)
                if len(flaky.attempts) <= flaky.refusals:
                    raise NoAnswer(seam.refused()) from ConnectionRefusedError(111, "refused")
            return await original(transport, request, timeouts)

        monkeypatch.setattr(LeanTransport, "send", send)


async def _raise(exc: Exception) -> Any:
    raise exc


def refused() -> aiohttp.ClientConnectorError:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("127.0.0.1", 80, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


async def test_get_is_retried_once_on_a_connect_failure(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await gateway_client(fake_upstream.url, connect_timeout=1.0, total_timeout=10.0)
    flaky = FlakyConnect(fake_upstream.url, refusals=1)
    flaky.install(monkeypatch)
    response = await client.get(PATH)
    assert response.status == 200  # the second attempt reached the upstream
    assert flaky.attempts == ["GET", "GET"]
    assert len(fake_upstream.received) == 1

    before = failures("refused")
    flaky = FlakyConnect(fake_upstream.url, refusals=10)
    flaky.install(monkeypatch)
    response = await client.get(PATH)
    assert response.status == 502
    assert (await response.json())["code"] == 88001
    assert flaky.attempts == ["GET", "GET"]  # once more, not more
    assert failures("refused") == before + 1  # one failure per request, not per attempt


async def test_get_is_not_retried_when_the_deadline_has_no_room(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await gateway_client(fake_upstream.url, connect_timeout=1.0, total_timeout=1.0)
    flaky = FlakyConnect(fake_upstream.url, refusals=1)
    flaky.install(monkeypatch)
    response = await client.get(PATH)
    assert response.status == 502
    assert flaky.attempts == ["GET"]


XE = sid("XE", 1)


@pytest.mark.parametrize(
    ("method", "legacy"),
    [
        ("POST", "/marketplace/InstalledAddOns"),
        ("POST", f"/marketplace/InstalledAddOns/{XE}"),
        ("DELETE", f"/marketplace/InstalledAddOns/{XE}"),
    ],
)
async def test_post_and_delete_are_never_retried(
    method: str,
    legacy: str,
    fake_upstream: FakeUpstream,
    gateway_client: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await gateway_client(fake_upstream.url, connect_timeout=1.0, total_timeout=10.0)
    flaky = FlakyConnect(fake_upstream.url, refusals=1)
    flaky.install(monkeypatch)
    response = await client.request(method, legacy, data=b"UniqueName=x")
    assert response.status == 502
    assert flaky.attempts == [method]
    assert fake_upstream.received == []


@pytest.mark.parametrize(("method", "connections"), [("GET", 2), ("POST", 1), ("DELETE", 1)])
async def test_a_connection_closed_before_answering_is_retried_for_get_only(
    method: str, connections: int, raw_upstream: UpstreamFactory, gateway_client: GatewayFactory
) -> None:
    """A DELETE or POST may have been carried out before the connection dropped: never resent
    (aiohttp on its own would resend the DELETE; the gateway switches that off)."""
    upstream = await raw_upstream(close_before_answering)
    client = await gateway_client(upstream.url)
    path = f"/marketplace/InstalledAddOns/{XE}"
    async with asyncio.timeout(10):
        response = await client.request(method, path, data=b"UniqueName=x")
    assert response.status == 502
    assert (await response.json())["code"] == 88001
    assert upstream.connections == connections
    assert all(request.startswith(method.encode()) for request in upstream.heads)
