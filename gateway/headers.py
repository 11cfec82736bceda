"""Header filtering in both directions (pure; no I/O).

Hop-by-hop headers (RFC 9110 section 7.6.1) and every header named in ``Connection`` are
dropped both ways. Upstream framing headers are dropped because the body is re-framed here;
``Content-Encoding`` too, unless the body is passed on still in that coding.
"""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Request headers the gateway sets itself rather than copying from the client.
_NOT_FORWARDED: frozenset[str] = HOP_BY_HOP | {
    "host",
    "content-length",
    "accept-encoding",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
}

# Response headers that describe the upstream's framing or encoding of the body.
_FRAMING: frozenset[str] = HOP_BY_HOP | {"content-length"}
_CODED: frozenset[str] = _FRAMING | {"content-encoding"}

# Response headers that describe the exact bytes of the body; stale once it is rewritten.
_BODY_DIGESTS: frozenset[str] = frozenset(
    {"etag", "content-md5", "digest", "repr-digest", "content-digest", "accept-ranges"}
)

VIA = "1.1 marketplace-gateway"


def connection_listed(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """Lower-cased names listed in every ``Connection`` header."""
    names: set[str] = set()
    for value in headers.getall("Connection", ()):
        names.update(part.strip().lower() for part in value.split(",") if part.strip())
    return frozenset(names)


def _copy_except(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: Iterable[str]
) -> CIMultiDict[str]:
    dropped = frozenset(drop) | connection_listed(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in dropped:
            out.add(name, value)
    return out


def outbound(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """Client request headers as sent upstream.

    ``Authorization`` passes untouched; ``Host`` is left for the HTTP client to set from the
    upstream URL; the upstream is asked for an uncompressed body so it can be rewritten.
    """
    out = _copy_except(headers, _NOT_FORWARDED)
    out["Accept-Encoding"] = "identity"
    out.add("Via", VIA)
    return out


def inbound(
    headers: CIMultiDictProxy[str] | CIMultiDict[str],
    *,
    body_rewritten: bool,
    encoded: bool = False,
) -> CIMultiDict[str]:
    """Upstream response headers as sent to the client (before the gateway's own).

    ``body_rewritten``: the body differs from the upstream's bytes (its digests are stale);
    ``encoded``: it is still in the upstream's ``Content-Encoding``, which is kept.
    """
    drop = _FRAMING if encoded else _CODED
    if body_rewritten:
        drop = drop | _BODY_DIGESTS
    out = _copy_except(headers, drop)
    out.add("Via", VIA)
    return out
