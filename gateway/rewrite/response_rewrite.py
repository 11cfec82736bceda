"""Map upstream URLs in JSON response bodies back to the gateway, byte for byte (pure; no I/O).

The body that leaves is the upstream's bytes with exactly the URL fields' strings replaced,
in place: numbers, key order, whitespace, escapes, duplicate keys and customer data are kept
as they are. The fields and their places are listed in :mod:`gateway.rewrite.json_scan`; a field is
replaced only when it is one of the upstream's URLs (:mod:`gateway.rewrite.link_map`). A ``meta``
object whose ``key`` is missing or names no member, on a page with exactly one list, gets
``key`` filled in (clients find the records through it): the only insertion ever made.

Three ways to the same answer, fastest first:

1. the compiled accelerator (``gateway/rewrite/_rewrite_accel.c``), when it was built: one scan that
   validates, finds the fields by structure and writes the output;
2. otherwise *parse and prove*: orjson parses the body, the URL fields of the parsed document
   are counted, and when every string in the body that starts with an upstream prefix is one
   of them (same count, no escapes to hide one), the prefixes are replaced in the bytes by
   three C-level regex substitutions;
3. the exact path (:mod:`gateway.rewrite.json_scan`), for everything else: escapes in a URL, a
   URL in customer data, duplicate keys, nesting or numbers orjson cannot hold, a ``meta.key`` to
   fill in, very large bodies (it lets other threads run; see ``PARSE_AND_PROVE_MAX``).

Invalid JSON on a JSON content type that may carry an upstream URL is an
:class:`UpstreamBadResponse` (``invalid_json``); without such a URL the body passes as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from gateway.errors import UpstreamBadResponse
from gateway.rewrite import json_scan
from gateway.rewrite.link_map import NEEDS_PYTHON, NOT_OBJECT, LinkRewriter, json_string_content

# Above this size the pure-Python path skips orjson: its parse holds the GIL throughout
# (about 4 ms per MB here), which would stall the event loop while a worker thread rewrites.
PARSE_AND_PROVE_MAX = 2 * 1024 * 1024

_RECORD_URL_MAPS = ("links", "subresource_uris")
_META_URL_KEYS = ("url", "first_page_url", "previous_page_url", "next_page_url")
_TOP_PAGE_KEYS = ("first_page_uri", "previous_page_uri", "next_page_uri")
_UNPROVEN = object()


def is_json(content_type: str) -> bool:
    """``application/json`` or any ``+json`` media type."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def rewrite_body(
    body: bytes, content_type: str, rewriter: LinkRewriter, public_base: str
) -> bytes | None:
    """The rewritten body, or ``None`` when it is to be sent unchanged.

    Raises :class:`UpstreamBadResponse` (kind ``invalid_json``) for a body with a JSON
    content type that may carry upstream URLs but is not JSON.
    """
    if not body or not is_json(content_type):
        return None
    public = json_string_content(public_base)
    compiled = rewriter.compiled
    if compiled is not None:
        # One scan answers the common case; only when it cannot (or the body is not JSON)
        # does the cheaper marker check decide whether the body is any of our business.
        try:
            result = compiled.rewrite(body, public)
        except ValueError as exc:
            if not rewriter.may_hold_upstream_urls(body):
                return None
            raise _invalid(exc) from exc
        if result is None or result.__class__ is bytes:
            return result
        if result == NOT_OBJECT or not rewriter.may_hold_upstream_urls(body):
            return None
        assert result == NEEDS_PYTHON
    elif not rewriter.may_hold_upstream_urls(body):
        return None
    elif len(body) <= PARSE_AND_PROVE_MAX:
        proven = _parse_and_prove(body, rewriter, public)
        if proven is not _UNPROVEN:
            return proven  # type: ignore[return-value]
    return rewrite_exactly(body, rewriter, public_base)


def _invalid(exc: Exception) -> UpstreamBadResponse:
    return UpstreamBadResponse(
        f"The upstream sent a JSON content type with an invalid body ({exc})",
        kind="invalid_json",
    )


# ---- 2. parse and prove ----------------------------------------------------------------


def _parse_and_prove(body: bytes, rewriter: LinkRewriter, public: bytes) -> bytes | None | object:
    subs = rewriter.substitutions
    if subs is None or public.startswith(rewriter.prefix_bytes):
        return _UNPROVEN  # the substitutions could match their own output
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _UNPROVEN  # maybe valid all the same (a lone surrogate escape, 1e400, depth)
    if data.__class__ is not dict:
        return None
    if _meta_key_needs_filling(data):
        return _UNPROVEN
    prefixes = rewriter.prefixes
    expected = 0
    for value in _field_values(data):
        if value.__class__ is str and value.startswith(prefixes):
            expected += 1
    counts = subs.count(body)
    found = sum(counts)
    if found != expected:
        return _UNPROVEN  # some upstream URL is not a URL field (or a field occurs twice)
    if b"\\" in body and not subs.unescaped(body, found):
        return _UNPROVEN  # an escape may hide a URL from the count, or be part of one
    if found == 0:
        return None
    out = subs.apply(body, public, counts)
    return None if out == body else out  # only lookalikes ("https://api.twilio.com.evil")


def _field_values(data: dict[str, Any]) -> list[Any]:
    """Every URL field's value of the parsed document (values of any type)."""
    values: list[Any] = []
    _record_values(data, values)
    for key in _TOP_PAGE_KEYS:
        values.append(data.get(key))
    meta = data.get("meta")
    if meta.__class__ is dict:
        for key in _META_URL_KEYS:
            values.append(meta.get(key))
    for value in data.values():
        if value.__class__ is list:
            for item in value:
                if item.__class__ is dict:
                    _record_values(item, values)
    return values


def _record_values(record: dict[str, Any], values: list[Any]) -> None:
    values.append(record.get("url"))
    values.append(record.get("uri"))
    for name in _RECORD_URL_MAPS:
        links = record.get(name)
        if links.__class__ is dict:
            values.extend(links.values())


def _meta_key_needs_filling(data: dict[str, Any]) -> bool:
    meta = data.get("meta")
    if meta.__class__ is not dict:
        return False
    key = meta.get("key")
    if key.__class__ is str and key in data:
        return False
    return sum(1 for value in data.values() if value.__class__ is list) == 1


# ---- 3. the exact path -----------------------------------------------------------------


def rewrite_exactly(body: bytes, rewriter: LinkRewriter, public_base: str) -> bytes | None:
    """The rewrite by :func:`gateway.rewrite.json_scan.scan`: any valid JSON, any size, any
    shape."""
    try:
        found = json_scan.scan(body)
    except json_scan.InvalidJson as exc:
        raise _invalid(exc) from exc
    if found is None:
        return None
    edits: list[tuple[int, int, bytes]] = []
    for start, end in found.fields:
        new = _mapped_token(body[start:end], rewriter, public_base)
        if new is not None:
            edits.append((start, end, new))
    fix = _meta_key_fix(body, found)
    if fix is not None:
        edits.append(fix)
        edits.sort()
    return _splice(body, edits) if edits else None


def _mapped_token(token: bytes, rewriter: LinkRewriter, public_base: str) -> bytes | None:
    """The string token with its URL mapped, or ``None`` when it is not an upstream URL."""
    value: str = json.loads(token) if b"\\" in token else token[1:-1].decode()
    new = rewriter.url(value, public_base)
    if new == value:
        return None
    return _encode(new)


def _encode(text: str) -> bytes:
    try:
        return orjson.dumps(text)
    except orjson.JSONEncodeError:  # a lone surrogate: only an ASCII escape can carry it
        return json.dumps(text).encode()


def _meta_key_fix(body: bytes, found: json_scan.Scan) -> tuple[int, int, bytes] | None:
    """The edit that fills in ``meta.key`` (as a parsed document's last ``meta`` sees it)."""
    meta = found.meta
    if meta is None:
        return None
    top: dict[str, json_scan.Member] = {}
    for member in found.members:
        top[json_scan.decoded(body, member.key_span, member.key)] = member
    key: json_scan.Member | None = None
    for member in meta.members:
        if json_scan.decoded(body, member.key_span, member.key) == "key":
            key = member
    if key is not None and key.kind == json_scan.STRING:
        if json.loads(body[key.start : key.end]) in top:
            return None
    lists = [member for member in top.values() if member.kind == json_scan.ARRAY]
    if len(lists) != 1:
        return None
    name = body[lists[0].key_span[0] : lists[0].key_span[1]]  # the list's own key token
    if key is not None:
        return key.start, key.end, name
    return meta.close, meta.close, (b"," if meta.members else b"") + b'"key":' + name


def _splice(body: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    parts: list[bytes] = []
    done = 0
    for start, end, new in edits:
        parts.append(body[done:start])
        parts.append(new)
        done = end
    parts.append(body[done:])
    return b"".join(parts)


# ---- error messages --------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"/[A-Za-z0-9_.~%\-/]+")


def rewrite_error_message(body: bytes, content_type: str, rewriter: LinkRewriter) -> bytes | None:
    """A deprecated route's error body with the upstream paths in ``message`` shown as the
    legacy paths the client called ("/v1/InstalledAddOns/XE..." -> "/marketplace/..."), or
    ``None`` when there is nothing to change. Only the ``message`` string is replaced."""
    swap = rewriter.path_map.swap
    if swap is None or not body or not is_json(content_type) or swap[0].encode() not in body:
        return None
    try:
        found = json_scan.scan(body)
    except json_scan.InvalidJson:
        return None
    if found is None:
        return None
    message = None
    for member in found.members:
        if json_scan.decoded(body, member.key_span, member.key) == "message":
            message = member
    if message is None or message.kind != json_scan.STRING:
        return None
    text = json.loads(body[message.start : message.end])
    mapped = _PATH_TOKEN.sub(lambda token: rewriter.path_map.map(token.group(0)), text)
    if mapped == text:
        return None
    return _splice(body, [(message.start, message.end, _encode(mapped))])
