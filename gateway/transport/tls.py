"""TLS towards the upstreams: one client context per process, from the config.

Verification is on unless ``insecure_skip_tls_verify`` is set (logged as a warning when the
transport is made); ``ca_bundle`` replaces the system's trust store. The lean transport
names the upstream host in SNI and checks the certificate against it; ALPN offers only
HTTP/1.1, as aiohttp's contexts do.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def bundle_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """A verifying context that trusts ``ca_bundle`` (the system's store when None). A file
    that holds no PEM certificate raises ``ValueError`` naming it, not ``ssl.SSLError``."""
    try:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    except ssl.SSLError as exc:
        raise ValueError(
            f"ca_bundle {ca_bundle}: not a bundle of PEM CA certificates ({exc.reason or exc})"
        ) from None


def client_context(verify: bool, ca_bundle: Path | None) -> ssl.SSLContext:
    """The context the lean transport connects with."""
    if verify:
        context = bundle_context(ca_bundle)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(["http/1.1"])
    return context


def aiohttp_ssl(verify: bool, ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """What the aiohttp transport's connector is given, as before the seam: ``False`` (no
    verification), a context with the bundle, or ``True`` (aiohttp's default context)."""
    if not verify:
        return False
    if ca_bundle is not None:
        return bundle_context(ca_bundle)
    return True
