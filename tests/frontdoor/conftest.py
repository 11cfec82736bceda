"""A whole stack on loopback for the front-door tests: the simulator as upstream, the gateway
(its main listener, plain or TLS) and the proxy front door feeding the same aiohttp server.

``front_stack(**config_overrides)`` starts one and stops it at teardown. The CA comes from
:func:`gateway.frontdoor.authority.create_ca`, written to a temporary folder as ``gateway tls
init`` would; :func:`write_one_level_ca` writes what the earlier, one-level ``tls init`` wrote.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.app import create_app
from gateway.frontdoor.authority import create_ca
from gateway.frontdoor.certificates import (
    CertificateAuthority,
    key_pem,
    key_usage,
    load_ca,
    subject,
)
from gateway.frontdoor.listener import ProxyFrontDoor, start_proxy
from gateway.frontdoor.startup import prepare
from gateway.serving.server import GatewayRunner
from gateway.serving.site import start_site
from gateway.simulator import create_simulator_app, load_seed
from tests.conftest import make_config

from .jvm_go_clients import GoClient, JavaClient

PREVIEW = "preview.twilio.com"
ACCOUNT = "AC" + "5" * 32
TOKEN = "front-door-token"


def new_ca(hosts: tuple[str, ...] = (PREVIEW,)) -> CertificateAuthority:
    """A new two-level CA, loaded as the gateway loads it (the intermediate signs)."""
    created = create_ca(hosts)
    return load_ca(created.root_pem, created.key_pem, created.intermediate_pem)


@dataclass(frozen=True)
class CAFiles:
    cert: Path  # ca.pem, the root users trust
    key: Path  # ca-key.pem, the intermediate's key

    @property
    def intermediate(self) -> Path:
        return self.cert.with_name("intermediate.pem")

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.cert))


def write_ca(folder: Path, hosts: tuple[str, ...] = (PREVIEW,)) -> CAFiles:
    """ca.pem, intermediate.pem and ca-key.pem, as ``gateway tls init`` writes them."""
    created = create_ca(hosts)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(created.root_pem)
    (folder / "intermediate.pem").write_bytes(created.intermediate_pem)
    (folder / "ca-key.pem").write_bytes(created.key_pem)
    (folder / "ca-key.pem").chmod(0o600)
    return CAFiles(folder / "ca.pem", folder / "ca-key.pem")


def write_one_level_ca(folder: Path, hosts: tuple[str, ...] = (PREVIEW,)) -> CAFiles:
    """ca.pem and ca-key.pem as the earlier, one-level ``gateway tls init`` wrote them: a
    self-signed CA with critical Name Constraints (its hosts, no IP address) that signs leaves
    with its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = subject("marketplace-gateway interception CA (one level)")
    now = datetime.datetime.now(datetime.UTC)
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(host) for host in hosts],
        excluded_subtrees=[
            x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
            x509.IPAddress(ipaddress.ip_network("::/0")),
        ],
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "ca-key.pem").write_bytes(key_pem(key))
    (folder / "ca-key.pem").chmod(0o600)
    return CAFiles(folder / "ca.pem", folder / "ca-key.pem")


@pytest.fixture
def ca_files(tmp_path: Path) -> CAFiles:
    return write_ca(tmp_path / "ca")


@dataclass
class FrontStack:
    simulator_url: str
    gateway_url: str  # the main listener
    proxy_url: str  # http://127.0.0.1:PORT of the proxy front door
    proxy_port: int
    ca: CAFiles
    door: ProxyFrontDoor
    caplog: pytest.LogCaptureFixture
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def access_lines(self) -> list[dict[str, Any]]:
        return [
            orjson.loads(r.getMessage()) for r in self.caplog.records if r.name == "gateway.access"
        ]


StackFactory = Callable[..., Awaitable[FrontStack]]


@pytest.fixture
async def front_stack(
    ca_files: CAFiles, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[StackFactory]:
    """``await front_stack(**config_overrides)``: simulator + gateway + proxy front door."""
    caplog.set_level(logging.INFO, logger="gateway.access")
    started: list[FrontStack] = []

    async def factory(seed: Any = None, **overrides: Any) -> FrontStack:
        sim_runner = web.AppRunner(create_simulator_app(seed or load_seed()))
        await sim_runner.setup()
        sim_site = web.TCPSite(sim_runner, "127.0.0.1", 0)
        await sim_site.start()
        simulator_url = f"http://127.0.0.1:{sim_runner.addresses[0][1]}"
        config = replace(
            make_config(simulator_url),
            listen=("127.0.0.1", 0),
            proxy_listen=("127.0.0.1", 0),
            proxy_ca_cert=ca_files.cert,
            proxy_ca_key=ca_files.key,
            **overrides,
        )
        doors = prepare(config)
        assert doors.proxy is not None
        runner = GatewayRunner(create_app(config), access_log=None, shutdown_timeout=2)
        await runner.setup()
        # As gateway serve listens: counted at accept, TLS (if any) after counting.
        port = await start_site(runner, "127.0.0.1", 0, ssl_context=doors.tls)
        scheme = "https" if doors.tls is not None else "http"
        gateway_url = f"{scheme}://127.0.0.1:{port}"
        assert runner.server is not None
        door, proxy_port = await start_proxy(runner.server, doors.proxy, "127.0.0.1", 0)

        async def stop() -> None:
            door.close()
            await runner.cleanup()
            await sim_runner.cleanup()

        stack = FrontStack(
            simulator_url,
            gateway_url,
            f"http://127.0.0.1:{proxy_port}",
            proxy_port,
            ca_files,
            door,
            caplog,
            [stop],
        )
        started.append(stack)
        return stack

    yield factory
    for stack in started:
        for cleanup in stack.cleanups:
            await cleanup()


async def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` to the proxy port as it is and read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


class Decoy:
    """A listening socket that counts the connections it accepts (it should get none)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.received = bytearray()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Decoy:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            try:
                while chunk := await reader.read(65536):
                    self.received += chunk
                    writer.write(chunk[::-1])  # answers something the client can recognise
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def decoy() -> AsyncIterator[Decoy]:
    started = await Decoy().start()
    yield started
    await started.stop()


async def all_released(door: ProxyFrontDoor, seconds: float = 3.0) -> None:
    """Wait until every proxy slot is free again (a refused connection holds its slot until
    the client closes, or at most ``connect.LINGER`` seconds); fail past ``seconds``."""
    async with asyncio.timeout(seconds):
        while door.open_count:
            await asyncio.sleep(0.01)


@pytest.fixture(scope="session")
def java_client(tmp_path_factory: pytest.TempPathFactory) -> JavaClient:
    """tests/clients/java compiled once per session (skipped, or failed under CI, without
    a JDK)."""
    return JavaClient.build(tmp_path_factory.mktemp("java-client"))


@pytest.fixture(scope="session")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> GoClient:
    """tests/clients/go built once per session (skipped, or failed under CI, without Go)."""
    return GoClient.build(tmp_path_factory.mktemp("go-client"))
