"""gateway.transport.tls and TLS through the lean transport, on uvloop and on asyncio's loop:
verification against the system store or ``--ca-bundle``, SNI and the hostname check, and
``--insecure-skip-tls-verify``. The upstream is a real TLS server on loopback whose certificate
is made here for ``localhost``."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from multidict import CIMultiDict

from gateway.models import UpstreamRequest
from gateway.transport.lean import LeanTransport
from gateway.transport.seam import NoAnswer, Timeouts
from gateway.transport.tls import aiohttp_ssl, client_context

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def make_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for DNS name ``name`` (and 127.0.0.1), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def run_on(loop: str, scenario: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(scenario())


async def tls_get(
    context: ssl.SSLContext, cert: tuple[Path, Path], host: str = "localhost"
) -> tuple[int, list[str | None]]:
    """One GET through the lean transport to a TLS server for ``localhost``: the status and
    the names the server was asked for in SNI."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*cert)
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,return-value]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    transport = LeanTransport(
        pool_size=10, pool_size_per_host=0, keepalive_timeout=5.0, tls=context
    )
    request = UpstreamRequest("GET", f"https://{host}:{port}/v1/A", CIMultiDict(), b"")
    try:
        async with asyncio.timeout(10):
            response = await transport.send(request, Timeouts(5.0, 5.0, 10.0))
            await response.read()
            await response.release()
            return response.status, names
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    return {name: make_certificate(folder, name) for name in ("localhost", "other.test")}


@pytest.mark.parametrize("loop", LOOPS)
def test_a_ca_bundle_is_trusted_and_sni_names_the_host(
    loop: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    cert = certificates["localhost"]

    async def scenario() -> None:
        status, names = await tls_get(client_context(True, cert[0]), cert)
        assert (status, names) == (200, ["localhost"])

    run_on(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("bundle", ["none", "wrong name"])
def test_an_untrusted_or_misnamed_certificate_is_a_tls_failure_before_any_request(
    loop: str, bundle: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    served = certificates["other.test" if bundle == "wrong name" else "localhost"]
    trusted = served[0] if bundle == "wrong name" else None

    async def scenario() -> None:
        with pytest.raises(NoAnswer) as caught:
            await tls_get(client_context(True, trusted), served)
        assert (caught.value.error.kind, caught.value.error.code) == ("tls", 88001)

    run_on(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_skipping_verification_accepts_any_certificate(
    loop: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    async def scenario() -> None:
        status, names = await tls_get(client_context(False, None), certificates["other.test"])
        assert (status, names) == (200, ["localhost"])

    run_on(loop, scenario)


def test_the_contexts_verify_unless_told_not_to(certificates: dict[str, tuple[Path, Path]]) -> None:
    verified = client_context(True, None)
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname
    bundled = client_context(True, certificates["localhost"][0])
    assert bundled.cert_store_stats()["x509_ca"] == 1  # the bundle replaces the system store
    insecure = client_context(False, None)
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    assert aiohttp_ssl(False, None) is False and aiohttp_ssl(True, None) is True
    context = aiohttp_ssl(True, certificates["localhost"][0])
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
