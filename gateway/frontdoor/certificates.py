"""Loading an interception CA and minting leaves with it (``cryptography``; nothing here does I/O).

The CA that signs is an intermediate made by :func:`gateway.frontdoor.authority.create_ca`: it
carries the same critical X.509 Name Constraints as the root users trust, so that clients which
ignore a trust anchor's constraints (Java's PKIX) still apply them. A one-level CA from an
earlier ``gateway tls init`` (the root signs leaves itself) still loads; it is marked
:attr:`CertificateAuthority.one_level` so that start-up can warn. Leaf certificates are minted
per host, in memory, valid for a short time, and served with the intermediate after them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.frontdoor.names import INTERMEDIATE_FILE

LEAF_LIFETIME = datetime.timedelta(hours=24)
CLOCK_SKEW = datetime.timedelta(minutes=5)  # certificates start a little in the past

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertificateError(ValueError):
    """A certificate or key is unusable; the message never quotes key material."""


class KeyMismatch(CertificateError):
    """The key does not belong to the certificate given (it may belong to the intermediate)."""


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A loaded interception CA: the certificate that signs, its key, the hosts it may vouch
    for, and the CA certificates (PEM) that a server sends after each leaf it signed."""

    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)
    hosts: tuple[str, ...]
    chain_pem: bytes = b""

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def one_level(self) -> bool:
        """The signer is itself the trust anchor: an earlier ``tls init``'s CA, whose Name
        Constraints Java does not apply."""
        return not self.chain_pem


@dataclass(frozen=True, slots=True)
class Leaf:
    """One host's certificate and key in PEM, for an ``ssl`` context; never written to disk
    by the gateway itself."""

    host: str
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    not_after: datetime.datetime
    chain_pem: bytes = b""  # the CA certificates to send after it (the intermediate)

    @property
    def full_chain_pem(self) -> bytes:
        """The leaf and then its chain, as a server presents them."""
        return self.cert_pem + self.chain_pem


def subject(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "marketplace-gateway"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def key_usage(*, ca: bool) -> x509.KeyUsage:
    """Digital signature; for a CA also certificate and CRL signing."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateError(f"{what} is not a PEM certificate") from exc


def _private_key(pem: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        # The library's message could describe the key; ours never does.
        raise CertificateError("the CA key is not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError("the CA key must be an EC or RSA key")
    return key


def _belongs(key: PrivateKey, certificate: x509.Certificate) -> bool:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return key.public_key().public_bytes(der, public) == certificate.public_key().public_bytes(
        der, public
    )


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_ca(certificate: x509.Certificate, what: str, moment: datetime.datetime) -> None:
    try:
        basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise CertificateError(f"{what} is not a CA (BasicConstraints ca=false)")
    if certificate.not_valid_after_utc <= moment:
        raise CertificateError(
            f"{what} expired on {certificate.not_valid_after_utc:%Y-%m-%d}; "
            "make a new one with `gateway tls init`"
        )


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
    cert_pem: bytes,
    key_pem: bytes,
    intermediate_pem: bytes | None = None,
    *,
    now: datetime.datetime | None = None,
) -> CertificateAuthority:
    """Load and check an interception CA.

    ``cert_pem`` is the certificate the key belongs to (the intermediate, or a one-level CA),
    or the root, with the intermediate the key belongs to in ``intermediate_pem``. Raises
    :class:`KeyMismatch` when the key does not belong to ``cert_pem`` and no intermediate was
    given, so that the caller can look for one."""
    given = _certificate(cert_pem, "the CA certificate")
    key = _private_key(key_pem)
    moment = now or datetime.datetime.now(datetime.UTC)
    if _belongs(key, given):
        signer = given
    elif intermediate_pem is None:
        raise KeyMismatch("the CA key does not belong to the CA certificate")
    else:
        signer = _certificate(intermediate_pem, INTERMEDIATE_FILE)
        if not _belongs(key, signer):
            raise CertificateError(
                f"the CA key belongs neither to the CA certificate nor to {INTERMEDIATE_FILE}"
            )
        if not _issued_by(signer, given):
            raise CertificateError(f"{INTERMEDIATE_FILE} was not signed by the CA certificate")
        _check_ca(given, "the CA certificate", moment)
    _check_ca(signer, "the CA certificate" if signer is given else INTERMEDIATE_FILE, moment)
    hosts = _permitted_hosts(signer)
    one_level = _issued_by(signer, signer)  # self-signed: it is the trust anchor itself
    chain = b"" if one_level else signer.public_bytes(serialization.Encoding.PEM)
    return CertificateAuthority(signer, key, hosts, chain)


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
        .subject_name(subject(host))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(ca=False), critical=True)
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
        key_pem(key),
        not_after,
        ca.chain_pem,
    )
