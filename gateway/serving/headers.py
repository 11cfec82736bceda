"""Header filtering in both directions (pure; no I/O).

Hop-by-hop headers (RFC 9110 section 7.6.1) and every header named in ``Connection`` are
dropped both ways. Upstream framing headers are dropped because the body is re-framed here;
``Content-Encoding`` too, unless the body is passed on still in that coding.
An upstream ``Location`` or ``Content-Location`` naming the upstream is mapped back to the
gateway, as the URLs in a body are (nginx's ``proxy_redirect default``); any other is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
    "gateway-rehearsal",  # the migration policy's rehearsal switch is for the gateway alone
}

# Response headers that describe the upstream's framing or encoding of the body.
_FRAMING: frozenset[str] = HOP_BY_HOP | {"content-length"}
_CODED: frozenset[str] = _FRAMING | {"content-encoding"}

# Response headers that describe the exact bytes of the body; stale once it is rewritten.
_BODY_DIGESTS: frozenset[str] = frozenset(
    {"etag", "content-md5", "digest", "repr-digest", "content-digest", "accept-ranges"}
)

VIA = "1.1 marketplace-gateway"
SERVER = "marketplace-gateway"  # the Server header of every response: no versions

# Response headers holding a URL of the resource, mapped like the URLs in a body.
_LOCATIONS: tuple[str, ...] = ("Location", "Content-Location")

# A header value may hold tab, visible ASCII and visible Latin-1 (RFC 9110 field-vchar and
# obs-text as decoded text). Anything else is a control character, a C1 control, or bytes that
# were not UTF-8, which aiohttp decodes to lone surrogates and its client would not send back
# as they came: the upstream could see a different credential than the client sent.
_BAD_VALUE = re.compile("[^\t\x20-\x7e\xa0-\xff]")


def refusal(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> str | None:
    """Why the request's headers must not be forwarded, or ``None`` when they may be.

    The reason names the header, never its value.
    """
    for name, value in headers.items():
        # Printable ASCII (most values) needs no regex; anything else is checked exactly.
        if not (value.isascii() and value.isprintable()) and _BAD_VALUE.search(value):
            return f"The {name} header holds a character the gateway does not forward"
    if len(headers.getall("Authorization", ())) > 1:
        return "The request has more than one Authorization header"
    return None


def connection_listed(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """Lower-cased names listed in every ``Connection`` header."""
    names: set[str] = set()
    for value in headers.getall("Connection", ()):
        names.update(part.strip().lower() for part in value.split(",") if part.strip())
    return frozenset(names)


def _copy_except(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: frozenset[str]
) -> CIMultiDict[str]:
    if "Connection" in headers:
        drop = drop | connection_listed(headers)
    # One list built in a comprehension and handed to the constructor: a per-request path.
    return CIMultiDict(
        [(name, value) for name, value in headers.items() if name.lower() not in drop]
    )


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


def map_locations(headers: CIMultiDict[str], to_public: Callable[[str], str]) -> None:
    """Replace each ``Location`` / ``Content-Location`` value with ``to_public(value)``, in place
    and in order (``to_public`` returns a value it does not recognise unchanged)."""
    for name in _LOCATIONS:
        values = headers.getall(name, ())
        if not values:
            continue
        mapped = [to_public(value) for value in values]
        if mapped != values:
            del headers[name]
            for value in mapped:
                headers.add(name, value)
