"""The gateway's public base URL for one request (pure; no I/O).

Configured ``public_base_url`` wins. Otherwise the request's own scheme and ``Host`` are used,
and forwarded headers only when the operator has said that trusted proxies set them: then
exactly ``hops`` entries are trusted, counted from the right (the proxy nearest the gateway
appends last), of the one header family those proxies write -- ``X-Forwarded-Proto`` /
``X-Forwarded-Host``, or RFC 7239 ``Forwarded``. The other family is ignored, since a client
can send either and a proxy passes on what it does not write.

A host that is not a plain ``host[:port]``, or that names no host (``0.0.0.0``, ``[::]``), is
never echoed. When nothing usable is left, the local address the client connected to is used,
so the wildcard listen address (``0.0.0.0:8080``) never ends up in a link.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from multidict import MultiMapping

from gateway.config.parsers import FORWARDED, HEADER_FAMILIES, X_FORWARDED

_HOST = re.compile(r"(?P<name>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")

# RFC 7239 section 4 (with RFC 7230's token, quoted-string and list rules).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t !-~\x80-\xff])*"'
_PAIR = re.compile(rf"({_TOKEN})=({_TOKEN}|{_QUOTED})")
_OWS = re.compile(r"[ \t]*")
_QUOTED_PAIR = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """How many proxies in front of the gateway append to which forwarded headers."""

    hops: int = 1
    header: str = X_FORWARDED  # X_FORWARDED or FORWARDED

    def __post_init__(self) -> None:
        if self.hops < 1 or self.header not in HEADER_FAMILIES:
            raise ValueError(f"bad trusted proxies: {self.hops} hops of {self.header!r}")


def public_base(
    *,
    configured: str | None,
    scheme: str,
    host_header: str | None,
    headers: MultiMapping[str],
    trusted: TrustedProxies | None,
    fallback_host: str | Callable[[], str],
) -> str:
    """``scheme://host[:port][/prefix]`` without a trailing slash.

    ``fallback_host`` (or what it returns, asked only when needed) stands in for a missing or
    unusable host.
    """
    if configured:
        return configured
    host = host_header
    if trusted is not None:
        proto, forwarded_host = forwarded_origin(headers, trusted)
        if forwarded_host is not None:
            host = forwarded_host
        if proto is not None:
            scheme = proto
    if not host or not plain_host(host):
        host = fallback_host if isinstance(fallback_host, str) else fallback_host()
    return f"{scheme}://{host}"


def forwarded_origin(
    headers: MultiMapping[str], trusted: TrustedProxies
) -> tuple[str | None, str | None]:
    """``(proto, host)`` from the entry ``trusted.hops`` from the right, each when usable."""
    if trusted.header == FORWARDED:
        element = _element_from_right(headers.getall("Forwarded", ()), trusted.hops)
        if element is None:
            return None, None
        proto, host = element.get("proto"), element.get("host")
    else:
        proto = _list_entry_from_right(headers.getall("X-Forwarded-Proto", ()), trusted.hops)
        host = _list_entry_from_right(headers.getall("X-Forwarded-Host", ()), trusted.hops)
    proto = proto.lower() if proto else None
    return (
        proto if proto in ("http", "https") else None,
        host if host and plain_host(host) else None,
    )


def plain_host(text: str) -> bool:
    """A ``host[:port]`` fit for a link: no userinfo, path or spaces, and a real host."""
    found = _HOST.fullmatch(text)
    if found is None:
        return False
    port = found.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        return False
    name = found.group("name")
    if name.startswith("["):
        literal = name[1:-1]
    elif name[-1].isdigit():  # an IPv4 address (no top-level domain is numeric)
        literal = name
    else:
        return True  # a DNS name
    try:
        return not ipaddress.ip_address(literal).is_unspecified
    except ValueError:
        return not name.startswith("[")  # a bracketed non-address is refused


def local_host(sockname: object, listen_host: str, listen_port: int) -> str:
    """``host:port`` the client connected to (the socket's local address, ``sockname``).

    Without one, the listen address when it names a real host, else ``localhost``.
    """
    candidates = [(listen_host, listen_port)]
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        candidates.insert(0, (str(sockname[0]).partition("%")[0], int(sockname[1])))
    for host, port in candidates:
        literal = f"[{host}]" if ":" in host else host
        if plain_host(literal):
            return f"{literal}:{port}"
    return f"localhost:{listen_port}"


def _list_entry_from_right(lines: Sequence[str], hops: int) -> str | None:
    """Entry ``hops`` from the right of a comma-separated list header (all lines joined)."""
    entries = [entry.strip(" \t") for line in lines for entry in line.split(",")]
    entries = [entry for entry in entries if entry]  # empty list elements are ignored
    return entries[-hops] if len(entries) >= hops else None


def _element_from_right(lines: Sequence[str], hops: int) -> dict[str, str] | None:
    """The ``Forwarded`` element ``hops`` from the right, or ``None``.

    ``None`` also when a field line at or right of that element does not parse: its element
    boundaries cannot be known, so nothing in it or left of it can be counted.
    """
    seen: list[dict[str, str]] = []
    for line in reversed(lines):
        elements = parse_forwarded(line)
        if elements is None:
            return None
        seen[:0] = elements
        if len(seen) >= hops:
            return seen[-hops]
    return None


def parse_forwarded(line: str) -> list[dict[str, str]] | None:
    """One ``Forwarded`` field line as its elements (parameter names lower-cased, values
    unquoted), or ``None`` if it is not RFC 7239 syntax or repeats a parameter in an element.

    Whitespace is allowed around ``,`` (the list rule) and, leniently, around ``;``; empty
    list elements are ignored.
    """
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    position, end = 0, len(line)
    after_pair = False
    while True:
        position = _skip_ows(line, position)
        if position == end or line[position] == ",":
            if element:
                elements.append(element)
            if position == end:
                return elements
            element, after_pair, position = {}, False, position + 1
            continue
        if line[position] == ";":
            after_pair, position = False, position + 1
            continue
        found = _PAIR.match(line, position)
        if found is None or after_pair:
            return None
        name, value = found.group(1).lower(), found.group(2)
        if name in element:
            return None  # RFC 7239 section 4: each parameter at most once per element
        if value.startswith('"'):
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        element[name] = value
        after_pair, position = True, found.end()


def _skip_ows(line: str, position: int) -> int:
    found = _OWS.match(line, position)
    assert found is not None  # matches the empty string at least
    return found.end()
