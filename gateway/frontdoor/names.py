"""The host names a front-door certificate may name, the CA's defaults and the names of its
files (pure; no I/O).

Kept apart from :mod:`gateway.frontdoor.certificates` so that what parses and checks names
does not load ``cryptography``.
"""

from __future__ import annotations

import re

DEFAULT_HOSTS = ("preview.twilio.com",)
CA_DAYS = 730

# The files of a CA folder made by ``gateway tls init``: what users trust, the certificate that
# signs, and the one private key kept (the intermediate's; the root's is never written).
ROOT_FILE = "ca.pem"
INTERMEDIATE_FILE = "intermediate.pem"
KEY_FILE = "ca-key.pem"

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def check_host_name(name: str) -> str:
    """A lower-case DNS host name (no wildcard, no IP address, no trailing dot)."""
    host = name.strip().lower()
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        raise ValueError(f"not a DNS host name: {name!r}")
    if labels[-1].isdigit():
        raise ValueError(f"an IP address is not a host name: {name!r}")
    return host
