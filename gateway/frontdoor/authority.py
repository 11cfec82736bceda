"""Making the interception CA: a root users trust and the intermediate that signs (no I/O).

Both carry the same critical Name Constraints. The root's are what OpenSSL (Python, curl, Node)
and Go check; Java's PKIX ignores a trust anchor's constraints (RFC 5280 leaves that optional)
and checks only those of the CAs below it, which is why leaves are signed by an intermediate.
The root's key signs the two certificates and is then dropped: it is never serialised, so no
file and no log can hold it, and the intermediate (``pathLenConstraint=0``) cannot make a CA.

The constraints permit each host (and, by the rules of DNS constraints, its subdomains),
exclude the subdomains again with a leading-dot subtree (``.preview.twilio.com``, which OpenSSL,
Go and Java all apply: tests/frontdoor/test_forged_leaves.py), and exclude every IPv4 and IPv6
address.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.frontdoor.certificates import CLOCK_SKEW, PrivateKey, key_pem, key_usage, subject
from gateway.frontdoor.names import CA_DAYS, check_host_name


@dataclass(frozen=True, slots=True)
class NewAuthority:
    """The three files of a new CA folder, in PEM (``ca.pem``, ``intermediate.pem``,
    ``ca-key.pem``); the key is the intermediate's."""

    root_pem: bytes
    intermediate_pem: bytes
    key_pem: bytes = field(repr=False)


def name_constraints(hosts: Sequence[str]) -> x509.NameConstraints:
    """Each host and not its subdomains; no IP address."""
    return x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(host) for host in hosts],
        excluded_subtrees=[
            *(x509.DNSName(f".{host}") for host in hosts),
            x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
            x509.IPAddress(ipaddress.ip_network("::/0")),
        ],
    )


def _hosts(hosts: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(check_host_name(h) for h in hosts))
    if not names:
        raise ValueError("at least one host name is needed")
    for name in names:
        for other in names:
            if other.endswith(f".{name}"):
                raise ValueError(
                    f"{other} is a subdomain of {name}, whose subdomains the CA excludes; "
                    "give them as two CAs"
                )
    return names


def _ca_certificate(
    name: x509.Name,
    key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    *,
    path_length: int,
    constraints: x509.NameConstraints,
    start: datetime.datetime,
    days: int,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def create_ca(
    hosts: Sequence[str], *, days: int = CA_DAYS, now: datetime.datetime | None = None
) -> NewAuthority:
    """A new EC P-256 root and intermediate limited to ``hosts``; only the intermediate's
    key is returned (the root's is dropped when this returns)."""
    names = _hosts(hosts)
    if not 1 <= days <= 3650:
        raise ValueError(f"days must be 1 to 3650, got {days}")
    start = now or datetime.datetime.now(datetime.UTC)
    constraints = name_constraints(names)
    stamp = f"{start:%Y-%m-%d %H:%M:%S}"
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = subject(f"marketplace-gateway interception root CA {stamp}")
    root = _ca_certificate(
        root_name, root_key, root_name, root_key,
        path_length=1, constraints=constraints, start=start, days=days,
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    intermediate = _ca_certificate(
        subject(f"marketplace-gateway interception CA {stamp}"), key, root_name, root_key,
        path_length=0, constraints=constraints, start=start, days=days,
    )  # fmt: skip
    del root_key  # the only reference: nothing can serialise it after this point
    pem = serialization.Encoding.PEM
    return NewAuthority(root.public_bytes(pem), intermediate.public_bytes(pem), key_pem(key))
