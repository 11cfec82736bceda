"""The gateway's public base URL for one request (pure; no I/O).

Configured ``public_base_url`` wins. Otherwise the request's own scheme and ``Host`` are used,
and ``Forwarded`` / ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` only when the operator has
said a trusted proxy sets them. A host that is not a plain ``host[:port]`` is never echoed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_HOST = re.compile(r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_FORWARDED_PAIR = re.compile(r'(?i)\b(proto|host)=("?)([^;,"\s]+)\2')


def public_base(
    *,
    configured: str | None,
    scheme: str,
    host_header: str | None,
    headers: Mapping[str, str],
    trust_forwarded: bool,
    fallback_host: str,
) -> str:
    """``scheme://host[:port][/prefix]`` without a trailing slash."""
    if configured:
        return configured
    host = host_header
    if trust_forwarded:
        forwarded_proto, forwarded_host = _from_forwarded(headers.get("Forwarded", ""))
        proto = forwarded_proto or _first(headers.get("X-Forwarded-Proto"))
        host = forwarded_host or _first(headers.get("X-Forwarded-Host")) or host
        if proto in ("http", "https"):
            scheme = proto
    if not host or not _HOST.fullmatch(host):
        host = fallback_host
    return f"{scheme}://{host}"


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",", 1)[0].strip().lower() or None


def _from_forwarded(value: str) -> tuple[str | None, str | None]:
    """``proto`` and ``host`` of the first (client-nearest proxy's) ``Forwarded`` element."""
    first = value.split(",", 1)[0]
    found = {key.lower(): val for key, _, val in _FORWARDED_PAIR.findall(first)}
    proto = found.get("proto")
    return (proto.lower() if proto else None), found.get("host")
