"""Loading the interception CA (two-level, the intermediate named directly, or one-level from an
earlier ``tls init``) and its leaves, which a client trusting only the root verifies."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.frontdoor.authority import NewAuthority, create_ca
from gateway.frontdoor.certificates import CertificateError, KeyMismatch, load_ca, mint_leaf
from gateway.frontdoor.tls_context import context_from_memory

from .conftest import PREVIEW, write_one_level_ca


def _load(created: NewAuthority) -> tuple[bytes, bytes, bytes]:
    return created.root_pem, created.key_pem, created.intermediate_pem


def test_the_intermediate_signs_and_is_served_after_each_leaf() -> None:
    created = create_ca([PREVIEW])
    ca = load_ca(*_load(created))
    intermediate = x509.load_pem_x509_certificate(created.intermediate_pem)
    assert ca.certificate == intermediate and not ca.one_level
    assert ca.chain_pem == created.intermediate_pem
    assert ca.hosts == (PREVIEW,)
    leaf = mint_leaf(ca, PREVIEW)
    certificate = x509.load_pem_x509_certificate(leaf.cert_pem)
    assert certificate.issuer == intermediate.subject
    certificate.verify_directly_issued_by(intermediate)
    assert leaf.full_chain_pem == leaf.cert_pem + created.intermediate_pem
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [PREVIEW]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime <= datetime.timedelta(hours=24, minutes=5)
    assert "PRIVATE KEY" not in repr(leaf) and "key_pem" not in repr(leaf)
    assert "key=" not in repr(ca) and "PRIVATE KEY" not in repr(ca)


def test_the_key_alone_fits_the_intermediate_named_directly() -> None:
    created = create_ca([PREVIEW])
    ca = load_ca(created.intermediate_pem, created.key_pem)
    assert not ca.one_level and ca.chain_pem == created.intermediate_pem
    with pytest.raises(KeyMismatch):  # the root without the intermediate: the caller looks
        load_ca(created.root_pem, created.key_pem)


def test_a_one_level_ca_still_loads_and_says_so(tmp_path: Path) -> None:
    files = write_one_level_ca(tmp_path)
    ca = load_ca(files.cert.read_bytes(), files.key.read_bytes())
    assert ca.one_level and ca.chain_pem == b""
    leaf = mint_leaf(ca, PREVIEW)
    assert leaf.full_chain_pem == leaf.cert_pem  # the root signs: nothing to send after it


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


def _trusting_the_root(tmp_path: Path, created: NewAuthority) -> ssl.SSLContext:
    (tmp_path / "ca.pem").write_bytes(created.root_pem)
    return ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))


async def test_a_client_trusting_only_the_root_accepts_a_leaf_and_intermediate(
    tmp_path: Path,
) -> None:
    created = create_ca([PREVIEW])
    leaf = mint_leaf(load_ca(*_load(created)), PREVIEW)
    client = _trusting_the_root(tmp_path, created)
    await _handshake(context_from_memory(leaf.full_chain_pem, leaf.key_pem), client, PREVIEW)
    with pytest.raises(ssl.SSLCertVerificationError) as caught:  # the leaf alone: no path
        await _handshake(context_from_memory(leaf.cert_pem, leaf.key_pem), client, PREVIEW)
    assert caught.value.verify_message == "unable to get local issuer certificate"


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ("example.com", "permitted subtree violation"),
        ("api.twilio.com", "permitted subtree violation"),
        ("twilio.com", "permitted subtree violation"),
        (f"evil.{PREVIEW}", "excluded subtree violation"),
    ],
)
async def test_a_leaf_for_another_name_fails_on_the_name_constraints(
    tmp_path: Path, other: str, message: str
) -> None:
    """Signed with the intermediate's key, valid in every other way: the constraints alone
    reject it (OpenSSL, as in Python's ssl)."""
    created = create_ca([PREVIEW])
    forged = mint_leaf(load_ca(*_load(created)), other)
    client = _trusting_the_root(tmp_path, created)
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await _handshake(context_from_memory(forged.full_chain_pem, forged.key_pem), client, other)
    assert caught.value.verify_message == message


def test_load_ca_refuses_what_it_cannot_use() -> None:
    created, other = create_ca([PREVIEW]), create_ca([PREVIEW])
    with pytest.raises(KeyMismatch, match="does not belong"):
        load_ca(created.intermediate_pem, other.key_pem)
    with pytest.raises(CertificateError, match="neither to the CA certificate nor to inter"):
        load_ca(created.root_pem, other.key_pem, created.intermediate_pem)
    with pytest.raises(CertificateError, match="intermediate.pem was not signed by the CA"):
        load_ca(other.root_pem, created.key_pem, created.intermediate_pem)
    with pytest.raises(CertificateError, match="intermediate.pem is not a PEM certificate"):
        load_ca(created.root_pem, created.key_pem, b"nonsense")
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        load_ca(b"nonsense", created.key_pem)
    with pytest.raises(CertificateError, match="not an unencrypted PEM private key") as caught:
        load_ca(created.root_pem, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert "AAAA" not in str(caught.value)
    encrypted = serialization.load_pem_private_key(created.key_pem, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(CertificateError, match="unencrypted"):
        load_ca(created.intermediate_pem, encrypted)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=800)
    with pytest.raises(CertificateError, match="expired"):
        load_ca(*_load(created), now=later)


def test_load_ca_refuses_a_ca_without_name_constraints() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "unconstrained")])
    now = datetime.datetime.now(datetime.UTC)
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
