"""Keys and certificates for interception (``cryptography``; nothing here does I/O).

The CA made by :func:`create_ca` carries critical X.509 Name Constraints that permit only the
intercepted host names and exclude every IP address, so its key cannot vouch for any other site
even if it leaks. Leaf certificates are minted per host, in memory, valid for a short time.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.frontdoor.names import CA_DAYS, DEFAULT_HOSTS, check_host_name

__all__ = ["CA_DAYS", "DEFAULT_HOSTS", "check_host_name"]  # re-exported for callers

LEAF_LIFETIME = datetime.timedelta(hours=24)
CLOCK_SKEW = datetime.timedelta(minutes=5)  # leaves start a little in the past

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertificateError(ValueError):
    """A certificate or key is unusable; the message never quotes key material."""


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A loaded interception CA: its certificate, its key and the hosts it may vouch for."""

    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)
    hosts: tuple[str, ...]

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc


@dataclass(frozen=True, slots=True)
class Leaf:
    """One host's certificate and key in PEM, for an ``ssl`` context; never written to disk."""

    host: str
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    not_after: datetime.datetime


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "marketplace-gateway"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(
    hosts: Sequence[str], *, days: int = CA_DAYS, now: datetime.datetime | None = None
) -> tuple[bytes, bytes]:
    """A new EC P-256 CA limited to ``hosts``: (certificate PEM, private key PEM)."""
    names = tuple(dict.fromkeys(check_host_name(h) for h in hosts))
    if not names:
        raise ValueError("at least one host name is needed")
    if not 1 <= days <= 3650:
        raise ValueError(f"days must be 1 to 3650, got {days}")
    start = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"marketplace-gateway interception CA {start:%Y-%m-%d %H:%M:%S}")
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(name) for name in names],
        excluded_subtrees=[
            x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
            x509.IPAddress(ipaddress.ip_network("::/0")),
        ],
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _permitted_hosts(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound as exc:
        raise CertificateError(
            "the CA certificate has no Name Constraints; make one with `gateway tls init`"
        ) from exc
    if not extension.critical:
        raise CertificateError("the CA certificate's Name Constraints are not critical")
    permitted = extension.value.permitted_subtrees or []
    hosts = tuple(n.value.lower() for n in permitted if isinstance(n, x509.DNSName))
    if not hosts or len(hosts) != len(permitted):
        raise CertificateError("the CA certificate's Name Constraints permit no plain host names")
    return hosts


def load_ca(
    cert_pem: bytes, key_pem: bytes, *, now: datetime.datetime | None = None
) -> CertificateAuthority:
    """Load and check an interception CA (made by :func:`create_ca` or alike)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise CertificateError("the CA certificate is not a PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        # The library's message could describe the key; ours never does.
        raise CertificateError("the CA key is not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError("the CA key must be an EC or RSA key")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) != certificate.public_key().public_bytes(serialization.Encoding.DER, public):
        raise CertificateError("the CA key does not belong to the CA certificate")
    try:
        basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise CertificateError("the CA certificate is not a CA (BasicConstraints ca=false)")
    moment = now or datetime.datetime.now(datetime.UTC)
    if certificate.not_valid_after_utc <= moment:
        raise CertificateError(
            f"the CA certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}; "
            "make a new one with `gateway tls init`"
        )
    return CertificateAuthority(certificate, key, _permitted_hosts(certificate))


def mint_leaf(
    ca: CertificateAuthority,
    host: str,
    *,
    lifetime: datetime.timedelta = LEAF_LIFETIME,
    now: datetime.datetime | None = None,
) -> Leaf:
    """A server certificate for ``host`` signed by ``ca`` (EC P-256, SAN = the host)."""
    start = now or datetime.datetime.now(datetime.UTC)
    not_after = min(start + lifetime, ca.not_after)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Leaf(
        host,
        certificate.public_bytes(serialization.Encoding.PEM),
        _key_pem(key),
        not_after,
    )
