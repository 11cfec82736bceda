"""Making the CA: a root and an intermediate with the same critical Name Constraints (each host,
not its subdomains, no IP address); only the intermediate's key comes out."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.frontdoor.authority import create_ca
from gateway.frontdoor.names import check_host_name

from .conftest import PREVIEW


def _constraints(certificate: x509.Certificate) -> x509.Extension[x509.NameConstraints]:
    return certificate.extensions.get_extension_for_class(x509.NameConstraints)


def _path_length(certificate: x509.Certificate) -> int | None:
    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    return basic.value.path_length


def test_a_root_and_an_intermediate_with_the_same_critical_constraints() -> None:
    created = create_ca([PREVIEW, "Other.Example.com"])
    root = x509.load_pem_x509_certificate(created.root_pem)
    intermediate = x509.load_pem_x509_certificate(created.intermediate_pem)
    for certificate in (root, intermediate):
        constraints = _constraints(certificate)
        assert constraints.critical
        assert constraints.value.permitted_subtrees == [
            x509.DNSName(PREVIEW),
            x509.DNSName("other.example.com"),
        ]
        assert constraints.value.excluded_subtrees == [
            x509.DNSName(f".{PREVIEW}"),
            x509.DNSName(".other.example.com"),
            x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
            x509.IPAddress(ipaddress.ip_network("::/0")),
        ]
        assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
        assert certificate.signature_hash_algorithm is not None
        assert certificate.signature_hash_algorithm.name == "sha256"
        lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        assert datetime.timedelta(days=729) < lifetime < datetime.timedelta(days=731)
    root.verify_directly_issued_by(root)  # self-signed: the trust anchor
    intermediate.verify_directly_issued_by(root)
    assert root.subject != intermediate.subject
    assert _path_length(root) == 1  # one CA below it, the intermediate
    assert _path_length(intermediate) == 0  # no CA below it


def test_only_the_intermediates_key_comes_out() -> None:
    created = create_ca([PREVIEW])
    key = serialization.load_pem_private_key(created.key_pem, None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER

    def public(pem: bytes) -> bytes:
        return x509.load_pem_x509_certificate(pem).public_key().public_bytes(der, spki)

    assert key.public_key().public_bytes(der, spki) == public(created.intermediate_pem)
    assert key.public_key().public_bytes(der, spki) != public(created.root_pem)
    assert "PRIVATE KEY" not in repr(created) and "key_pem" not in repr(created)


def test_create_ca_checks_its_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        create_ca([])
    with pytest.raises(ValueError, match="days"):
        create_ca([PREVIEW], days=0)
    with pytest.raises(ValueError, match=f"edge.{PREVIEW} is a subdomain of {PREVIEW}"):
        create_ca([PREVIEW, f"edge.{PREVIEW}"])


@pytest.mark.upstream
@pytest.mark.parametrize("name", ["*.twilio.com", "127.0.0.1", "localhost", "a..b", "-a.com", ""])
def test_host_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError):
        check_host_name(name)
    with pytest.raises(ValueError):
        create_ca([name])
