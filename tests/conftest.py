"""Shared fixtures: configs, a recording v1-shaped upstream on a real loopback socket."""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway import upstream
from gateway.app import create_app
from gateway.config.settings import GatewayConfig, load_config
from gateway.config.upstreams import NAMES as UPSTREAM_NAMES
from gateway.transport.aiohttp_client import AiohttpTransport
from gateway.transport.factory import TRANSPORTS
from gateway.transport.lean import LeanTransport
from gateway.transport.seam import Transport
from tests.fake_upstream import FakeUpstream
from tests.processes import LOOPS

T = TypeVar("T")

# The three ways gateway.rewrite.response_rewrite reaches its answer; tests of the rewrite run on
# each (usefixtures("rewrite_path")). "compiled" is skipped where the C accelerator is not built.
REWRITE_PATHS = ["compiled", "parse-and-prove", "exact"]

AUTH_HEADER = "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpzZWNyZXQ="

# The 12 Preview Marketplace operations, as (rule, method): a test that drives a legacy client
# through all of them checks the access log names each one.
PREVIEW_OPERATIONS = frozenset(
    {
        ("preview_available_add_ons", "GET"),
        ("preview_available_add_on", "GET"),
        ("preview_available_add_on_extensions", "GET"),
        ("preview_available_add_on_extension", "GET"),
        ("preview_installed_add_ons", "GET"),
        ("preview_installed_add_ons", "POST"),
        ("preview_installed_add_on", "GET"),
        ("preview_installed_add_on", "POST"),
        ("preview_installed_add_on", "DELETE"),
        ("preview_installed_add_on_extensions", "GET"),
        ("preview_installed_add_on_extension", "GET"),
        ("preview_installed_add_on_extension", "POST"),
    }
)


# Every test that reaches an upstream runs on each transport: mark it ``upstream`` (a test, a
# class or a module), and it is run once per transport with GATEWAY_UPSTREAM_TRANSPORT set, which
# make_config below and every `gateway serve` the test spawns read. A fixture of a wider scope
# that starts a gateway takes the transport as its own parameter instead (TRANSPORTS). Tests
# that reach no upstream run once, on the default transport.
TRANSPORT_ENV = "GATEWAY_UPSTREAM_TRANSPORT"
DEFAULT_TRANSPORT: str = load_config({}, {}).upstream_transport


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("upstream") is not None:
        metafunc.parametrize("upstream_transport", TRANSPORTS, indirect=True)


@pytest.fixture(autouse=True)
def upstream_transport(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The transport this test's gateways use: its parameter (tests marked ``upstream``), or
    the default. An unmarked test whose in-process gateway calls upstream.forward fails, so a
    new test that reaches an upstream cannot run on one transport only unnoticed."""
    name: str | None = getattr(request, "param", None)
    if name is not None:
        monkeypatch.setenv(TRANSPORT_ENV, name)
        yield name
        return
    reached: list[str] = []
    forward = upstream.forward

    async def watched(*args: Any, **kwargs: Any) -> Any:
        reached.append(args[1].url if len(args) > 1 else "")
        return await forward(*args, **kwargs)

    monkeypatch.setattr(upstream, "forward", watched)
    yield DEFAULT_TRANSPORT
    assert not reached, (
        f"{request.node.nodeid} reaches an upstream ({reached[0]}): mark it "
        "@pytest.mark.upstream so that it runs on every transport"
    )


def make_config(upstream_url: str | None = None, **overrides: Any) -> GatewayConfig:
    """Defaults as the CLI builds them, both upstreams at ``upstream_url`` when given, on the
    transport of the running test."""
    flags = {f"{name}_upstream": upstream_url for name in UPSTREAM_NAMES} if upstream_url else {}
    environ = {TRANSPORT_ENV: os.environ[TRANSPORT_ENV]} if TRANSPORT_ENV in os.environ else {}
    return replace(load_config(flags, environ), **overrides)


def pool_settings(transport: Transport) -> tuple[int, int, float]:
    """``(pool_size, pool_size_per_host, keepalive_timeout)`` as ``transport`` holds them."""
    if isinstance(transport, AiohttpTransport):
        connector = transport.session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        return connector.limit, connector.limit_per_host, connector._keepalive_timeout
    assert isinstance(transport, LeanTransport)
    return transport.pool_size, transport.pool_size_per_host, transport.keepalive_timeout


@pytest.fixture
async def fake_upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeUpstream:
    upstream = FakeUpstream()
    server = await aiohttp_server(upstream.app())
    upstream.url = str(server.make_url("")).rstrip("/")
    return upstream


async def raw_http(host: str, port: int, request: bytes) -> bytes:
    """Send ``request`` bytes as they are (no client-side normalising) and read the reply."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    return reply


def raw_get(path: str, host: str = "gateway.test") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


_VARYING = {"date", "connection"}  # the clock, and the Connection: close the GET asked for


def _head_fields(block: bytes) -> tuple[str, dict[str, str]]:
    status, *lines = block.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines)
    return status, {k.lower(): v for k, v in fields.items() if k.lower() not in _VARYING}


async def head_then_get(
    host: str, port: int, path: str, headers: str = ""
) -> tuple[tuple[str, dict[str, str]], tuple[str, dict[str, str]], bytes]:
    """HEAD ``path`` then GET it, pipelined on one connection: the HEAD answer's status line and
    header fields (Date and Connection left out), the GET's, and the GET's body. Raises when any
    byte of a body follows the HEAD answer's header block (the next bytes must be the GET's
    status line)."""
    request = f"{{}} {path} HTTP/1.1\r\nHost: gateway.test\r\n{headers}"
    reply = await raw_http(
        host,
        port,
        (
            request.format("HEAD") + "\r\n" + request.format("GET") + "Connection: close\r\n\r\n"
        ).encode(),
    )
    head_block, rest = reply.split(b"\r\n\r\n", 1)
    assert rest.startswith(b"HTTP/1.1 "), f"bytes after the HEAD answer's header: {rest[:80]!r}"
    get_block, body = rest.split(b"\r\n\r\n", 1)
    get = _head_fields(get_block)
    assert int(get[1]["content-length"]) == len(body)
    return _head_fields(head_block), get, body


GatewayFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def gateway_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> GatewayFactory:
    """``await gateway_client(upstream_url, **config_overrides)`` -> a client of a gateway."""

    async def factory(
        upstream_url: str, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        return await aiohttp_client(create_app(make_config(upstream_url, **overrides)))

    return factory


@pytest.fixture(params=REWRITE_PATHS)
def rewrite_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Rewriters built while this is active take one path: the compiled accelerator,
    pure-Python parse-and-prove (falling back to the exact scan), or the exact scan alone."""
    from gateway.rewrite import link_map, response_rewrite

    path: str = request.param
    if path == "compiled":
        if link_map.ACCELERATOR is None:
            pytest.skip(f"the C accelerator is not built (or {link_map.NO_EXTENSIONS_ENV} is set)")
    else:
        monkeypatch.setattr(link_map, "ACCELERATOR", None)
    if path == "exact":
        monkeypatch.setattr(response_rewrite, "PARSE_AND_PROVE_MAX", -1)
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def run_on(loop: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to its end on a new event loop of kind ``loop`` (one of LOOPS): for
    in-process tests of transport-level code, which must hold on uvloop as on asyncio."""
    import uvloop

    factories = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}
    with asyncio.Runner(loop_factory=factories[loop]) as runner:
        return runner.run(main())


@pytest.fixture(params=LOOPS)
def serve_loop(request: pytest.FixtureRequest) -> str:
    """The event loop a test's ``gateway serve`` process runs on (``spawn(loop=...)``): each
    test that takes this runs once on uvloop and once on asyncio's own loop."""
    loop: str = request.param
    return loop


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for ``host`` and its key, as PEM files."""

    host: str
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed(folder: Path, host: str = "gateway.test") -> TlsFiles:
    """Write a self-signed EC certificate for ``host`` (and its key) into ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(host, folder / f"{host}.pem", folder / f"{host}-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files
