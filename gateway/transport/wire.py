"""What the lean transport writes: the upstream's origin and the request head (pure).

The request goes out as :mod:`gateway.upstream`'s caller built it: the method, the target
exactly as encoded, the headers in order (``gateway.serving.headers.outbound`` dropped the
hop-by-hop ones and the client's ``Host`` and framing), then ``Host`` from the URL and the
framing of the body, a ``Content-Length`` (no chunked requests: the body is whole in memory).
Nothing else is added: no ``User-Agent``, no ``Accept``, no ``Connection`` (HTTP/1.1 keeps a
connection alive by default).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Methods whose requests carry a body by definition: an empty one is still framed, as
# ``Content-Length: 0`` (a server may refuse a POST without it with 411).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests for one ``scheme://host[:port]`` go; one pool each."""

    tls: bool
    host: str  # without IPv6 brackets: what is resolved and named in SNI
    port: int
    host_header: str  # as the URL spells it: brackets, and the port unless the default

    @classmethod
    def parse(cls, origin: str) -> Origin:
        """``http://host[:port]`` or ``https://...``; ``ValueError`` for anything else."""
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("an upstream origin carries no user information")
        tls = parts.scheme == "https"
        default = 443 if tls else 80
        port = parts.port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == default else f"{shown}:{port}"
        return cls(tls=tls, host=host, port=port, host_header=host_header)


def split_url(url: str) -> tuple[str, str]:
    """``(origin, target)`` of an absolute URL: ``http://h:1/a?b`` -> ``("http://h:1", "/a?b")``."""
    start = url.find("://")
    if start < 0:
        raise ValueError(f"not an absolute URL: {url!r}")
    slash = url.find("/", start + 3)
    query = url.find("?", start + 3)
    if 0 <= query < slash or slash < 0 <= query:  # "http://h?q": a query right after the host
        return url[:query], "/" + url[query:]
    if slash < 0:
        return url, "/"
    return url[:slash], url[slash:]


def request_head(
    method: str, target: str, host: str, headers: Iterable[tuple[str, str]], body_size: int
) -> bytes:
    """The request line and headers, ending in the blank line. Header values are sent as
    UTF-8, as aiohttp sends them (the gateway refuses values that would not survive this)."""
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    if body_size or method in _BODY_METHODS:
        lines.append(f"Content-Length: {body_size}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8", "surrogateescape")
