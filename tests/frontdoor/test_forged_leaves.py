"""What a stolen ``ca-key.pem`` can sign, put to the clients themselves: Java (HttpClient, a
PKCS12 trust store from keytool), Go (net/http, SSL_CERT_FILE), Python's ssl and curl, each
trusting ``ca.pem`` from ``gateway tls init``.

The key on disk is the intermediate's. Leaves it signs for another name and for an IP address
are served by a TLS server on loopback, followed by the intermediate (which is public), as an
attacker would serve them. Every client refuses both, on the Name Constraints; a leaf for
``preview.twilio.com`` from the same key is accepted by every client, so that is what the
refusals come from. A leaf for a subdomain of ``preview.twilio.com`` is refused by every client
too, on the excluded ``.preview.twilio.com`` subtree. With a one-level CA from the earlier
``tls init``, Java accepts any name: that is the risk start-up warns of.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.cli import main
from gateway.frontdoor.ca_folder import load_ca_beside
from gateway.frontdoor.certificates import CertificateAuthority, key_pem, subject
from gateway.frontdoor.tls_context import context_from_memory
from tests.processes import run_to_end

from .conftest import PREVIEW, write_one_level_ca
from .jvm_go_clients import GoClient, JavaClient, Outcome, java_trust_properties, outcomes

pytestmark = pytest.mark.slow

OTHER = "evil.example"
SUBDOMAIN = f"evil.{PREVIEW}"
LEAVES = ("permitted", "other name", "ip address", "subdomain")
NAMES = {
    "permitted": x509.DNSName(PREVIEW),
    "other name": x509.DNSName(OTHER),
    "ip address": x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    "subdomain": x509.DNSName(SUBDOMAIN),
}


def forge(ca: CertificateAuthority, name: x509.GeneralName) -> tuple[bytes, bytes]:
    """A server certificate for ``name`` signed with the CA's key, valid in every other way,
    followed by the CA's chain; and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject(str(name.value)))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM) + ca.chain_pem, key_pem(key)


@dataclass(frozen=True)
class Forgery:
    root: Path  # ca.pem, what the clients trust
    folder: Path
    urls: dict[str, str]  # leaf kind -> the URL that reaches its server

    def host_port(self, kind: str) -> tuple[str, int]:
        rest = self.urls[kind].removeprefix("https://").rstrip("/")
        host, port = rest.rsplit(":", 1)
        return host, int(port)


async def _serve(ca: CertificateAuthority, folder: Path, root: Path) -> AsyncIterator[Forgery]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # a client that refused the certificate hangs up in the handshake
        finally:
            writer.close()

    servers, urls = [], {}
    for kind in LEAVES:
        chain, key = forge(ca, NAMES[kind])
        server = await asyncio.start_server(
            answer, "127.0.0.1", 0, ssl=context_from_memory(chain, key)
        )
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        urls[kind] = f"https://{NAMES[kind].value}:{port}/"
    try:
        yield Forgery(root, folder, urls)
    finally:
        for server in servers:
            server.close()


@pytest.fixture
async def two_level(tmp_path: Path) -> AsyncIterator[Forgery]:
    """Leaves signed with the one key ``gateway tls init`` leaves on disk."""
    folder = tmp_path / "ca"
    assert main(["tls", "init", str(folder)]) == 0
    root, key = folder / "ca.pem", folder / "ca-key.pem"
    ca = load_ca_beside(root, root.read_bytes(), key.read_bytes())
    async for forgery in _serve(ca, tmp_path, root):
        yield forgery


@pytest.fixture
async def one_level(tmp_path: Path) -> AsyncIterator[Forgery]:
    """Leaves signed with the key of a one-level CA from the earlier ``tls init``."""
    files = write_one_level_ca(tmp_path / "old")
    ca = load_ca_beside(files.cert, files.cert.read_bytes(), files.key.read_bytes())
    assert ca.one_level
    async for forgery in _serve(ca, tmp_path, files.cert):
        yield forgery


async def java_outcomes(java: JavaClient, forgery: Forgery) -> dict[str, Outcome]:
    hosts = forgery.folder / "hosts"  # the JVM resolves the names from this file only
    hosts.write_text(f"127.0.0.1 {PREVIEW} {OTHER} {SUBDOMAIN}\n")
    store = java.trust_store(forgery.folder / "java", forgery.root, public_cas=False)
    properties = {**java_trust_properties(store), "jdk.net.hosts.file": str(hosts)}
    out = await java.run("probe", *forgery.urls.values(), properties=properties, env={})
    return _by_kind(forgery, outcomes(out))


async def go_outcomes(go: GoClient, forgery: Forgery) -> dict[str, Outcome]:
    out = await go.run(
        "probe", "127.0.0.1", *forgery.urls.values(), env={"SSL_CERT_FILE": str(forgery.root)}
    )
    return _by_kind(forgery, outcomes(out))


async def python_outcomes(forgery: Forgery) -> dict[str, Outcome]:
    client = ssl.create_default_context(cafile=str(forgery.root))
    found = {}
    for kind in LEAVES:
        host, port = forgery.host_port(kind)
        try:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client, server_hostname=host
            )
        except ssl.SSLCertVerificationError as exc:
            found[kind] = Outcome(False, exc.verify_message)
            continue
        writer.close()
        found[kind] = Outcome(True, "handshake")
    return found


async def curl_outcomes(forgery: Forgery) -> dict[str, Outcome]:
    found = {}
    for kind in LEAVES:
        rc, out, err = await run_to_end(
            ["curl", "-sS", "--max-time", "10", "--noproxy", "*", "--cacert", str(forgery.root),
             "--connect-to", "::127.0.0.1:", forgery.urls[kind]],
            cwd=forgery.folder, env={"PATH": "/usr/bin:/bin"}, timeout=20,
        )  # fmt: skip
        found[kind] = Outcome(rc == 0, out if rc == 0 else f"exit {rc}: {err.strip()}")
    return found


def _by_kind(forgery: Forgery, found: dict[str, Outcome]) -> dict[str, Outcome]:
    return {kind: found[url] for kind, url in forgery.urls.items()}


# Why each client refuses each leaf: the words of its own error.
REFUSALS = {
    "python": {
        "other name": "permitted subtree violation",
        "ip address": "excluded subtree violation",
        "subdomain": "excluded subtree violation",
    },
    "curl": {
        "other name": "permitted subtree violation",
        "ip address": "excluded subtree violation",
        "subdomain": "excluded subtree violation",
    },
    "go": {
        "other name": f'DNS name "{OTHER}" is not permitted by any constraint',
        "ip address": 'IP address "127.0.0.1" is excluded by constraint "0.0.0.0/0"',
        "subdomain": f'DNS name "{SUBDOMAIN}" is excluded by constraint ".{PREVIEW}"',
    },
    "java": {
        "other name": "CertPathValidatorException: name constraints check failed",
        "ip address": "CertPathValidatorException: name constraints check failed",
        "subdomain": "CertPathValidatorException: name constraints check failed",
    },
}


def _check(client: str, found: dict[str, Outcome], accepted: set[str]) -> None:
    for kind in LEAVES:
        outcome = found[kind]
        assert outcome.accepted == (kind in accepted), (client, kind, outcome)
        if not outcome.accepted:
            assert REFUSALS[client][kind] in outcome.detail, (client, kind, outcome)


async def test_java_refuses_every_other_name(two_level: Forgery, java_client: JavaClient) -> None:
    _check("java", await java_outcomes(java_client, two_level), accepted={"permitted"})


async def test_go_refuses_every_other_name(two_level: Forgery, go_client: GoClient) -> None:
    _check("go", await go_outcomes(go_client, two_level), accepted={"permitted"})


async def test_python_ssl_refuses_every_other_name(two_level: Forgery) -> None:
    _check("python", await python_outcomes(two_level), accepted={"permitted"})


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_refuses_every_other_name(two_level: Forgery) -> None:
    _check("curl", await curl_outcomes(two_level), accepted={"permitted"})


async def test_with_a_one_level_ca_java_accepts_any_name(
    one_level: Forgery, java_client: JavaClient, go_client: GoClient
) -> None:
    """The defect that the two levels fix, and that start-up warns of: Java ignores the
    constraints of the root it trusts, so the old CA's key vouches for any site there."""
    found = await java_outcomes(java_client, one_level)
    assert all(outcome.accepted for outcome in found.values()), found
    go = await go_outcomes(go_client, one_level)  # Go applies the root's constraints
    assert [kind for kind in LEAVES if go[kind].accepted] == ["permitted", "subdomain"]
