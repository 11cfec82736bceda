"""Content codings of upstream response bodies (pure; no I/O).

The gateway asks upstreams for ``Accept-Encoding: identity``. A body that comes back coded all
the same is decoded here when its ``Content-Encoding`` is exactly one of ``gzip``, ``x-gzip``
or ``deflate`` (one coding in one header line, any case; ``identity`` counts as none), so that
its URLs can be rewritten; it then leaves without the header. Any other coding (``br``,
``zstd``, an unknown token, or a stack such as ``gzip, gzip``) is not decoded: that body
passes through untouched, with its ``Content-Encoding``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from gateway.errors import UpstreamBadResponse, UpstreamResponseTooLarge

IDENTITY = ""
_DECODED = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "identity": IDENTITY}
_CHUNK = 1024 * 1024  # decoded per step, so a bomb is refused before it is all in memory


def coding(header_values: Sequence[str]) -> str | None:
    """``IDENTITY`` for an uncoded body, ``"gzip"`` or ``"deflate"`` for one decoded here,
    ``None`` for one passed through as it is."""
    if not header_values:
        return IDENTITY
    if len(header_values) > 1:
        return None
    return _DECODED.get(header_values[0].strip().lower())


def expected_size(body: bytes, name: str) -> int:
    """A guess of the decoded size (gzip records it modulo 2**32; deflate does not)."""
    if name == "gzip" and len(body) >= 18:
        return max(int.from_bytes(body[-4:], "little"), len(body))
    return len(body) * 8 if name == "deflate" else len(body)


def decode(body: bytes, name: str, cap: int) -> bytes:
    """``body`` decoded from ``name`` (``coding``'s answer), at most ``cap`` bytes of it."""
    if name == IDENTITY or not body:  # no body at all (204, 304) has nothing to decode
        return body
    if name == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, cap, members=True)
    try:  # "deflate" is meant to be zlib-wrapped; some servers send it raw
        return _inflate(body, zlib.MAX_WBITS, cap, members=False)
    except UpstreamBadResponse:
        return _inflate(body, -zlib.MAX_WBITS, cap, members=False)


def _inflate(body: bytes, wbits: int, cap: int, *, members: bool) -> bytes:
    out: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        pending = rest
        try:
            while pending and not inflater.eof:
                chunk = inflater.decompress(pending, _CHUNK)
                size += len(chunk)
                if size > cap:
                    raise UpstreamResponseTooLarge(
                        f"The upstream response is larger than {cap} bytes", kind="too_large"
                    )
                out.append(chunk)
                pending = inflater.unconsumed_tail
        except zlib.error as exc:
            raise _undecodable() from exc
        if not inflater.eof:
            raise _undecodable()
        rest = inflater.unused_data
        if not rest or not members:  # gzip allows several members back to back
            break
    if rest:
        raise _undecodable()
    return b"".join(out)


def _undecodable() -> UpstreamBadResponse:
    return UpstreamBadResponse(
        "The upstream sent a body that does not decode as its Content-Encoding",
        kind="bad_response",
    )
