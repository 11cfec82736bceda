"""The interception CA and its leaves: Name Constraints that a verifying client enforces."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.frontdoor.certificates import (
    CertificateError,
    check_host_name,
    create_ca,
    load_ca,
    mint_leaf,
)
from gateway.frontdoor.tls_context import context_from_memory

from .conftest import PREVIEW


def _ca(hosts: tuple[str, ...] = (PREVIEW,)) -> tuple[bytes, bytes]:
    return create_ca(hosts)


def test_the_ca_is_constrained_to_its_hosts_and_no_ip_address() -> None:
    cert_pem, key_pem = _ca((PREVIEW, "Other.Example.com"))
    certificate = x509.load_pem_x509_certificate(cert_pem)
    constraints = certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.permitted_subtrees == [
        x509.DNSName(PREVIEW),
        x509.DNSName("other.example.com"),
    ]
    assert constraints.value.excluded_subtrees == [
        x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
        x509.IPAddress(ipaddress.ip_network("::/0")),
    ]
    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert certificate.signature_hash_algorithm is not None
    assert certificate.signature_hash_algorithm.name == "sha256"
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert datetime.timedelta(days=729) < lifetime < datetime.timedelta(days=731)
    assert load_ca(cert_pem, key_pem).hosts == (PREVIEW, "other.example.com")


@pytest.mark.parametrize("name", ["*.twilio.com", "127.0.0.1", "localhost", "a..b", "-a.com", ""])
def test_host_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError):
        check_host_name(name)


def test_a_leaf_names_its_host_briefly() -> None:
    ca = load_ca(*_ca())
    leaf = mint_leaf(ca, PREVIEW)
    certificate = x509.load_pem_x509_certificate(leaf.cert_pem)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [PREVIEW]
    assert certificate.issuer == ca.certificate.subject
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime <= datetime.timedelta(hours=24, minutes=5)
    assert "PRIVATE KEY" not in repr(leaf) and "key_pem" not in repr(leaf)
    assert "key=" not in repr(ca) and "PRIVATE KEY" not in repr(ca)


async def _handshake(server_context: ssl.SSLContext, client: ssl.SSLContext, name: str) -> None:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=name
        )
        writer.close()
    finally:
        server.close()


async def test_a_verifying_client_accepts_a_leaf_for_a_permitted_host(tmp_path: Path) -> None:
    cert_pem, key_pem = _ca()
    (tmp_path / "ca.pem").write_bytes(cert_pem)
    leaf = mint_leaf(load_ca(cert_pem, key_pem), PREVIEW)
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    await _handshake(context_from_memory(leaf.cert_pem, leaf.key_pem), client, PREVIEW)


@pytest.mark.parametrize("other", ["example.com", "api.twilio.com", "twilio.com"])
async def test_a_leaf_for_another_name_fails_on_the_name_constraints(
    tmp_path: Path, other: str
) -> None:
    """Signed with the CA key, valid in every other way: the constraints alone reject it."""
    cert_pem, key_pem = _ca()
    (tmp_path / "ca.pem").write_bytes(cert_pem)
    forged = mint_leaf(load_ca(cert_pem, key_pem), other)
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await _handshake(context_from_memory(forged.cert_pem, forged.key_pem), client, other)
    assert caught.value.verify_message == "permitted subtree violation"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_rejects_a_leaf_for_another_name(tmp_path: Path) -> None:
    cert_pem, key_pem = _ca()
    (tmp_path / "ca.pem").write_bytes(cert_pem)
    forged = mint_leaf(load_ca(cert_pem, key_pem), "example.com")

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(
        on_connect, "127.0.0.1", 0, ssl=context_from_memory(forged.cert_pem, forged.key_pem)
    )
    port = server.sockets[0].getsockname()[1]
    try:
        process = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--cacert", str(tmp_path / "ca.pem"),
            "--resolve", f"example.com:{port}:127.0.0.1", f"https://example.com:{port}/",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 20)
    finally:
        server.close()
    assert process.returncode == 60, (out, err)  # CURLE_PEER_FAILED_VERIFICATION
    assert b"permitted subtree violation" in err


def test_load_ca_refuses_what_it_cannot_use() -> None:
    cert_pem, key_pem = _ca()
    other_cert, other_key = _ca()
    with pytest.raises(CertificateError, match="does not belong"):
        load_ca(cert_pem, other_key)
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        load_ca(b"nonsense", key_pem)
    with pytest.raises(CertificateError, match="not an unencrypted PEM private key") as caught:
        load_ca(cert_pem, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert "AAAA" not in str(caught.value)
    encrypted = serialization.load_pem_private_key(key_pem, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(CertificateError, match="unencrypted"):
        load_ca(cert_pem, encrypted)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=800)
    with pytest.raises(CertificateError, match="expired"):
        load_ca(cert_pem, key_pem, now=later)


def test_load_ca_refuses_a_ca_without_name_constraints() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "unconstrained")])
    now = datetime.datetime.now(datetime.UTC)
    from cryptography.hazmat.primitives import hashes

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CertificateError, match="no Name Constraints"):
        load_ca(certificate.public_bytes(serialization.Encoding.PEM), key_pem)


def test_create_ca_checks_its_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        create_ca([])
    with pytest.raises(ValueError, match="days"):
        create_ca([PREVIEW], days=0)
