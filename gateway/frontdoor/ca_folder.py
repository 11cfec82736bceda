"""The CA folder that ``gateway tls init`` writes, as the gateway reads it back.

``--proxy-ca-cert`` names ``ca.pem`` (the root users trust) or the intermediate itself, and
``--proxy-ca-key`` the intermediate's key. When the key does not belong to the certificate
named, the intermediate it belongs to is read from ``intermediate.pem`` in the same folder.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from gateway.frontdoor.certificates import (
    CertificateAuthority,
    CertificateError,
    KeyMismatch,
    load_ca,
)
from gateway.frontdoor.names import INTERMEDIATE_FILE


def load_ca_beside(cert_file: Path, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
    """The CA from the named certificate and key, with ``intermediate.pem`` beside
    ``cert_file`` when the key belongs to that instead; ``CertificateError`` naming a
    missing intermediate."""
    try:
        return load_ca(cert_pem, key_pem)
    except KeyMismatch:
        if cert_file.name == INTERMEDIATE_FILE:
            raise
        beside = cert_file.with_name(INTERMEDIATE_FILE)
        try:
            intermediate_pem = beside.read_bytes()
        except FileNotFoundError:
            raise CertificateError(
                f"the CA key does not belong to {cert_file}, and {beside}, the intermediate "
                "it would belong to, is missing"
            ) from None
        except OSError as exc:
            raise CertificateError(f"{beside}: {exc.strerror or exc}") from None
    return load_ca(cert_pem, key_pem, intermediate_pem)


def one_level_warning(cert_file: Path) -> str:
    """What start-up logs for a CA from an earlier ``gateway tls init``, which signs with the
    key of the certificate the apps trust."""
    folder = shlex.quote(str(cert_file.absolute().parent))
    return (
        f"{cert_file} is a one-level CA from an earlier `gateway tls init`: Java clients do "
        "not apply a trusted root's Name Constraints, so whoever holds its key can "
        "impersonate any site to a JVM app that trusts it; re-create it with "
        f"`gateway tls init {folder} --force` (a root whose key is discarded and an "
        "intermediate that signs), then have the apps trust the new ca.pem"
    )
